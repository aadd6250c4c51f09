// TrainLoader (rank split, epochs, determinism, corrupt data, fill rules) and EvalLoader.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <set>

#include "pyramidclip/data/eval_loader.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/data/train_loader.h"
#include "pyramidclip/util/errors.h"
#include "test_data_util.h"

namespace pc {
namespace {

class DataLoader : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir("loader");
    SynthOptions o;
    o.out_dir = dir_->str("synth");
    o.train_samples = 40;
    o.samples_per_shard = 10;
    o.heldout_per_class = 1;
    o.seed = 9;
    synth_dataset(o);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string shards() { return dir_->str("synth/train/{00000..00003}.tar"); }
  static TrainLoaderOptions options(int rank = 0, int world = 1) {
    TrainLoaderOptions o;
    o.shards = shards();
    o.image_size = 32;
    o.batch_size = 5;
    o.rank = rank;
    o.world_size = world;
    o.seed = 1;
    o.streams = 4;        // one shard per stream and epoch
    o.shuffle_block = 4;
    return o;
  }
  // Keys of the next n batches.
  static std::vector<std::string> keys(TrainLoader& l, int batches) {
    std::vector<std::string> k;
    for (int i = 0; i < batches; ++i) {
      Batch b = l.next();
      k.insert(k.end(), b.keys.begin(), b.keys.end());
    }
    return k;
  }
  static test::TempDir* dir_;
};
test::TempDir* DataLoader::dir_ = nullptr;

std::set<std::string> as_set(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

TEST_F(DataLoader, BatchIsWellFormed) {
  TrainLoader l(options(), test::toy_tokenize);
  Batch b = l.next();
  EXPECT_EQ(b.size(), 5);
  EXPECT_EQ(b.global_images.sizes(), (at::IntArrayRef{5, 3, 32, 32}));
  EXPECT_EQ(b.local_images.sizes(), (at::IntArrayRef{5, 3, 32, 32}));
  EXPECT_EQ(b.global_images.scalar_type(), at::kFloat);
  EXPECT_EQ(b.roi.sizes(), (at::IntArrayRef{5, 10, 2052}));
  EXPECT_EQ(b.roi_mask.sizes(), (at::IntArrayRef{5, 10}));
  EXPECT_EQ(b.roi_mask.scalar_type(), at::kBool);
  for (const at::Tensor& t : {b.text, b.summary, b.tags}) {
    ASSERT_TRUE(t.defined());
    EXPECT_EQ(t.sizes(), (at::IntArrayRef{5, 77}));
    EXPECT_EQ(t.scalar_type(), at::kLong);
    EXPECT_EQ(t.select(1, 0).eq(49406).all().item<bool>(), true);
  }
  // 1-4 objects per synthetic image; padded rows are zero and masked
  const at::Tensor rows = b.roi_mask.sum(1);
  EXPECT_GE(rows.min().item<int64_t>(), 1);
  EXPECT_LE(rows.max().item<int64_t>(), 4);
  EXPECT_EQ(b.roi.index({b.roi_mask.logical_not()}).abs().sum().item<float>(), 0.0f);
  // normalized images: values outside [0, 1] exist, all finite
  EXPECT_TRUE(b.global_images.isfinite().all().item<bool>());
  EXPECT_LT(b.global_images.min().item<float>(), 0.0f);
  EXPECT_EQ(b.keys.size(), 5u);
}

TEST_F(DataLoader, TwoRanksCoverEachEpochExactlyOnce) {
  TrainLoader r0(options(0, 2), test::toy_tokenize), r1(options(1, 2), test::toy_tokenize);
  // 40 samples in 4 shards, 4 streams of one shard each: 4 batches of 5 per rank are epoch 0
  std::vector<std::string> all = keys(r0, 4), e0b = keys(r1, 4);
  EXPECT_EQ(r0.epoch(), 0);
  EXPECT_EQ(r0.samples_seen(), 20);
  const std::vector<std::string> e0a = all;
  all.insert(all.end(), e0b.begin(), e0b.end());
  EXPECT_EQ(as_set(all).size(), 40u);  // no duplicates, nothing missing
  EXPECT_EQ(all.size(), 40u);
  std::vector<std::string> all1 = keys(r0, 4), e1b = keys(r1, 4);
  EXPECT_EQ(r0.epoch(), 1);
  all1.insert(all1.end(), e1b.begin(), e1b.end());
  EXPECT_EQ(as_set(all1).size(), 40u);
  EXPECT_NE(all, all1);  // another epoch, another order

  // the same seed reproduces the order and the augmented pixels
  TrainLoader again(options(0, 2), test::toy_tokenize);
  Batch x = again.next();
  TrainLoader again2(options(0, 2), test::toy_tokenize);
  Batch y = again2.next();
  EXPECT_EQ(x.keys, y.keys);
  EXPECT_EQ(std::vector<std::string>(e0a.begin(), e0a.begin() + 5), x.keys);
  EXPECT_TRUE(x.global_images.equal(y.global_images));
  EXPECT_TRUE(x.local_images.equal(y.local_images));
  EXPECT_FALSE(x.global_images.equal(x.local_images));

  // a different seed gives a different order
  TrainLoaderOptions o = options(0, 2);
  o.seed = 2;
  TrainLoader other(o, test::toy_tokenize);
  EXPECT_NE(keys(other, 4), e0a);
}

TEST_F(DataLoader, FewerShardsThanStreamsSplitsShards) {
  // 2 shards (20 samples), 6 streams on 3 ranks: ranges of 3 samples, 18 per epoch
  std::vector<std::unique_ptr<TrainLoader>> ranks;
  for (int r = 0; r < 3; ++r) {
    TrainLoaderOptions o = options(r, 3);
    o.shards = dir_->str("synth/train/{00000..00001}.tar");
    o.streams = 6;
    o.batch_size = 1;
    ranks.push_back(std::make_unique<TrainLoader>(o, test::toy_tokenize));
  }
  std::multiset<std::string> epoch0;
  std::set<std::string> later;
  for (int step = 0; step < 20; ++step)
    for (auto& l : ranks) {
      Batch b = l->next();
      (b.epochs[0] == 0 ? static_cast<void>(epoch0.insert(b.keys[0])) : static_cast<void>(later.insert(b.keys[0])));
    }
  // 60 positions cover more than one epoch of every stream: epoch 0 is 18 samples once each
  EXPECT_EQ(epoch0.size(), 18u);
  EXPECT_EQ(std::set<std::string>(epoch0.begin(), epoch0.end()).size(), 18u);
  EXPECT_FALSE(later.empty());
}

TEST_F(DataLoader, StreamsMustBeAMultipleOfTheRanks) {
  TrainLoaderOptions o = options(0, 3);  // 4 streams, 3 ranks
  try {
    TrainLoader l(o, test::toy_tokenize);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("data.streams"), std::string::npos) << e.what();
  }
}

TEST_F(DataLoader, MissingShardIsAUserError) {
  TrainLoaderOptions o = options();
  o.shards = dir_->str("synth/train/{00000..00009}.tar");
  try {
    TrainLoader l(o, test::toy_tokenize);
    FAIL();
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("00004.tar"), std::string::npos) << e.what();
  }
  o = options();
  o.global_crop = {0.0, 1.0};
  EXPECT_THROW(TrainLoader(o, test::toy_tokenize), UserError);
}

