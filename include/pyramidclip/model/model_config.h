#pragma once
// Architecture hyper-parameters. Presets give the published sizes; configs/*.cfg may override.
#include <string>

namespace pc {

struct ModelConfig {
  std::string name = "tiny";
  // image tower
  std::string vision = "vit";     // "vit" | "rn50"
  bool official = true;           // ViT: official PyramidCLIP variant (LeFF blocks, frozen patch conv,
                                  // proj_pre, max-pooled text); false = standard OpenAI CLIP
  int image_size = 224;
  int patch_size = 32;
  int vision_width = 768;
  int vision_layers = 12;         // ViT blocks; RN50 uses rn_layers
  int vision_heads = 12;
  int leff_layers = 9;            // official ViT: blocks [0, leff_layers) use LeFF (resblocks1), rest standard (resblocks2)
  int roi_layers = 3;             // ViT: blocks the ROI path runs (the last ones); must equal vision_layers - leff_layers for official
  int rn_layers[4] = {3, 4, 6, 3};
  int rn_width = 64;              // RN50 stem width; heads = rn_width*32/64
  // ROI features
  int roi_dim = 2052;             // 2048 appearance + 4 box
  // text tower
  int context_length = 77;
  int vocab_size = 49408;
  int text_width = 512;
  int text_heads = 8;
  int text_layers = 12;
  std::string text_pool = "max";  // "max" (official PyramidCLIP) | "eot" (OpenAI CLIP)
  // joint space
  int embed_dim = 512;
  bool with_roi = true;           // build the ROI path (proj_pre etc.)
  // execution (no effect on the weights or their names)
  bool checkpoint_image = false;  // activation checkpointing: image-tower blocks (ViT) / stem and stages (RN50)
  bool checkpoint_text = false;   // activation checkpointing: text-tower blocks (all but the last of a run)
  bool sync_batchnorm = true;     // with > 1 rank, BatchNorm (LeFF, RN50) uses global batch statistics (SyncBN);
                                  // false = per-rank statistics. The trainer installs the BnSync (batch_norm.h).
};

// Named presets: "tiny", "vit-b32", "vit-b16", "rn50"; official selects the PyramidCLIP variant.
// Throws UserError for an unknown name (listing the known ones).
ModelConfig model_preset(const std::string& name, bool official);

}  // namespace pc
