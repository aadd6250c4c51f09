// Analytic parameter count, FLOPs and activations of the towers (model_cost.h). Mirrors
// src/model/{vit,transformer,leff,modified_resnet,pyramid_clip}.cpp block by block.
#include "pyramidclip/plan/model_cost.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pc::plan {

double linear_flops(double tokens, double in, double out) { return 2.0 * tokens * in * out; }

double attention_core_flops(double q_len, double k_len, double width) { return 4.0 * q_len * k_len * width; }

double transformer_block_flops(double s, double w) {
  return linear_flops(s, w, 3 * w) + linear_flops(s, w, w) + linear_flops(s, w, 4 * w) + linear_flops(s, 4 * w, w) +
         attention_core_flops(s, s, w);
}

double leff_block_flops(double s, double w) {
  const double patches = s - 1;  // the class token bypasses LeFF
  return linear_flops(s, w, 3 * w) + linear_flops(s, w, w) + attention_core_flops(s, s, w) +
         linear_flops(patches, w, 4 * w) + linear_flops(patches, 4 * w, w) + 2.0 * patches * 4 * w * 9;
}

double conv2d_flops(double in_ch, double out_ch, double kernel, double out_h, double out_w, double groups) {
  return 2.0 * in_ch / groups * out_ch * kernel * kernel * out_h * out_w;
}

double transformer_block_activations(double s, double w, double heads) {
  // ln_1/ln_2 inputs 2sw, ln_1 out sw, q k v 3sw, attention out sw, softmax out heads s^2,
  // ln_2 out sw, fc out 4sw, activation out 4sw
  return 16.0 * s * w + heads * s * s;
}

double leff_block_activations(double s, double w, double heads) {
  // attention part as above (7 sw + heads s^2), ln_2 out sw, then on 4w channels: linear1 out,
  // BN out, act out, conv out, BN out, act out (24 sw), linear2 out, BN out, act out (3 sw)
  return 35.0 * s * w + heads * s * s;
}

