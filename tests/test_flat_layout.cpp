// FlatLayout: offsets, padding, weight-decay spans and the table checkpoints reshard from.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "pyramidclip/optim/flat_layout.h"

namespace pc {
namespace {

FlatLayout sample(int world) {
  return make_flat_layout({"a.weight", "a.bias", "b.weight", "logit_scale"},
                          {torch::zeros({3, 4}), torch::zeros({3}), torch::zeros({2, 2, 2}), torch::zeros({})},
                          {true, false, true, false}, world);
}

TEST(FlatLayout, OffsetsAndPadding) {
  FlatLayout l = sample(4);
  ASSERT_EQ(l.params.size(), 4u);
  EXPECT_EQ(l.params[0].offset, 0);
  EXPECT_EQ(l.params[1].offset, 12);
  EXPECT_EQ(l.params[2].offset, 15);
  EXPECT_EQ(l.params[3].offset, 23);
  EXPECT_EQ(l.params[3].numel, 1);
  EXPECT_TRUE(l.params[3].shape.empty());
  EXPECT_EQ(l.numel, 24);
  EXPECT_EQ(l.padded_numel, 24);
  EXPECT_EQ(l.shard_numel(), 6);
  EXPECT_EQ(l.shard_begin(3), 18);
  EXPECT_EQ(l.shard_end(3), 24);

  FlatLayout l5 = l.with_world_size(5);
  EXPECT_EQ(l5.padded_numel, 25);
  EXPECT_EQ(l5.shard_numel(), 5);
  EXPECT_EQ(l5.params[2].offset, 15);
  EXPECT_EQ(sample(7).padded_numel, 28);
  EXPECT_EQ(l.find("b.weight").numel, 8);
  EXPECT_THROW(l.find("nope"), c10::Error);
}

TEST(FlatLayout, DecaySpansMergeAndClip) {
  FlatLayout l = sample(1);
  auto all = decay_spans(l, 0, l.padded_numel);
  ASSERT_EQ(all.size(), 4u);  // 1 | 0 | 1 | 0
  EXPECT_EQ(all[0].end, 12);
  EXPECT_EQ(all[1].weight_decay, 0.0f);
  auto part = decay_spans(l, 10, 16);
  ASSERT_EQ(part.size(), 3u);
  EXPECT_EQ(part[0].begin, 10);
  EXPECT_EQ(part[0].end, 12);
  EXPECT_EQ(part[2].begin, 15);
  EXPECT_EQ(part[2].end, 16);
  FlatLayout same = make_flat_layout({"x", "y"}, {torch::zeros({2, 2}), torch::zeros({3, 1})}, {true, true}, 2);
  EXPECT_EQ(decay_spans(same, 0, 7).size(), 1u);  // adjacent equal factors merge
  EXPECT_TRUE(decay_spans(same, 7, 8).empty());   // padding only
}

TEST(FlatLayout, TableRoundTrip) {
  FlatLayout l = sample(3);
  const std::string text = layout_table(l);
  EXPECT_NE(text.find("# pyramidclip flat layout v1 numel=24 padded=24 world=3"), std::string::npos);
  EXPECT_NE(text.find("b.weight\t15\t8\t2,2,2\t1\n"), std::string::npos);
  std::istringstream in(text);
  FlatLayout back = read_layout_table(in);
  ASSERT_EQ(back.params.size(), l.params.size());
  for (size_t i = 0; i < l.params.size(); ++i) {
    EXPECT_EQ(back.params[i].name, l.params[i].name);
    EXPECT_EQ(back.params[i].offset, l.params[i].offset);
    EXPECT_EQ(back.params[i].shape, l.params[i].shape);
    EXPECT_EQ(back.params[i].weight_decay, l.params[i].weight_decay);
  }
  EXPECT_EQ(back.padded_numel, 24);
  EXPECT_EQ(back.world_size, 3);

  std::string broken = text;
  broken.replace(broken.find("\t15\t"), 4, "\t16\t");
  std::istringstream bad(broken);
  EXPECT_THROW(read_layout_table(bad), c10::Error);
}

}  // namespace
}  // namespace pc
