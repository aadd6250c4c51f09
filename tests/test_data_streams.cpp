// Logical streams and the loader state: world-size-independent order, exact resume on another
// world size, shard parts, state encoding.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>

#include "pyramidclip/data/loader_state.h"
#include "pyramidclip/data/sample_count.h"
#include "pyramidclip/data/sample_stream.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/data/train_loader.h"
#include "pyramidclip/util/errors.h"
#include "test_data_util.h"

namespace pc {
namespace {

class DataStreams : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("streams");
    SynthOptions o;
    o.out_dir = dir_->str("synth");
    o.train_samples = 72;  // 7 shards of 10 and one of 2: 8 streams of 9
    o.samples_per_shard = 10;
    o.heldout_per_class = 1;
    o.seed = 4;
    synth_dataset(o);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string shards() { return dir_->str("synth/train/{00000..00007}.tar"); }
  static TrainLoaderOptions options(int rank, int world) {
    TrainLoaderOptions o;
    o.shards = shards();
    o.image_size = 16;
    o.batch_size = 8 / world;  // global batch 8
    o.rank = rank;
    o.world_size = world;
    o.seed = 3;
    o.streams = 8;  // ranges of 9 samples: most cross a shard boundary
    o.shuffle_block = 3;
    o.workers = 2;
    return o;
  }
  static test::TempDir* dir_;
};
test::TempDir* DataStreams::dir_ = nullptr;

// A job of `world` in-process ranks: next() returns one global batch as key -> (epoch, pixels).
struct Job {
  std::vector<std::unique_ptr<TrainLoader>> ranks;
  Job(int world, const std::function<TrainLoaderOptions(int, int)>& opts, const LoaderState* resume = nullptr) {
    for (int r = 0; r < world; ++r) {
      ranks.push_back(std::make_unique<TrainLoader>(opts(r, world), test::toy_tokenize));
      if (resume) ranks.back()->restore(*resume);
    }
  }
  struct Seen {
    int64_t epoch;
    at::Tensor global, text;
  };
  std::map<std::string, Seen> next() {
    std::map<std::string, Seen> out;
    for (auto& l : ranks) {
      Batch b = l->next();
      for (size_t i = 0; i < b.keys.size(); ++i) {
        const bool fresh =
            out.emplace(b.keys[i], Seen{b.epochs[i], b.global_images[static_cast<int64_t>(i)], b.text[static_cast<int64_t>(i)]})
                .second;
        EXPECT_TRUE(fresh) << "sample " << b.keys[i] << " twice in one global batch";
      }
    }
    return out;
  }
  LoaderState state() const {
    std::vector<LoaderState> parts;
    for (auto& l : ranks) parts.push_back(LoaderState::decode(l->state().encode()));  // as a checkpoint would
    return LoaderState::merge(parts);
  }
};

void expect_same_batch(const std::map<std::string, Job::Seen>& a, const std::map<std::string, Job::Seen>& b,
                       int step) {
  ASSERT_EQ(a.size(), b.size()) << "step " << step;
  for (const auto& [key, seen] : a) {
    auto it = b.find(key);
    ASSERT_NE(it, b.end()) << "step " << step << ": " << key << " missing";
    EXPECT_EQ(seen.epoch, it->second.epoch) << key;
    EXPECT_TRUE(seen.global.equal(it->second.global)) << "step " << step << ": pixels of " << key << " differ";
    EXPECT_TRUE(seen.text.equal(it->second.text)) << key;
  }
}

TEST_F(DataStreams, SampleReaderStartsAtAnySample) {
  const std::string shard = dir_->str("synth/train/00000.tar");
  std::vector<RawSample> all;
  {
    SampleReader r(shard);
    RawSample s;
    while (r.next(s)) all.push_back(s);
  }
  ASSERT_EQ(all.size(), 10u);
  for (int64_t first : {0, 1, 7, 9, 10, 12}) {
    SampleReader r(shard, first);
    RawSample s;
    for (size_t i = static_cast<size_t>(first); i < all.size(); ++i) {
      ASSERT_TRUE(r.next(s)) << first;
      EXPECT_EQ(s.key, all[i].key);
      EXPECT_EQ(s.members, all[i].members);
    }
    EXPECT_FALSE(r.next(s));
    EXPECT_FALSE(r.damaged());
  }
}

TEST_F(DataStreams, LayoutCutsEachEpochIntoEqualRanges) {
  const std::vector<int64_t> counts = {10, 3, 0, 25, 7, 1, 10};  // 56 samples
  for (int64_t streams : {1, 3, 8, 56}) {
    StreamLayout layout(counts, streams, 11);
    const int64_t per = 56 / streams;
    EXPECT_EQ(layout.stream_samples(), per);
    EXPECT_EQ(layout.epoch_samples(), per * streams);
    for (int64_t epoch : {0, 1}) {
      std::set<std::pair<int64_t, int64_t>> seen;  // (shard, sample)
      for (int64_t s = 0; s < streams; ++s) {
        int64_t n = 0;
        for (const auto& sp : layout.spans(s, epoch)) {
          EXPECT_LT(sp.begin, sp.end);
          EXPECT_LE(sp.end, counts[static_cast<size_t>(sp.shard)]);
          for (int64_t i = sp.begin; i < sp.end; ++i) EXPECT_TRUE(seen.insert({sp.shard, i}).second);
          n += sp.end - sp.begin;
        }
        EXPECT_EQ(n, per) << "stream " << s;
      }
    }
  }
  StreamLayout layout(counts, 3, 11);
  EXPECT_NE(layout.spans(0, 0).front().shard * 100 + layout.spans(0, 0).front().begin,
            layout.spans(0, 1).front().shard * 100 + layout.spans(0, 1).front().begin);
  EXPECT_THROW(StreamLayout(counts, 57, 0), UserError);
}

// A stream restarted from the cursor after any sample continues with the same samples.
TEST_F(DataStreams, StreamCursorResumesExactly) {
  const std::vector<std::string> list = list_shards(shards());
  const StreamLayout layout(shard_sample_counts(list), 3, 5);
  SampleStream full(list, layout, 1, 4, 5);
  std::vector<StreamSample> seq(40);  // more than two epochs of this stream
  for (auto& s : seq) full.next(s);
  std::set<int64_t> epochs;
  for (const auto& s : seq) epochs.insert(s.epoch);
  EXPECT_GE(epochs.size(), 2u);
  for (size_t cut = 0; cut + 1 < seq.size(); ++cut) {
    SampleStream resumed(list, layout, 1, 4, 5, seq[cut].after);
    for (size_t i = cut + 1; i < std::min(seq.size(), cut + 9); ++i) {
      StreamSample s;
      resumed.next(s);
      ASSERT_EQ(s.raw.key, seq[i].raw.key) << "resumed after sample " << cut;
      EXPECT_EQ(s.epoch, seq[i].epoch);
      EXPECT_EQ(s.after, seq[i].after);
      EXPECT_EQ(s.raw.members, seq[i].raw.members);
    }
  }
}

// The global batches are the same whatever the number of ranks (and of decode threads).
TEST_F(DataStreams, GlobalBatchesDoNotDependOnWorldSize) {
  Job one(1, [](int r, int w) { auto o = options(r, w); o.workers = 0; return o; });
  Job two(2, options), four(4, [](int r, int w) { auto o = options(r, w); o.workers = 1; return o; });
  std::set<std::string> epoch0;
  for (int step = 0; step < 12; ++step) {
    const auto a = one.next(), b = two.next(), c = four.next();
    expect_same_batch(a, b, step);
    expect_same_batch(a, c, step);
    for (const auto& [key, seen] : a)
      if (seen.epoch == 0) {
        EXPECT_TRUE(epoch0.insert(key).second) << key << " twice in epoch 0";
      }
  }
  EXPECT_EQ(one.ranks[0]->epoch_samples(), 72);
  EXPECT_EQ(epoch0.size(), 72u);  // 96 positions cover epoch 0 of every stream
}

// Saved mid-epoch on 2 ranks, resumed on 1 and on 2 (and 4): the rest of the run is the
// uninterrupted run's, so every sample of the epoch is seen exactly once.
TEST_F(DataStreams, ResumeOnAnotherWorldSizeIsExact) {
  Job reference(2, options);
  std::vector<std::map<std::string, Job::Seen>> ref;
  for (int step = 0; step < 12; ++step) ref.push_back(reference.next());

  Job first(2, options);
  for (int step = 0; step < 4; ++step) expect_same_batch(ref[static_cast<size_t>(step)], first.next(), step);
  const LoaderState saved = first.state();
  ASSERT_TRUE(saved.complete());
  EXPECT_EQ(saved.position, 32);
  first.ranks.clear();

  for (int world : {1, 2, 4}) {
    Job resumed(world, options, &saved);
    std::multiset<std::string> epoch0;
    for (int step = 0; step < 4; ++step)
      for (const auto& [key, seen] : ref[static_cast<size_t>(step)])
        if (seen.epoch == 0) epoch0.insert(key);
    for (int step = 4; step < 12; ++step) {
      const auto b = resumed.next();
      expect_same_batch(ref[static_cast<size_t>(step)], b, step);
      for (const auto& [key, seen] : b)
        if (seen.epoch == 0) epoch0.insert(key);
    }
    EXPECT_EQ(epoch0.size(), 72u) << "world " << world;
    EXPECT_EQ(std::set<std::string>(epoch0.begin(), epoch0.end()).size(), 72u) << "world " << world;
    EXPECT_EQ(resumed.state().encode(), reference.state().encode()) << "world " << world;
  }
}

TEST_F(DataStreams, StateEncodingAndMismatches) {
  Job job(2, options);
  job.next();
  const LoaderState s = job.state();
  EXPECT_EQ(LoaderState::decode(s.encode()).encode(), s.encode());
  // one rank's part alone is incomplete; the same part twice is a conflict
  const LoaderState part = job.ranks[0]->state();
  EXPECT_FALSE(part.complete());
  EXPECT_THROW(LoaderState::merge({part, part}), UserError);
  std::vector<int64_t> v = s.encode();
  v[0] = 99;
  EXPECT_THROW(LoaderState::decode(v), UserError);
  v = s.encode();
  v.pop_back();
  EXPECT_THROW(LoaderState::decode(v), UserError);

  auto restore_error = [&](TrainLoaderOptions o, const LoaderState& st) -> std::string {
    TrainLoader l(o, test::toy_tokenize);
    try {
      l.restore(st);
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(restore_error(options(0, 1), s), "");
  TrainLoaderOptions o = options(0, 1);
  o.seed = 4;
  EXPECT_NE(restore_error(o, s).find("seed"), std::string::npos);
  o = options(0, 1);
  o.streams = 16;
  EXPECT_NE(restore_error(o, s).find("streams"), std::string::npos);
  o = options(0, 1);
  o.shards = dir_->str("synth/train/{00000..00005}.tar");
  EXPECT_NE(restore_error(o, s).find("shard list"), std::string::npos);
  EXPECT_NE(restore_error(options(0, 1), part).find("misses some streams"), std::string::npos);
}

}  // namespace
}  // namespace pc