namespace {

int64_t block_params(int64_t w, bool leff) {
  const int64_t attn = 4 * w * w + 4 * w, norms = 4 * w;
  if (!leff) return attn + norms + 8 * w * w + 5 * w;
  // linear1 4w^2+4w, ac1.bn 2*4w, depconv 9*4w, depConv.bn 2*4w, linear2 4w^2+w, ac2.bn 2w
  return attn + norms + (4 * w * w + 4 * w) + 8 * w + 36 * w + 8 * w + (4 * w * w + w) + 2 * w;
}

int64_t bottleneck_params(int64_t in, int64_t p, int64_t stride) {
  int64_t n = in * p + 2 * p + 9 * p * p + 2 * p + p * 4 * p + 8 * p;
  if (stride > 1 || in != 4 * p) n += in * 4 * p + 8 * p;
  return n;
}

bool is_leff(const ModelConfig& m, int block) { return m.official && block < m.leff_layers; }

// One pass through a run of transformer blocks [begin, end) of width w on s tokens, with the
// trainer's checkpointing (every block of the run but the last, transformer.cpp).
void add_blocks(TowerCost& c, const ModelConfig& m, int begin, int end, double s, double w, double heads,
                bool vision) {
  double full_max = 0;
  for (int i = begin; i < end; ++i) {
    const bool leff = vision && is_leff(m, i);
    const double f = leff ? leff_block_flops(s, w) : transformer_block_flops(s, w);
    const double a = leff ? leff_block_activations(s, w, heads) : transformer_block_activations(s, w, heads);
    c.forward += f;
    c.activations += a;
    full_max = std::max(full_max, a);
    if (i + 1 < end) {
      c.recompute += f;
      c.activations_ckpt += s * w;  // only the block's input is kept
    } else {
      c.activations_ckpt += a;
    }
    if (leff) {
      c.syncbn_layers += 3;
      c.syncbn_channels += static_cast<int64_t>(9 * w);
    }
  }
  if (end - begin > 1) c.activations_ckpt += full_max;  // the block being recomputed
}

// ModifiedResNet walk (modified_resnet.cpp): FLOPs, activations, checkpoint units.
TowerCost resnet_cost(const ModelConfig& m) {
  TowerCost c;
  const double w = m.rn_width, h = m.image_size;
  struct Unit {
    double flops = 0, act = 0, input = 0;
  };
  std::vector<Unit> units;  // stem, layer1..layer4 (+ attnpool folded into layer4)
  Unit stem;
  stem.input = 3 * h * h;
  const double r1 = h / 2;
  stem.flops = conv2d_flops(3, w / 2, 3, r1, r1) + conv2d_flops(w / 2, w / 2, 3, r1, r1) + conv2d_flops(w / 2, w, 3, r1, r1);
  stem.act = stem.input + 2 * r1 * r1 * (w / 2 + w / 2 + w) + (r1 / 2) * (r1 / 2) * w;
  c.syncbn_layers += 3;
  c.syncbn_channels += static_cast<int64_t>(2 * w);
  units.push_back(stem);
  double in = w, r = h / 4;
  for (int layer = 0; layer < 4; ++layer) {
    const double p = w * (1 << layer);
    Unit u;
    u.input = in * r * r;
    for (int b = 0; b < m.rn_layers[layer]; ++b) {
      const double stride = (b == 0 && layer > 0) ? 2 : 1;
      const double ro = r / stride;
      u.flops += conv2d_flops(in, p, 1, r, r) + conv2d_flops(p, p, 3, r, r) + conv2d_flops(p, 4 * p, 1, ro, ro);
      u.act += 2 * p * r * r + 2 * p * r * r + (stride > 1 ? p * ro * ro : 0) + 2 * 4 * p * ro * ro;
      c.syncbn_layers += 3;
      c.syncbn_channels += static_cast<int64_t>(6 * p);
      if (stride > 1 || in != 4 * p) {
        u.flops += conv2d_flops(in, 4 * p, 1, ro, ro);
        u.act += (stride > 1 ? in * ro * ro : 0) + 4 * p * ro * ro;
        c.syncbn_layers += 1;
        c.syncbn_channels += static_cast<int64_t>(4 * p);
      }
      in = 4 * p;
      r = ro;
    }
    units.push_back(u);
  }
  // attention pool on the final grid: q on the mean token, k/v on all 1 + HW tokens
  const double e = 32 * w, tokens = r * r + 1;
  Unit& last = units.back();
  last.flops += linear_flops(1, e, e) + 2 * linear_flops(tokens, e, e) + attention_core_flops(1, tokens, e) +
                linear_flops(1, e, m.embed_dim);
  last.act += 3 * tokens * e;
  double full_max = 0;
  for (size_t i = 0; i < units.size(); ++i) {
    c.forward += units[i].flops;
    c.activations += units[i].act;
    full_max = std::max(full_max, units[i].act);
    const bool checkpointed = i + 1 < units.size();  // stem and layer1..3
    if (checkpointed) {
      c.recompute += units[i].flops;
      c.activations_ckpt += units[i].input;
    } else {
      c.activations_ckpt += units[i].act;
    }
  }
  c.activations_ckpt += full_max;
  return c;
}

}  // namespace

ParamCount count_params(const ModelConfig& m) {
  ParamCount pc;
  int64_t frozen = 0;
  if (m.vision == "vit") {
    const int64_t w = m.vision_width, p = m.patch_size, g = m.image_size / m.patch_size;
    const int64_t conv1 = w * 3 * p * p;
    if (m.official) frozen += conv1;
    int64_t n = conv1 + w + (g * g + 1) * w + 2 * w + 2 * w + w * m.embed_dim;
    if (m.with_roi) n += static_cast<int64_t>(m.roi_dim) * w;
    for (int i = 0; i < m.vision_layers; ++i) n += block_params(w, is_leff(m, i));
    pc.image = n;
  } else {
    const int64_t w = m.rn_width, h = w / 2;
    int64_t n = 3 * h * 9 + 2 * h + h * h * 9 + 2 * h + h * w * 9 + 2 * w;
    int64_t in = w;
    for (int layer = 0; layer < 4; ++layer) {
      const int64_t p = w << layer;
      for (int b = 0; b < m.rn_layers[layer]; ++b) {
        n += bottleneck_params(in, p, (b == 0 && layer > 0) ? 2 : 1);
        in = 4 * p;
      }
    }
    const int64_t e = 32 * w, s = m.image_size / 32;
    if (m.with_roi) n += static_cast<int64_t>(m.roi_dim) * e + 2 * e;
    n += (s * s + 1) * e + 3 * (e * e + e) + e * m.embed_dim + m.embed_dim;
    pc.image = n;
  }
  const int64_t tw = m.text_width;
  int64_t t = static_cast<int64_t>(m.text_layers) * block_params(tw, false);
  t += static_cast<int64_t>(m.vocab_size) * tw + static_cast<int64_t>(m.context_length) * tw + 2 * tw +
       tw * m.embed_dim;
  pc.text = t;
  pc.total = pc.image + pc.text + 1;  // + logit_scale
  pc.trainable = pc.total - frozen;
  return pc;
}