// Copies the first n samples of a synth shard into a new shard, then appends planted ones.
struct ShardBuilder {
  std::vector<RawSample> samples;
  explicit ShardBuilder(const std::string& source, int n) {
    SampleReader r(source);
    RawSample s;
    while (static_cast<int>(samples.size()) < n && r.next(s)) samples.push_back(s);
  }
  void write(const std::string& path) const {
    TarWriter w(path);
    for (const RawSample& s : samples)
      for (const auto& [ext, data] : s.members) w.add(s.key + "." + ext, data);
    w.close();
  }
};

TEST_F(DataLoader, CorruptInputsAreSkippedAndCounted) {
  const std::string src = dir_->str("synth/train/00000.tar");
  ShardBuilder sb(src, 10);
  const RawSample good = sb.samples[0];
  auto planted = [&](const std::string& key) {
    RawSample s = good;
    s.key = key;
    return s;
  };
  RawSample truncated = planted("bad_truncated_jpeg");
  truncated.members["jpg"].resize(truncated.members["jpg"].size() / 2);
  RawSample zero = planted("bad_zero_byte_jpeg");
  zero.members["jpg"].clear();
  RawSample garbage_npy = planted("garbage_npy");
  garbage_npy.members["roi.npy"] = std::string(300, '\x01');
  RawSample no_caption = planted("bad_no_caption");
  no_caption.members.erase("txt");
  RawSample empty_caption = planted("bad_empty_caption");
  empty_caption.members["txt"].clear();
  RawSample latin1_caption = planted("bad_not_utf8_caption");
  latin1_caption.members["txt"] = "caf\xe9 au lait";
  RawSample no_sidecars = planted("no_sidecars");
  no_sidecars.members.erase("summary.txt");
  no_sidecars.members.erase("tags.txt");
  no_sidecars.members.erase("roi.npy");
  for (const RawSample* s : {&truncated, &zero, &garbage_npy, &no_caption, &empty_caption, &latin1_caption, &no_sidecars})
    sb.samples.insert(sb.samples.begin() + 3, *s);
  test::TempDir dir("corrupt");
  sb.write(dir.str("00000.tar"));

  TrainLoaderOptions o = options();
  o.shards = dir.str("00000.tar");
  o.batch_size = 12;  // 10 good + garbage_npy + no_sidecars
  o.streams = 1;
  o.shuffle_block = 1;  // file order
  o.max_bad_fraction = 0.5;
  for (int workers : {0, 3}) {
    o.workers = workers;
    TrainLoader l(o, test::toy_tokenize);
    Batch b = l.next();
    const DataStats st = l.stats();
    EXPECT_EQ(st.samples_skipped, 5);
    EXPECT_EQ(st.members_dropped, 1);
    EXPECT_EQ(st.samples_read, 17);
    for (const std::string& k : b.keys) EXPECT_EQ(k.rfind("bad_", 0), std::string::npos) << k;
  }
  TrainLoader l(o, test::toy_tokenize);
  Batch b = l.next();
  const auto pos = [&](const std::string& k) {
    return static_cast<int64_t>(std::find(b.keys.begin(), b.keys.end(), k) - b.keys.begin());
  };
  const int64_t g = pos("garbage_npy"), n = pos("no_sidecars");
  ASSERT_LT(g, 12);
  ASSERT_LT(n, 12);
  // fill rules: a dropped .npy or a sample without ROIs is all-masked; missing texts use the caption
  EXPECT_FALSE(b.roi_mask[g].any().item<bool>());
  EXPECT_FALSE(b.roi_mask[n].any().item<bool>());
  EXPECT_TRUE(b.roi_mask[0].any().item<bool>());
  EXPECT_TRUE(b.summary[n].equal(b.text[n]));
  EXPECT_TRUE(b.tags[n].equal(b.text[n]));
  EXPECT_FALSE(b.summary[0].equal(b.text[0]));

  // too many bad samples: a clear error instead of silent training
  o.max_bad_fraction = 0.1;
  TrainLoader strict(o, test::toy_tokenize);
  EXPECT_THROW(
      {
        for (int i = 0; i < 30; ++i) strict.next();  // judged once 200 samples were read
      },
      UserError);
}

