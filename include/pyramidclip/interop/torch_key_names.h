#pragma once
// State-dict key names of other code bases -> ours. Our model already uses the OpenAI CLIP /
// official PyramidCLIP names; what differs is wrapping (DDP's `module.`), open_clip's custom-text
// layout (`text.` prefix) and entries that are constants, not weights.
#include <string>

namespace pc {

// Our name for `key`: strips every leading "module." and open_clip's "text." (its CustomTextCLIP
// keeps the text tower under text.*). Returns "" for entries that are not weights: OpenAI's
// input_resolution / context_length / vocab_size and the causal attn_mask (rebuilt, not learned).
std::string our_key_name(const std::string& key);

}  // namespace pc
