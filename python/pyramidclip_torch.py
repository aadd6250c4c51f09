"""Plain-PyTorch (1.13) model of pyramidclip's *standard* variant (OpenAI CLIP ViT).

Same state-dict key names and the same arithmetic as the C++ model (src/model/): a Python
reference for parity tests and for moving weights between the two (`pyramidclip ckpt import` /
`ckpt export`). Numerics, checked against the C++ code:
  * QuickGELU x * sigmoid(1.702 x) in the MLP (the C++ folds 1.702 into the weights; same value),
  * LayerNorm eps 1e-5 (PyTorch default), pre-LN residual blocks,
  * attention: one in_proj GEMM, softmax(q k^T / sqrt(dh) + mask) v, out_proj (nn.MultiheadAttention keys),
  * text: causal mask (-inf above the diagonal), pooling per text_pool: "eot" = the token with the
    largest id (argmax), ln_final on it; "max" = max over all positions after ln_final; then @ text_projection,
  * image: patch conv without bias, class token in front, + positional_embedding, ln_pre, blocks,
    ln_post on the class token, @ proj,
  * logit_scale initialised to log(1/0.07); its exp is clamped to 100,
  * embeddings L2-normalized (x / ||x||) when normalize=True.
Activations are batch-first [B, L, D] as in the C++ (the official code runs [L, B, D]; same values).

API: load_config(path, overrides=None) -> dict; build_model(cfg) -> nn.Module with encode_image,
encode_text, encode_roi, logit_scale, forward(images, tokens) -> (image_emb, text_emb, logit_scale_exp).
"""
import configparser
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

QUICK_GELU_ALPHA = 1.702

# [model] keys of our INI files and their defaults (src/cli/options.cpp add_model_options).
_MODEL_DEFAULTS = {"preset": "tiny", "variant": "official", "roi": True}


def _scalar(text):
    """INI value -> bool / int / float / str (as boost::program_options would read the typed options)."""
    t = text.strip()
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(t)
        except ValueError:
            pass
    return t


def model_preset(name, official):
    """The published sizes, as src/model/presets.cpp (ModelConfig field names)."""
    c = dict(name=name, vision="vit", official=official, image_size=224, patch_size=32, vision_width=768,
             vision_layers=12, vision_heads=12, leff_layers=9, roi_layers=3, rn_layers=[3, 4, 6, 3], rn_width=64,
             roi_dim=2052, context_length=77, vocab_size=49408, text_width=512, text_heads=8, text_layers=12,
             text_pool="max" if official else "eot", embed_dim=512, with_roi=True)
    if name in ("vit-b32", "vit-b16"):
        c.update(patch_size=32 if name == "vit-b32" else 16)
    elif name == "rn50":
        c.update(vision="rn50", patch_size=32, rn_width=64, vision_width=64, vision_heads=32, vision_layers=0,
                 roi_layers=0, embed_dim=1024)
    elif name == "tiny":
        c.update(image_size=48, patch_size=8, vision_width=96, vision_layers=6, vision_heads=4, leff_layers=3,
                 roi_layers=3, text_width=64, text_layers=4, text_heads=4, embed_dim=64)
    else:
        raise ValueError(f"unknown model preset '{name}': known presets are tiny, vit-b32, vit-b16, rn50")
    return c


