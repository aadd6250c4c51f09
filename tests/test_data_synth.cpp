// The synthetic dataset: determinism, layout, members, counts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/sample_count.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"
#include "test_data_util.h"

namespace pc {
namespace {

SynthOptions small_options(const std::string& out, uint64_t seed = 3) {
  SynthOptions o;
  o.out_dir = out;
  o.train_samples = 90;
  o.samples_per_shard = 40;
  o.heldout_per_class = 1;
  o.seed = seed;
  return o;
}

uint64_t checksum(const std::string& bytes) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  return h;
}

std::vector<uint64_t> shard_checksums(const std::string& root) {
  std::vector<uint64_t> sums;
  for (const std::string& p : list_shards(root + "/train")) sums.push_back(checksum(test::read_file(p)));
  for (const std::string& p : list_shards(root + "/heldout")) sums.push_back(checksum(test::read_file(p)));
  return sums;
}

TEST(DataSynth, DeterministicForASeed) {
  test::TempDir dir("synth_det");
  const SynthResult a = synth_dataset(small_options(dir.str("a")));
  SynthOptions two_threads = small_options(dir.str("b"));
  two_threads.threads = 2;
  const SynthResult b = synth_dataset(two_threads);
  const SynthResult c = synth_dataset(small_options(dir.str("c"), 4));
  EXPECT_EQ(a.texts, b.texts);
  const auto sa = shard_checksums(dir.str("a")), sb = shard_checksums(dir.str("b")), sc = shard_checksums(dir.str("c"));
  ASSERT_EQ(sa.size(), 3u + 2u);  // 90 / 40 -> 3 train shards; 48 held-out images -> 2 shards
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa[0], sc[0]);
  EXPECT_EQ(test::read_file(dir.str("a/meta.json")), test::read_file(dir.str("b/meta.json")));
}

TEST(DataSynth, ShardsHoldTheDesignMembers) {
  test::TempDir dir("synth_members");
  const SynthResult r = synth_dataset(small_options(dir.str()));
  EXPECT_EQ(r.train_samples, 90);
  EXPECT_EQ(r.train_shards, 3);
  EXPECT_EQ(r.num_classes, 48);
  EXPECT_EQ(r.heldout_samples, 48);
  EXPECT_EQ(r.texts.size(), 3u * 90);

  std::set<std::string> keys;
  std::set<int64_t> object_counts;
  for (const std::string& shard : list_shards(dir.str("train/{00000..00002}.tar"))) {
    SampleReader reader(shard);
    RawSample s;
    while (reader.next(s)) {
      keys.insert(s.key);
      for (const char* ext : {"jpg", "txt", "summary.txt", "tags.txt", "roi.npy", "json"})
        ASSERT_TRUE(s.has(ext)) << s.key << " lacks ." << ext;
      const Image img = decode_image(s.members["jpg"].data(), s.members["jpg"].size(), "jpg");
      EXPECT_EQ(img.width, 96);
      EXPECT_EQ(img.height, 96);
      const NpyArray roi = parse_npy(s.members["roi.npy"].data(), s.members["roi.npy"].size());
      ASSERT_EQ(roi.cols(), 2052);
      object_counts.insert(roi.rows());
      const auto meta = nlohmann::json::parse(s.members["json"]);
      ASSERT_EQ(static_cast<int64_t>(meta["objects"].size()), roi.rows());
      for (int64_t m = 0; m < roi.rows(); ++m) {
        for (int j = 0; j < 4; ++j) {
          const float v = roi.data[static_cast<size_t>(m * 2052 + 2048 + j)];
          EXPECT_GE(v, 0.0f);
          EXPECT_LE(v, 1.0f);
        }
        const float* box = &roi.data[static_cast<size_t>(m * 2052 + 2048)];
        EXPECT_LT(box[0], box[2]);
        EXPECT_LT(box[1], box[3]);
        // the summary and tags name every object
        const std::string name = meta["objects"][m]["colour"].get<std::string>() + " " +
                                 meta["objects"][m]["shape"].get<std::string>();
        EXPECT_NE(s.members["summary.txt"].find(name), std::string::npos);
        EXPECT_NE(s.members["tags.txt"].find(meta["objects"][m]["size"].get<std::string>() + " " + name),
                  std::string::npos);
        EXPECT_NE(s.members["txt"].find(meta["objects"][m]["colour"].get<std::string>()), std::string::npos);
        EXPECT_NE(s.members["txt"].find(meta["objects"][m]["shape"].get<std::string>()), std::string::npos);
      }
      EXPECT_GT(s.members["txt"].size(), s.members["summary.txt"].size());
    }
  }
  EXPECT_EQ(keys.size(), 90u);
  EXPECT_EQ(object_counts, (std::set<int64_t>{1, 2, 3, 4}));

  // held-out: single objects with a class index; classes.txt names them
  const auto classes = r.classes;
  std::ifstream cls_file(dir.str("classes.txt"));
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(cls_file, line)) lines.push_back(line);
  EXPECT_EQ(lines, classes);
  EXPECT_EQ(classes[0], "red circle");
  SampleReader held(dir.str("heldout/00000.tar"));
  RawSample s;
  ASSERT_TRUE(held.next(s));
  EXPECT_TRUE(s.has("jpg"));
  ASSERT_TRUE(s.has("cls"));
  EXPECT_EQ(s.members["cls"], "0");

  // counts: meta.json and a header scan agree; a rewritten shard is rescanned
  EXPECT_EQ(count_samples(dir.str("train")), 90);
  EXPECT_EQ(count_samples(dir.str("train/{00000..00001}.tar")), 80);
  EXPECT_EQ(scan_shard_samples(dir.str("train/00002.tar")), 10);
  {
    TarWriter w(dir.str("train/00002.tar"));
    w.add("x.txt", "one sample");
    w.close();
  }
  EXPECT_EQ(count_samples(dir.str("train")), 81);
}

