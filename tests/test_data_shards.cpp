// Shard specs, tar writing/reading, WebDataset grouping.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/rng.h"
#include "pyramidclip/data/sample_count.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"
#include "test_data_util.h"

namespace pc {
namespace {

using Strings = std::vector<std::string>;

TEST(DataShards, BraceExpansion) {
  EXPECT_EQ(expand_braces("a.tar"), Strings({"a.tar"}));
  EXPECT_EQ(expand_braces("d/{00000..00002}.tar"), Strings({"d/00000.tar", "d/00001.tar", "d/00002.tar"}));
  EXPECT_EQ(expand_braces("{8..11}"), Strings({"8", "9", "10", "11"}));
  EXPECT_EQ(expand_braces("{08..10}"), Strings({"08", "09", "10"}));
  EXPECT_EQ(expand_braces("{0..0}"), Strings({"0"}));
  EXPECT_EQ(expand_braces("{a,b}/{0..1}.tar"), Strings({"a/0.tar", "a/1.tar", "b/0.tar", "b/1.tar"}));
  EXPECT_EQ(expand_braces("x{a,{1..2}}y"), Strings({"xay", "x1y", "x2y"}));
  EXPECT_EQ(expand_braces("s3/{000..010}").size(), 11u);
  EXPECT_EQ(expand_braces("s3/{000..010}").back(), "s3/010");
  EXPECT_THROW(expand_braces("d/{0..3.tar"), UserError);
  EXPECT_THROW(expand_braces("d/0..3}.tar"), UserError);
  EXPECT_THROW(expand_braces("d/{5..3}.tar"), UserError);
  EXPECT_THROW(expand_braces("d/{a..3}.tar"), UserError);
}

TEST(DataShards, ListShardsFromPatternListFileAndDirectory) {
  test::TempDir dir("shards");
  for (int i = 0; i < 3; ++i) {
    TarWriter w(dir.str("0000" + std::to_string(i) + ".tar"));
    w.add("k.txt", "x");
    w.close();
  }
  test::write_file(dir.str("notes.md"), "not a shard");
  const Strings all = list_shards(dir.str("{00000..00002}.tar"));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(list_shards(dir.str()), all);  // directory: sorted *.tar
  test::write_file(dir.str("list.txt"), "# my shards\n00002.tar\n\n" + dir.str("00000.tar") + "\r\n");
  EXPECT_EQ(list_shards(dir.str("list.txt")), Strings({all[2], all[0]}));
  EXPECT_EQ(list_shards(dir.str("00000.tar") + "::" + dir.str("00001.tar")), Strings({all[0], all[1]}));

  // the first missing shard is named in the error
  try {
    list_shards(dir.str("{00000..00004}.tar"));
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("00003.tar"), std::string::npos) << e.what();
  }
  EXPECT_THROW(list_shards(dir.str("missing-list.txt")), UserError);
  EXPECT_THROW(list_shards(""), UserError);
  std::filesystem::create_directories(dir.path / "empty");
  EXPECT_THROW(list_shards(dir.str("empty")), UserError);
}

TEST(DataShards, SplitKeyExtLikeWebDataset) {
  std::string k, e;
  split_key_ext("a/b/000123.summary.txt", k, e);
  EXPECT_EQ(k, "a/b/000123");
  EXPECT_EQ(e, "summary.txt");
  split_key_ext("x.y/000.JPG", k, e);
  EXPECT_EQ(k, "x.y/000");
  EXPECT_EQ(e, "jpg");
  split_key_ext("README", k, e);
  EXPECT_EQ(k, "README");
  EXPECT_EQ(e, "");
}

TEST(DataShards, TarRoundTripAndGrouping) {
  test::TempDir dir("tar");
  const std::string path = dir.str("s.tar");
  {
    TarWriter w(path);
    w.add("a.jpg", std::string("\xFF\xD8\xFF", 3));
    w.add("a.txt", "caption a");
    w.add("a.summary.txt", "");
    w.add("b.txt", std::string(70000, 'b'));  // spans several read blocks
    w.add("c.txt", "caption c");
    w.add("c.cls", "3");
    w.close();
  }
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  TarReader tar(path);
  TarMember m;
  ASSERT_TRUE(tar.next(m));
  EXPECT_EQ(m.name, "a.jpg");
  EXPECT_EQ(m.data.size(), 3u);

  SampleReader r(path);
  RawSample s;
  ASSERT_TRUE(r.next(s));
  EXPECT_EQ(s.key, "a");
  EXPECT_EQ(s.members.size(), 3u);
  EXPECT_TRUE(s.has("summary.txt"));
  EXPECT_EQ(s.members["summary.txt"], "");
  ASSERT_TRUE(r.next(s));
  EXPECT_EQ(s.key, "b");
  EXPECT_EQ(s.members["txt"].size(), 70000u);
  ASSERT_TRUE(r.next(s));
  EXPECT_EQ(s.key, "c");
  EXPECT_EQ(s.members["cls"], "3");
  EXPECT_FALSE(r.next(s));
  EXPECT_FALSE(r.damaged());
  EXPECT_EQ(scan_shard_samples(path), 3);
}

TEST(DataShards, TruncatedTarEndsTheShardAsDamaged) {
  test::TempDir dir("trunc");
  const std::string path = dir.str("s.tar");
  {
    TarWriter w(path);
    for (int i = 0; i < 10; ++i) w.add("k" + std::to_string(i) + ".txt", std::string(3000, 'x'));
    w.close();
  }
  std::string bytes = test::read_file(path);
  test::write_file(path, bytes.substr(0, 5 * 3584 + 1000));  // cut inside the 6th member
  SampleReader r(path);
  RawSample s;
  int n = 0;
  while (r.next(s)) ++n;
  EXPECT_EQ(n, 5);
  EXPECT_TRUE(r.damaged());
  EXPECT_NE(r.error().find("truncated member k5.txt"), std::string::npos) << r.error();
  // a zero-byte shard is not a tar archive: CorruptData, which the loaders count and skip
  test::write_file(path, "");
  EXPECT_THROW(SampleReader empty(path), CorruptData);
}

}  // namespace
}  // namespace pc