def load_config(path, overrides=None):
    """Our INI config -> {section: {key: value}}; cfg['model'] also holds the resolved architecture
    (ModelConfig field names: image_size, vision_width, ..., text_pool, with_roi) from the preset plus the
    [model] overrides (variant, roi, text-pool, vocab-size, image-size), as `pyramidclip` resolves it.
    overrides: {"section.key": value} (or {"section": {"key": value}}), applied over the file, like
    command-line options."""
    parser = configparser.ConfigParser(inline_comment_prefixes=None, interpolation=None)
    parser.optionxform = str  # keep key case
    with open(path) as f:
        parser.read_file(f)
    cfg = {s: {k: _scalar(v) for k, v in parser.items(s)} for s in parser.sections()}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            cfg.setdefault(key, {}).update(value)
        else:
            section, _, name = key.partition(".")
            if not name:
                raise ValueError(f"override '{key}' must be section.key")
            cfg.setdefault(section, {})[name] = _scalar(value) if isinstance(value, str) else value
    raw = dict(_MODEL_DEFAULTS)
    raw.update(cfg.get("model", {}))
    if raw["variant"] not in ("official", "standard"):
        raise ValueError(f"model.variant must be official or standard, not '{raw['variant']}'")
    m = model_preset(str(raw["preset"]), raw["variant"] == "official")
    m["with_roi"] = bool(raw["roi"])
    if "text-pool" in raw:
        if raw["text-pool"] not in ("max", "eot"):
            raise ValueError("model.text-pool must be max or eot")
        m["text_pool"] = raw["text-pool"]
    if "vocab-size" in raw:
        m["vocab_size"] = int(raw["vocab-size"])
    if "image-size" in raw:
        m["image_size"] = int(raw["image-size"])
        step = 32 if m["vision"] == "rn50" else m["patch_size"]
        if m["image_size"] % step:
            raise ValueError("model.image-size must be a multiple of the patch size (32 for rn50)")
    raw.update(m)
    cfg["model"] = raw
    return cfg