TEST(DataSynth, ObjectAttributesShapeTheRoiFeatures) {
  // Objects with the same shape and colour have much closer appearance features than others.
  test::TempDir dir("synth_roi");
  SynthOptions o = small_options(dir.str());
  o.min_objects = o.max_objects = 1;
  o.train_samples = 60;
  o.samples_per_shard = 60;
  synth_dataset(o);
  std::vector<std::pair<std::string, std::vector<float>>> items;
  SampleReader reader(dir.str("train/00000.tar"));
  RawSample s;
  while (reader.next(s)) {
    const auto meta = nlohmann::json::parse(s.members["json"]);
    const NpyArray roi = parse_npy(s.members["roi.npy"].data(), s.members["roi.npy"].size());
    items.emplace_back(meta["objects"][0]["colour"].get<std::string>() + meta["objects"][0]["shape"].get<std::string>(),
                       std::vector<float>(roi.data.begin(), roi.data.begin() + 2048));
  }
  double same = 0, diff = 0;
  int n_same = 0, n_diff = 0;
  for (size_t i = 0; i < items.size(); ++i)
    for (size_t j = i + 1; j < items.size(); ++j) {
      double d = 0;
      for (int k = 0; k < 2048; ++k) d += (items[i].second[k] - items[j].second[k]) * (items[i].second[k] - items[j].second[k]);
      if (items[i].first == items[j].first) same += d, ++n_same;
      else diff += d, ++n_diff;
    }
  ASSERT_GT(n_same, 0);
  EXPECT_LT(same / n_same, 0.6 * diff / n_diff);
}

TEST(DataSynth, BadOptionsAreUserErrors) {
  SynthOptions o;
  o.out_dir = "";
  EXPECT_THROW(synth_dataset(o), UserError);
  o.out_dir = "/tmp/unused";
  o.train_samples = 0;
  EXPECT_THROW(synth_dataset(o), UserError);
  o.train_samples = 10;
  o.max_objects = 0;
  EXPECT_THROW(synth_dataset(o), UserError);
}

}  // namespace
}  // namespace pc