namespace pc {
namespace {

// Random byte damage anywhere in a shard must never crash the reader or the decoders.
TEST(DataShards, RandomCorruptionNeverCrashes) {
  test::TempDir dir("fuzz");
  const std::string path = dir.str("s.tar");
  {
    TarWriter w(path);
    std::vector<float> roi(2 * 2052, 0.5f);
    for (int i = 0; i < 4; ++i) {
      const std::string k = "k" + std::to_string(i);
      Image img;
      img.width = img.height = 24;
      img.rgb.assign(24 * 24 * 3, static_cast<uint8_t>(40 * i));
      w.add(k + ".jpg", encode_jpeg(img));
      w.add(k + ".txt", "caption");
      w.add(k + ".roi.npy", encode_npy(roi.data(), 2, 2052));
    }
    w.close();
  }
  const std::string clean = test::read_file(path);
  Rng rng(99);
  int decoded = 0, failures = 0;
  for (int round = 0; round < 150; ++round) {
    std::string bytes = clean;
    const int hits = 1 + static_cast<int>(rng.below(8));
    for (int h = 0; h < hits; ++h) bytes[rng.below(bytes.size())] = static_cast<char>(rng.below(256));
    if (round % 5 == 0) bytes.resize(rng.below(bytes.size()));
    test::write_file(path, bytes);
    try {
      SampleReader r(path);
      RawSample s;
      while (r.next(s)) {
        for (const auto& [ext, data] : s.members) {
          try {
            if (ext == "jpg") decode_image(data.data(), data.size(), ext, 8);
            if (ext == "roi.npy") parse_npy(data.data(), data.size());
            ++decoded;
          } catch (const CorruptData&) {
            ++failures;
          }
        }
      }
    } catch (const CorruptData&) {
      ++failures;
    }
  }
  EXPECT_GT(decoded, 0);
  EXPECT_GT(failures, 0);
}

// Shards written by GNU tar in its GNU (././@LongLink) and POSIX pax formats: member names
// longer than ustar's 100 bytes (and a UTF-8 one) come back whole, grouped by key.
TEST(DataShards, ReadsGnuAndPaxLongNames) {
  if (std::system("tar --version > /dev/null 2>&1") != 0) GTEST_SKIP() << "GNU tar is not installed";
  test::TempDir dir("longnames");
  const std::string deep = "sub/" + std::string(120, 'd') + "/";
  const std::vector<std::string> keys = {deep + "000001", deep + "\xc3\xa9t\xc3\xa9_" + std::string(90, 'k')};
  Image img;
  img.width = img.height = 8;
  img.rgb.assign(8 * 8 * 3, 100);
  const std::string jpg = encode_jpeg(img);
  std::filesystem::create_directories(dir.str("src/" + deep));
  for (const auto& k : keys) {
    test::write_file(dir.str("src/" + k + ".jpg"), jpg);
    test::write_file(dir.str("src/" + k + ".txt"), "caption of " + k);
  }
  for (const std::string format : {"gnu", "pax"}) {
    const std::string tar = dir.str(format + ".tar");
    const std::string cmd = "cd '" + dir.str("src") + "' && tar --format=" + format + " --sort=name -cf '" + tar + "' sub";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    SampleReader r(tar);
    RawSample s;
    std::vector<std::string> got;
    while (r.next(s)) {
      got.push_back(s.key);
      EXPECT_EQ(s.members.at("jpg"), jpg);
      EXPECT_EQ(s.members.at("txt"), "caption of " + s.key);
    }
    EXPECT_FALSE(r.damaged()) << r.error();
    std::vector<std::string> want = keys;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want) << format;
    EXPECT_EQ(scan_shard_samples(tar), 2) << format;
  }
}

}  // namespace
}  // namespace pc
