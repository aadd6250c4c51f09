// Other code bases' state-dict names -> ours (torch_key_names.h).
#include "pyramidclip/interop/torch_key_names.h"

namespace pc {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::string our_key_name(const std::string& key) {
  std::string k = key;
  while (starts_with(k, "module.")) k = k.substr(7);  // DDP / DataParallel wrappers (possibly nested)
  if (starts_with(k, "text.")) k = k.substr(5);       // open_clip CustomTextCLIP: text tower under text.*
  // OpenAI CLIP's archives store these constants next to the weights (clip.build_model deletes them);
  // the causal mask is rebuilt from the context length, never learned.
  if (k == "input_resolution" || k == "context_length" || k == "vocab_size" || k == "attn_mask" ||
      ends_with(k, ".attn_mask"))
    return "";
  return k;
}

}  // namespace pc