TEST_F(DataLoader, BatchWithoutSidecarsLeavesThemUndefined) {
  ShardBuilder sb(dir_->str("synth/train/00001.tar"), 6);
  for (RawSample& s : sb.samples) {
    s.members.erase("summary.txt");
    s.members.erase("tags.txt");
    s.members.erase("roi.npy");
  }
  test::TempDir dir("plain");
  sb.write(dir.str("00000.tar"));
  TrainLoaderOptions o = options();
  o.shards = dir.str("00000.tar");
  o.batch_size = 4;
  TrainLoader l(o, test::toy_tokenize);
  Batch b = l.next();
  EXPECT_TRUE(b.text.defined());
  EXPECT_FALSE(b.summary.defined());
  EXPECT_FALSE(b.tags.defined());
  EXPECT_FALSE(b.roi.defined());
  EXPECT_FALSE(b.roi_mask.defined());
  EXPECT_TRUE(b.local_images.defined());
}

TEST_F(DataLoader, DamagedAndEmptyShardsAreSkipped) {
  test::TempDir dir("damaged");
  std::filesystem::copy_file(dir_->str("synth/train/00000.tar"), dir.str("00000.tar"));
  const std::string bytes = test::read_file(dir_->str("synth/train/00001.tar"));
  test::write_file(dir.str("00001.tar"), bytes.substr(0, bytes.size() / 2));
  test::write_file(dir.str("00002.tar"), "");
  TrainLoaderOptions o = options();
  o.shards = dir.str("{00000..00002}.tar");
  o.streams = 3;
  o.batch_size = 10;
  o.max_bad_fraction = 1.0;
  TrainLoader l(o, test::toy_tokenize);
  for (int i = 0; i < 3; ++i) l.next();  // crosses epochs without crashing
  EXPECT_GE(l.stats().shards_damaged, 1);
  EXPECT_GE(l.epoch(), 1);
}