class MultiheadAttention(nn.Module):
    """nn.MultiheadAttention's parameters (in_proj_weight, in_proj_bias, out_proj) on batch-first input,
    computed as src/model/attention.cpp does."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(width // heads)  # a constant, also under torch.jit.trace
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, bias=None):
        # x [B, L, D]; bias broadcastable to [B*H, L, Lk] (causal [L, L] or key padding [B*H, 1, Lk])
        b, n, d = x.shape
        h, dh = self.heads, d // self.heads
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, h, dh).permute(2, 0, 3, 1, 4)
        q, k, v = (t.reshape(b * h, n, dh) for t in qkv.unbind(0))
        if bias is None:
            scores = torch.bmm(q, k.transpose(1, 2)) * self.scale
        else:
            scores = torch.baddbmm(bias.expand(b * h, n, n) if bias.dim() == 2 else bias, q, k.transpose(1, 2),
                                   beta=1.0, alpha=self.scale)
        out = torch.bmm(torch.softmax(scores, -1), v)
        out = out.view(b, h, n, dh).transpose(1, 2).reshape(b, n, d)
        return self.out_proj(out)


class Mlp(nn.Module):
    """CLIP MLP: c_fc (D -> 4D), QuickGELU, c_proj (4D -> D)."""

    def __init__(self, width):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x):
        h = self.c_fc(x)
        return self.c_proj(h * torch.sigmoid(QUICK_GELU_ALPHA * h))


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        # registration order as the C++ (attn, ln_1, mlp, ln_2): state_dict() lists keys in the same order
        self.attn = MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = Mlp(width)
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x, bias=None):
        x = x + self.attn(self.ln_1(x), bias)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x, bias=None, begin=0):
        for block in self.resblocks[begin:]:
            x = block(x, bias)
        return x

    def init_clip_text(self):
        """OpenAI CLIP initialize_parameters for the text transformer."""
        proj_std = self.width ** -0.5 * (2 * self.layers) ** -0.5
        attn_std = self.width ** -0.5
        fc_std = (2 * self.width) ** -0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)


class VisionTransformer(nn.Module):
    """OpenAI CLIP ViT; proj_pre [roi_dim, width] when the ROI path is built (keys as src/model/vision.h)."""

    def __init__(self, m):
        super().__init__()
        self.patch = m["patch_size"]
        self.width = width = m["vision_width"]
        self.heads = m["vision_heads"]
        self.roi_begin = m["vision_layers"] - m["roi_layers"]
        grid = m["image_size"] // self.patch
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=self.patch, stride=self.patch, bias=False)
        if m["with_roi"]:
            self.proj_pre = nn.Parameter(scale * torch.randn(m["roi_dim"], width))
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, m["vision_layers"], self.heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, m["embed_dim"]))

    def _class_tokens(self, b):
        return self.class_embedding.view(1, 1, -1).expand(b, 1, self.width)

    def forward(self, images):
        x = self.conv1(images)  # [B, width, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, grid*grid, width], row-major grid
        x = torch.cat([self._class_tokens(x.shape[0]), x], 1) + self.positional_embedding
        x = self.transformer(self.ln_pre(x))
        return self.ln_post(x[:, 0]) @ self.proj

    def forward_roi(self, roi, keep=None):
        """roi [B, M, roi_dim], keep [B, M] bool: x @ proj_pre, class token in front, ln_pre, no positional
        embedding, the last roi_layers blocks with padded ROIs masked out, ln_post, proj."""
        b = roi.shape[0]
        x = self.ln_pre(torch.cat([self._class_tokens(b), roi @ self.proj_pre], 1))
        bias = None
        if keep is not None:
            keep_all = torch.cat([torch.ones(b, 1, dtype=torch.bool), keep.bool()], 1)
            pad = torch.zeros(keep_all.shape).masked_fill(~keep_all, float("-inf")).unsqueeze(1)  # [B, 1, Lk]
            n = keep_all.shape[1]
            bias = pad.unsqueeze(1).expand(b, self.heads, n, n).reshape(b * self.heads, n, n)
        x = self.transformer(x, bias, begin=self.roi_begin)
        return self.ln_post(x[:, 0]) @ self.proj


class StandardClip(nn.Module):
    """pyramidclip's standard variant (OpenAI CLIP ViT) with our key names (src/model/pyramid_clip.cpp)."""

    def __init__(self, m):
        super().__init__()
        self.config = copy.deepcopy(m)
        self.text_pool = m["text_pool"]
        # registration order as the official MODEL: visual, transformer, token_embedding, ...
        self.visual = VisionTransformer(m)
        self.transformer = Transformer(m["text_width"], m["text_layers"], m["text_heads"])
        self.token_embedding = nn.Embedding(m["vocab_size"], m["text_width"])
        self.positional_embedding = nn.Parameter(torch.empty(m["context_length"], m["text_width"]))
        self.ln_final = nn.LayerNorm(m["text_width"])
        self.text_projection = nn.Parameter(torch.empty(m["text_width"], m["embed_dim"]))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        self.transformer.init_clip_text()
        nn.init.normal_(self.text_projection, std=m["text_width"] ** -0.5)

    @staticmethod
    def _normalize(x):
        return x / x.norm(dim=-1, keepdim=True)

    def encode_image(self, images, normalize=True):
        x = self.visual(images)
        return self._normalize(x) if normalize else x

    def encode_roi(self, roi, keep=None, normalize=True):
        x = self.visual.forward_roi(roi, keep)
        return self._normalize(x) if normalize else x

    def encode_text(self, tokens, normalize=True):
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        mask = torch.full((n, n), float("-inf"), dtype=x.dtype, device=x.device).triu_(1)
        x = self.transformer(x, mask)
        if self.text_pool == "eot":  # the EOT token has the largest id (CLIP)
            x = self.ln_final(x[torch.arange(x.shape[0]), tokens.argmax(-1)])
        else:  # official PyramidCLIP: max over all positions after ln_final
            x = self.ln_final(x).max(1)[0]
        x = x @ self.text_projection
        return self._normalize(x) if normalize else x

    def logit_scale_exp(self):
        return self.logit_scale.exp().clamp(max=100.0)

    def forward(self, images, tokens):
        return self.encode_image(images), self.encode_text(tokens), self.logit_scale_exp()


def build_model(cfg):
    """cfg: load_config's dict (or just its resolved 'model' dict). Standard ViT variant only."""
    m = cfg.get("model", cfg)
    if "vision_width" not in m:
        raise ValueError("build_model needs a resolved model config: pass load_config(path)")
    if m["vision"] != "vit":
        raise NotImplementedError(f"pyramidclip_torch models the ViT only, not vision '{m['vision']}' (preset "
                                  f"{m['name']}): use model.preset tiny, vit-b32 or vit-b16")
    if m["official"]:
        raise NotImplementedError("pyramidclip_torch models the standard variant only (OpenAI CLIP ViT); the "
                                  "official PyramidCLIP variant (LeFF blocks) is not modelled: set "
                                  "model.variant = standard")
    return StandardClip(m)
