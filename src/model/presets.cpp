// Published model sizes (OpenAI CLIP model configs, as the official PyramidCLIP model_config.yml).
#include <string>

#include "pyramidclip/model/model_config.h"
#include "pyramidclip/util/errors.h"

namespace pc {

ModelConfig model_preset(const std::string& name, bool official) {
  ModelConfig c;
  c.name = name;
  c.official = official;
  c.text_pool = official ? "max" : "eot";
  if (name == "vit-b32" || name == "vit-b16") {
    c.vision = "vit";
    c.image_size = 224;
    c.patch_size = name == "vit-b32" ? 32 : 16;
    c.vision_width = 768;
    c.vision_layers = 12;
    c.vision_heads = 12;  // width / 64
    c.leff_layers = 9;
    c.roi_layers = 3;
    c.embed_dim = 512;
  } else if (name == "rn50") {
    c.vision = "rn50";
    c.image_size = 224;
    c.patch_size = 32;  // total stride of the ResNet; used only to validate image sizes
    c.rn_width = 64;
    c.vision_width = 64;
    c.vision_heads = 32;  // rn_width * 32 / 64
    c.vision_layers = 0;
    c.leff_layers = 9;  // no LeFF in a ResNet; the official text transformer still splits 9 + 3
    c.roi_layers = 0;
    c.embed_dim = 1024;
  } else if (name == "tiny") {
    c.vision = "vit";
    // Sized so the demo trains in minutes on 2 CPU cores (one rank per core).
    c.image_size = 48;
    c.patch_size = 8;
    c.vision_width = 96;
    c.vision_layers = 6;
    c.vision_heads = 4;
    c.leff_layers = 3;
    c.roi_layers = 3;
    c.text_width = 64;
    c.text_layers = 4;
    c.text_heads = 4;
    c.embed_dim = 64;
  } else {
    throw UserError("unknown model preset '" + name + "': known presets are tiny, vit-b32, vit-b16, rn50");
  }
  return c;
}

}  // namespace pc