TEST_F(DataLoader, EvalLoaderReadsLabelledShards) {
  EvalLoaderOptions o;
  o.source = dir_->str("synth/heldout");
  o.image_size = 32;
  o.batch_size = 20;
  EvalLoader l(o);
  ASSERT_EQ(l.class_names().size(), 48u);
  EXPECT_EQ(l.class_names()[1], "orange circle");
  EXPECT_FALSE(l.is_image_folder());
  EvalBatch b;
  int64_t n = 0;
  std::vector<int64_t> labels;
  while (l.next(b)) {
    EXPECT_EQ(b.images.sizes().slice(1), (at::IntArrayRef{3, 32, 32}));
    n += b.size();
    for (int64_t i = 0; i < b.size(); ++i) labels.push_back(b.labels[i].item<int64_t>());
  }
  EXPECT_EQ(n, 48);
  EXPECT_EQ(labels.front(), 0);
  EXPECT_EQ(labels.back(), 47);
  l.reset();
  ASSERT_TRUE(l.next(b));
  EXPECT_EQ(b.size(), 20);
}

TEST_F(DataLoader, ReadEvalImagesFromImageFolder) {
  test::TempDir dir("folder");
  Image img;
  img.width = 40;
  img.height = 30;
  img.rgb.assign(40 * 30 * 3, 90);
  for (const char* cls : {"zebra", "ant"}) {
    std::filesystem::create_directories(dir.path / cls / "sub");
    test::write_file(dir.str(std::string(cls) + "/a.jpg"), encode_jpeg(img));
    test::write_file(dir.str(std::string(cls) + "/sub/b.jpg"), encode_jpeg(img));
  }
  test::write_file(dir.str("ant/broken.jpg"), "not a jpeg");
  test::write_file(dir.str("ant/readme.txt"), "ignored");
  const EvalSet set = read_eval_images(dir.str(), 24);
  EXPECT_EQ(set.class_names, (std::vector<std::string>{"ant", "zebra"}));
  ASSERT_EQ(set.images.sizes(), (at::IntArrayRef{4, 3, 24, 24}));
  EXPECT_EQ(set.labels.sum().item<int64_t>(), 2);  // two zebras (label 1)
  EXPECT_EQ(set.stats.samples_skipped, 1);
}

}  // namespace
}  // namespace pc