StepWorkload default_workload(const ModelConfig& m, int roi_count) {
  StepWorkload w;
  w.text_len = m.context_length;
  if (m.official) {
    w.image_views = 2;
    w.texts = 3;
    w.rois = m.with_roi ? roi_count : 0;
    w.pairs = m.with_roi ? 6 : 4;
    w.embeddings = m.with_roi ? 6 : 5;
  } else {
    w.image_views = 1;
    w.texts = 1;
    w.rois = 0;
    w.pairs = 1;
    w.embeddings = 2;
  }
  return w;
}

TowerCost image_cost(const ModelConfig& m) {
  if (m.vision != "vit") return resnet_cost(m);
  TowerCost c;
  const double w = m.vision_width, g = m.image_size / m.patch_size, s = g * g + 1;
  c.forward = linear_flops(g * g, 3.0 * m.patch_size * m.patch_size, w) + linear_flops(1, w, m.embed_dim);
  c.activations = c.activations_ckpt = 2 * s * w;  // embeddings + ln_pre output
  add_blocks(c, m, 0, m.vision_layers, s, w, m.vision_heads, true);
  return c;
}

TowerCost roi_cost(const ModelConfig& m, int rois) {
  TowerCost c;
  if (rois <= 0 || !m.with_roi) return c;
  if (m.vision != "vit") {
    const double e = 32.0 * m.rn_width, s = rois + 1;
    c.forward = linear_flops(rois, m.roi_dim, e) + linear_flops(1, e, e) + 2 * linear_flops(s, e, e) +
                attention_core_flops(1, s, e) + linear_flops(1, e, m.embed_dim);
    c.activations = c.activations_ckpt = rois * (m.roi_dim + e) + 4 * s * e;
    return c;
  }
  const double w = m.vision_width, s = rois + 1;
  c.forward = linear_flops(rois, m.roi_dim, w) + linear_flops(1, w, m.embed_dim);
  c.activations = c.activations_ckpt = rois * m.roi_dim + 2 * s * w;
  add_blocks(c, m, m.vision_layers - m.roi_layers, m.vision_layers, s, w, m.vision_heads, true);
  return c;
}

TowerCost text_cost(const ModelConfig& m, int tokens) {
  TowerCost c;
  const double w = m.text_width, s = tokens;
  c.forward = linear_flops(1, w, m.embed_dim);
  c.activations = c.activations_ckpt = 2 * s * w;  // token embeddings + ln_final output
  add_blocks(c, m, 0, m.text_layers, s, w, m.text_heads, false);
  return c;
}

SampleCost sample_cost(const ModelConfig& m, const StepWorkload& w) {
  SampleCost s;
  auto add = [&s](const TowerCost& c, double times) {
    s.forward += times * c.forward;
    s.recompute += times * c.recompute;
    s.activations += times * c.activations;
    s.activations_ckpt += times * c.activations_ckpt;
    s.syncbn_layers += static_cast<int>(times) * c.syncbn_layers;
    s.syncbn_channels += static_cast<int64_t>(times) * c.syncbn_channels;
  };
  add(image_cost(m), w.image_views);
  add(roi_cost(m, w.rois), 1);
  add(text_cost(m, w.text_len), w.texts);
  return s;
}

double loss_forward_flops(const StepWorkload& w, double global_batch, double embed_dim) {
  return w.pairs * 2.0 * (2.0 * global_batch * embed_dim);
}

}  // namespace pc::plan
