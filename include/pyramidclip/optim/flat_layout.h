#pragma once
// The flat parameter vector that ZeRO shards (DESIGN §3, §4): the trainable parameters
// concatenated in a fixed order (no alignment gaps), the total padded with zeros to a multiple
// of the world size; rank r owns [r * S, (r + 1) * S) with S = padded_numel / world_size.
// GradBuckets (dist) lays the gradients out identically. Checkpoints store each rank's slice
// plus this table, so a run can reshard to any world size (only the padding changes).
#include <ATen/ATen.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace pc {

struct FlatParam {
  std::string name;
  int64_t offset = 0;  // first element in the flat vector
  int64_t numel = 0;
  std::vector<int64_t> shape;
  float weight_decay = 1;  // factor on the optimizer's weight decay: 1 decayed, 0 excluded
};

struct FlatLayout {
  std::vector<FlatParam> params;
  int64_t numel = 0;         // Ψ: the sum of the parameters' numel
  int64_t padded_numel = 0;  // Ψ rounded up to a multiple of world_size
  int world_size = 1;

  int64_t shard_numel() const { return padded_numel / world_size; }
  int64_t shard_begin(int rank) const { return shard_numel() * rank; }
  int64_t shard_end(int rank) const { return shard_numel() * (rank + 1); }
  const FlatParam& find(const std::string& name) const;  // throws when absent

  // Same parameters, another world size (resharding: offsets stay, only the padding changes).
  FlatLayout with_world_size(int world) const;
};

// `names[i]`/`params[i]`/`decay[i]` in the order the flat vector takes (use the model's
// named_parameters() order of the trainable ones: backward produces gradients roughly in its
// reverse, which is the order GradBuckets fills its buckets).
FlatLayout make_flat_layout(const std::vector<std::string>& names, const std::vector<at::Tensor>& params,
                            const std::vector<bool>& decay, int world_size);

// Runs of elements with one weight-decay factor inside [begin, end) of the flat vector,
// padding excluded: {begin, end, factor}, in order.
struct DecaySpan {
  int64_t begin, end;
  float weight_decay;
};
std::vector<DecaySpan> decay_spans(const FlatLayout& layout, int64_t begin, int64_t end);

// Tab-separated table, one parameter per line after a header:
//   # pyramidclip flat layout v1 numel=<Ψ> padded=<P> world=<N>
//   name<TAB>offset<TAB>numel<TAB>shape (comma-separated)<TAB>weight_decay
void write_layout_table(const FlatLayout& layout, std::ostream& out);
std::string layout_table(const FlatLayout& layout);
FlatLayout read_layout_table(std::istream& in);  // throws c10::Error on a malformed table

}  // namespace pc
