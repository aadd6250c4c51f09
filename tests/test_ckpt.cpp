// Checkpoint module (DESIGN §3): optimizer shards resharded to any world size, layout and
// mixed-save errors, state.h5 round trip, manifest verification against every kind of damage,
// newest-valid selection, publishing, retention, byte-identical HDF5 output, fs_sync helpers.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pyramidclip/ckpt/checkpoint_dir.h"
#include "pyramidclip/ckpt/checkpoint_files.h"
#include "pyramidclip/model/model_h5.h"
#include "pyramidclip/optim/flat_layout.h"
#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace pc {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("pc_ckpt_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The UserError message of fn(), or "<no error>"; any other exception fails the test.
std::string user_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UserError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

void flip_middle_byte(const std::string& path) {
  std::string bytes = read_text(path);
  ASSERT_FALSE(bytes.empty()) << path;
  bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5A);
  write_text(path, bytes);
}

void truncate_by_one(const std::string& path) {
  const auto size = fs::file_size(path);
  ASSERT_GT(size, 0u) << path;
  fs::resize_file(path, size - 1);
}

// ---------------------------------------------------------------------------------------------
// A small model's flat layout: 7 + 13 + 1 + 30 + 5 = 56 values.

const std::vector<std::string> kNames = {"visual.conv1.weight", "visual.ln.bias", "logit_scale", "text.proj",
                                         "text.ln.weight"};
const std::vector<std::vector<int64_t>> kShapes = {{7}, {13}, {1}, {5, 6}, {5}};
constexpr int64_t kNumel = 56;

FlatLayout layout_of(const std::vector<std::string>& names, const std::vector<std::vector<int64_t>>& shapes,
                     int world) {
  std::vector<at::Tensor> params;
  std::vector<bool> decay;
  for (size_t i = 0; i < shapes.size(); ++i) {
    params.push_back(at::zeros(shapes[i]));
    decay.push_back(i % 2 == 0);
  }
  return make_flat_layout(names, params, decay, world);
}

FlatLayout test_layout(int world) { return layout_of(kNames, kShapes, world); }

// The flat vectors a run would hold (exactly representable floats), padding excluded.
at::Tensor flat_values(const std::string& which, int64_t numel) {
  at::Tensor i = at::arange(numel, at::kFloat);
  if (which == "master") return i + 0.5;
  if (which == "exp_avg") return -(i + 1) * 0.25;
  return i + 1000;  // exp_avg_sq
}

// The same over [0, padded): zero in the padding.
at::Tensor padded_values(const std::string& which, int64_t numel, int64_t padded) {
  at::Tensor out = at::zeros({padded}, at::kFloat);
  out.narrow(0, 0, numel).copy_(flat_values(which, numel));
  return out;
}

at::Tensor rng_of(int rank) { return at::arange(rank * 10, rank * 10 + 16 + rank, at::kLong).to(at::kByte); }

// Writes every rank's canonical slice for `layout`. The padding of the saved slices holds
// garbage on purpose: the reader must return zeros there whatever the file holds.
void write_shards(const std::string& dir, const FlatLayout& layout, int64_t adam_step,
                  const std::vector<int64_t>& step_of_rank = {}) {
  const int world = layout.world_size;
  for (int r = 0; r < world; ++r) {
    OptimShard s;
    s.rank = r;
    s.world_size = world;
    s.stage = 2;
    s.begin = layout.shard_begin(r);
    s.end = layout.shard_end(r);
    s.adam_step = step_of_rank.empty() ? adam_step : step_of_rank[r];
    auto slice = [&](const std::string& which) {
      at::Tensor v = at::full({layout.padded_numel}, -777.0f);
      v.narrow(0, 0, layout.numel).copy_(flat_values(which, layout.numel));
      return v.narrow(0, s.begin, s.end - s.begin).clone();
    };
    s.master = slice("master");
    s.exp_avg = slice("exp_avg");
    s.exp_avg_sq = slice("exp_avg_sq");
    if (r != 2) s.rng = rng_of(r);  // rank 2 saves no generator state: reads back empty
    write_optim_shard((fs::path(dir) / optim_file_name(r, world)).string(), s, layout);
  }
}

TEST(CkptNames, StepDirAndOptimFileNames) {
  EXPECT_EQ(step_dir_name(0), "step-000000000");
  EXPECT_EQ(step_dir_name(12000), "step-000012000");
  EXPECT_EQ(step_dir_name(123456789), "step-123456789");
  EXPECT_EQ(optim_file_name(3, 8), "optim-00003-of-00008.h5");
  EXPECT_EQ(optim_file_name(0, 1), "optim-00000-of-00001.h5");
}

TEST(OptimShard, ReshardsToEveryWorldSize) {
  TempDir dir;
  const FlatLayout saved = test_layout(3);
  ASSERT_EQ(saved.numel, kNumel);
  ASSERT_EQ(saved.padded_numel, 57);  // one padding element
  ASSERT_EQ(saved.shard_numel(), 19);
  write_shards(dir.path.string(), saved, 1234);

  for (int world : {1, 2, 3, 4, 5}) {
    const FlatLayout now = saved.with_world_size(world);
    OptimShardSet set(dir.path.string(), 3, now);
    EXPECT_EQ(set.world_size(), 3);
    EXPECT_EQ(set.adam_step(), 1234);
    for (const std::string which : {"master", "exp_avg", "exp_avg_sq"}) {
      const at::Tensor want = padded_values(which, kNumel, now.padded_numel);
      at::Tensor joined = at::empty({0}, at::kFloat);
      for (int r = 0; r < world; ++r) {
        const int64_t b = now.shard_begin(r), e = now.shard_end(r);
        const at::Tensor got = set.read(which, b, e);
        ASSERT_EQ(got.scalar_type(), at::kFloat);
        ASSERT_EQ(got.numel(), e - b) << which << " world " << world << " rank " << r;
        EXPECT_TRUE(at::equal(got, want.narrow(0, b, e - b)))
            << which << " world " << world << " rank " << r << "\n got " << got << "\n want " << want.narrow(0, b, e - b);
        joined = at::cat({joined, got});
      }
      EXPECT_TRUE(at::equal(joined, want)) << which << " world " << world;
    }
  }

  // arbitrary ranges, crossing file boundaries, empty, and wholly inside the padding
  OptimShardSet set(dir.path.string(), 3, saved.with_world_size(4));
  const at::Tensor want = padded_values("exp_avg", kNumel, 80);
  for (int64_t b = 0; b <= 60; ++b)
    for (int64_t len : {0, 1, 2, 18, 19, 20, 38, 39}) {
      if (b + len > 80) continue;
      EXPECT_TRUE(at::equal(set.read("exp_avg", b, b + len), want.narrow(0, b, len))) << "[" << b << ", " << b + len << ")";
    }
  EXPECT_TRUE(at::equal(set.read("master", 56, 57), at::zeros({1})));
  EXPECT_EQ(set.read("master", 0, 56).sum().item<double>(), 56 * 55 / 2 + 56 * 0.5);
}

TEST(OptimShard, AdamStepAndRngRoundTrip) {
  TempDir dir;
  const FlatLayout saved = test_layout(3);
  write_shards(dir.path.string(), saved, 987654321012LL);
  OptimShardSet set(dir.path.string(), 3, saved.with_world_size(2));
  EXPECT_EQ(set.adam_step(), 987654321012LL);
  for (int r = 0; r < 3; ++r) {
    const at::Tensor rng = set.rng(r);
    EXPECT_EQ(rng.scalar_type(), at::kByte) << r;
    if (r == 2) {
      EXPECT_EQ(rng.numel(), 0);
    } else {
      EXPECT_TRUE(at::equal(rng, rng_of(r))) << r << ": " << rng;
    }
  }
  // a real generator's state survives byte for byte
  at::Tensor state = at::detail::getDefaultCPUGenerator().get_state();
  OptimShard s;
  const FlatLayout one = test_layout(1);
  s.end = one.padded_numel;
  s.master = s.exp_avg = s.exp_avg_sq = at::zeros({one.padded_numel});
  s.rng = state;
  const std::string sub = dir / "one";
  fs::create_directories(sub);
  write_optim_shard((fs::path(sub) / optim_file_name(0, 1)).string(), s, one);
  EXPECT_TRUE(at::equal(OptimShardSet(sub, 1, one).rng(0), state));
}

TEST(OptimShard, LayoutMismatchNamesFileAndFix) {
  TempDir dir;
  write_shards(dir.path.string(), test_layout(3), 5);
  const std::string file0 = optim_file_name(0, 3);
  auto check = [&](const FlatLayout& expected, const std::string& what) {
    const std::string err = user_error([&] { OptimShardSet(dir.path.string(), 3, expected); });
    EXPECT_TRUE(contains(err, file0)) << what << ": " << err;
    EXPECT_TRUE(contains(err, "resume with")) << what << ": " << err;
    EXPECT_TRUE(contains(err, "model configuration")) << what << ": " << err;
  };
  {
    auto names = kNames;
    names[3] = "text.projection";
    check(layout_of(names, kShapes, 3), "renamed parameter");
    const std::string err = user_error([&] { OptimShardSet(dir.path.string(), 3, layout_of(names, kShapes, 3)); });
    EXPECT_TRUE(contains(err, "text.proj")) << err;
  }
  {
    auto shapes = kShapes;
    shapes[3] = {6, 5};  // same numel, other shape
    check(layout_of(kNames, shapes, 3), "transposed shape");
    shapes[3] = {5, 7};  // other numel
    check(layout_of(kNames, shapes, 3), "grown shape");
  }
  {
    auto names = kNames;
    auto shapes = kShapes;
    names.pop_back();
    shapes.pop_back();
    check(layout_of(names, shapes, 3), "one parameter fewer");
    names = kNames;
    shapes = kShapes;
    names.push_back("extra");
    shapes.push_back({0});  // an empty tensor: same numel, one more parameter
    check(layout_of(names, shapes, 3), "one empty parameter more");
  }
  {
    // same set of parameters in another order: offsets move
    auto names = kNames;
    auto shapes = kShapes;
    std::swap(names[0], names[4]);
    std::swap(shapes[0], shapes[4]);
    check(layout_of(names, shapes, 3), "reordered parameters");
  }
  // the files for another world size are simply absent: the error names the missing file
  const std::string err = user_error([&] { OptimShardSet(dir.path.string(), 2, test_layout(2)); });
  EXPECT_TRUE(contains(err, optim_file_name(0, 2))) << err;
}

TEST(OptimShard, MixedSavesAreRejected) {
  TempDir dir;
  write_shards(dir.path.string(), test_layout(3), 0, {100, 100, 99});
  const std::string err = user_error([&] { OptimShardSet(dir.path.string(), 3, test_layout(3)); });
  EXPECT_TRUE(contains(err, optim_file_name(2, 3))) << err;
  EXPECT_TRUE(contains(err, "99")) << err;
  EXPECT_TRUE(contains(err, "100")) << err;
  EXPECT_TRUE(contains(err, "mixed")) << err;

  // a slice that is not the rank's canonical one (e.g. a file renamed from another world size)
  const std::string other = dir / "other";
  fs::create_directories(other);
  write_shards(other, test_layout(3), 7);
  fs::copy_file(fs::path(other) / optim_file_name(0, 3), fs::path(other) / optim_file_name(1, 3),
                fs::copy_options::overwrite_existing);
  const std::string err2 = user_error([&] { OptimShardSet(other, 3, test_layout(3)); });
  EXPECT_TRUE(contains(err2, optim_file_name(1, 3))) << err2;
}

TEST(TrainStateFile, RoundTripsEveryField) {
  TempDir dir;
  TrainState s;
  s.step = 12345678901LL;
  s.samples_seen = 1e15 + 0.5;
  s.epoch = 3.0625;
  s.world_size = 48;
  s.global_batch = 32768;
  s.seed = -42;
  s.lr_peak = 5e-4;
  s.lr_warmup_samples = 2e6;
  s.lr_total_samples = 4.5e8;
  s.loss_scale = 65536;
  s.loss_scale_tracker = 1777;
  s.skipped_steps = 13;
  s.restarts = 2;
  s.config = "model:\n  arch: \"RN50\"\n  note: ünïcødé ✓ 日本語 🚀\n\ttabbed\n\n";
  s.version = "0.4.1-dev";
  s.arch = "RN50";
  s.loader_state = {0, 1, -1, INT64_MAX, INT64_MIN, 42, 7};
  const std::string path = dir / "state.h5";
  write_train_state(path, s);
  const TrainState t = read_train_state(path);
  EXPECT_EQ(t.step, s.step);
  EXPECT_EQ(t.samples_seen, s.samples_seen);
  EXPECT_EQ(t.epoch, s.epoch);
  EXPECT_EQ(t.world_size, s.world_size);
  EXPECT_EQ(t.global_batch, s.global_batch);
  EXPECT_EQ(t.seed, s.seed);
  EXPECT_EQ(t.lr_peak, s.lr_peak);
  EXPECT_EQ(t.lr_warmup_samples, s.lr_warmup_samples);
  EXPECT_EQ(t.lr_total_samples, s.lr_total_samples);
  EXPECT_EQ(t.loss_scale, s.loss_scale);
  EXPECT_EQ(t.loss_scale_tracker, s.loss_scale_tracker);
  EXPECT_EQ(t.skipped_steps, s.skipped_steps);
  EXPECT_EQ(t.restarts, s.restarts);
  EXPECT_EQ(t.config, s.config);
  EXPECT_EQ(t.version, s.version);
  EXPECT_EQ(t.arch, s.arch);
  EXPECT_EQ(t.loader_state, s.loader_state);

  // empty strings and an empty loader state (a run that has not read any data yet)
  TrainState empty;
  write_train_state(path, empty);  // overwrites
  const TrainState u = read_train_state(path);
  EXPECT_EQ(u.step, 0);
  EXPECT_EQ(u.loss_scale, 1.0);
  EXPECT_EQ(u.world_size, 1);
  EXPECT_EQ(u.config, "");
  EXPECT_EQ(u.arch, "");
  EXPECT_TRUE(u.loader_state.empty());

  // not a state file: the error names the file
  write_text(dir / "junk.h5", "not hdf5");
  const std::string err = user_error([&] { read_train_state(dir / "junk.h5"); });
  EXPECT_TRUE(contains(err, "junk.h5")) << err;
  // an HDF5 file that lacks the fields: the error names the file and the field
  save_tensors_h5({{"w", at::ones({2})}}, dir / "model.h5", 1, "tiny");
  const std::string err2 = user_error([&] { read_train_state(dir / "model.h5"); });
  EXPECT_TRUE(contains(err2, "model.h5")) << err2;
  EXPECT_TRUE(contains(err2, "format")) << err2;
}

// ---------------------------------------------------------------------------------------------
// A complete checkpoint directory for `world` ranks.

const std::vector<std::string> kFiles2 = {"model.h5", "optim-00000-of-00002.h5", "optim-00001-of-00002.h5",
                                          "state.h5"};

void make_checkpoint(const std::string& dir, int64_t step, int world = 2, bool manifest = true) {
  fs::create_directories(dir);
  save_tensors_h5({{"visual.w", at::arange(24, at::kFloat).reshape({4, 6}) * 0.5 + step},
                   {"bn.num_batches_tracked", at::full({}, step, at::kLong)}},
                  (fs::path(dir) / "model.h5").string(), step, "tiny");
  TrainState s;
  s.step = step;
  s.samples_seen = static_cast<double>(step) * 64;
  s.world_size = world;
  s.config = "arch: tiny\n";
  s.loader_state = {step, 3, 4};
  write_train_state((fs::path(dir) / "state.h5").string(), s);
  write_shards(dir, test_layout(world), step);
  if (manifest) write_manifest(dir, step, world, static_cast<double>(step) * 64);
}

TEST(Manifest, ListsEveryFileWithSizeAndChecksum) {
  TempDir dir;
  make_checkpoint(dir.path.string(), 500, 2, false);
  const Manifest m = write_manifest(dir.path.string(), 500, 2, 32000.5);
  EXPECT_EQ(m.format, kCheckpointFormat);
  EXPECT_EQ(m.step, 500);
  EXPECT_EQ(m.world_size, 2);
  EXPECT_EQ(m.samples_seen, 32000.5);
  ASSERT_EQ(m.files.size(), kFiles2.size());
  for (size_t i = 0; i < kFiles2.size(); ++i) {
    EXPECT_EQ(m.files[i].name, kFiles2[i]);
    const FileDigest d = file_digest(dir / kFiles2[i]);
    EXPECT_EQ(m.files[i].bytes, static_cast<int64_t>(fs::file_size(dir / kFiles2[i])));
    EXPECT_EQ(m.files[i].bytes, d.bytes);
    EXPECT_EQ(m.files[i].xxh3, d.xxh3);
    EXPECT_EQ(m.files[i].xxh3.size(), 16u);
  }
  EXPECT_FALSE(fs::exists(dir / "MANIFEST.json.tmp"));

  const Manifest r = read_manifest(dir.path.string());
  EXPECT_EQ(r.format, m.format);
  EXPECT_EQ(r.step, 500);
  EXPECT_EQ(r.world_size, 2);
  EXPECT_EQ(r.samples_seen, 32000.5);
  EXPECT_EQ(r.version, m.version);
  EXPECT_FALSE(r.version.empty());
  ASSERT_EQ(r.files.size(), m.files.size());
  for (size_t i = 0; i < r.files.size(); ++i) {
    EXPECT_EQ(r.files[i].name, m.files[i].name);
    EXPECT_EQ(r.files[i].bytes, m.files[i].bytes);
    EXPECT_EQ(r.files[i].xxh3, m.files[i].xxh3);
  }
  EXPECT_EQ(verify_checkpoint(dir.path.string()), "");
  EXPECT_EQ(verify_checkpoint(dir.path.string(), false), "");

  // rewriting the manifest does not list the manifest itself
  const Manifest again = write_manifest(dir.path.string(), 500, 2, 32000.5);
  EXPECT_EQ(again.files.size(), kFiles2.size());
  EXPECT_EQ(verify_checkpoint(dir.path.string()), "");
}

TEST(Manifest, EveryDamagedFileIsNamed) {
  TempDir dir;
  const std::string good = dir / "good";
  make_checkpoint(good, 500);
  ASSERT_EQ(verify_checkpoint(good), "");
  int n = 0;
  for (const auto& file : kFiles2) {
    for (const std::string damage : {"truncate", "flip", "delete"}) {
      const std::string copy = dir / ("case" + std::to_string(n++));
      fs::copy(good, copy, fs::copy_options::recursive);
      ASSERT_EQ(verify_checkpoint(copy), "") << copy;
      const std::string path = (fs::path(copy) / file).string();
      if (damage == "truncate") truncate_by_one(path);
      if (damage == "flip") flip_middle_byte(path);
      if (damage == "delete") fs::remove(path);
      const std::string why = verify_checkpoint(copy);
      EXPECT_FALSE(why.empty()) << file << " " << damage;
      EXPECT_TRUE(contains(why, path)) << file << " " << damage << ": " << why;
      EXPECT_EQ(why.find('\n'), std::string::npos) << why;
      const std::string cheap = verify_checkpoint(copy, false);
      if (damage == "flip") {
        EXPECT_EQ(cheap, "") << file << ": sizes only, a flipped byte passes";
        EXPECT_TRUE(contains(why, "checksum")) << why;
      } else {
        EXPECT_TRUE(contains(cheap, path)) << file << " " << damage << ": " << cheap;
      }
      if (damage == "truncate") {
        EXPECT_TRUE(contains(why, "bytes")) << why;
      }
      if (damage == "delete") {
        EXPECT_TRUE(contains(why, "missing")) << why;
      }
    }
  }
}

TEST(Manifest, MissingOrMalformedManifestIsNamed) {
  TempDir dir;
  const std::string good = dir / "good";
  make_checkpoint(good, 7);
  int n = 0;
  auto variant = [&](const std::function<void(const std::string&)>& edit) {
    const std::string copy = dir / ("case" + std::to_string(n++));
    fs::copy(good, copy, fs::copy_options::recursive);
    edit((fs::path(copy) / "MANIFEST.json").string());
    return copy;
  };
  auto expect_named = [&](const std::string& copy, const std::string& what) {
    const std::string why = verify_checkpoint(copy);
    EXPECT_TRUE(contains(why, "MANIFEST.json")) << what << ": " << why;
    EXPECT_TRUE(contains(why, copy)) << what << ": " << why;
    EXPECT_TRUE(contains(verify_checkpoint(copy, false), "MANIFEST.json")) << what;
    const std::string err = user_error([&] { read_manifest(copy); });
    EXPECT_TRUE(contains(err, "MANIFEST.json")) << what << ": " << err;
  };
  expect_named(variant([](const std::string& p) { fs::remove(p); }), "missing");
  expect_named(variant([](const std::string& p) { write_text(p, "{\"format\": 1, \"step\": 7, garbage"); }), "garbage");
  expect_named(variant([](const std::string& p) { write_text(p, ""); }), "empty");
  expect_named(variant([](const std::string& p) {
                 write_text(p, "{\"format\": 1, \"step\": 7, \"world_size\": 2, \"samples_seen\": 448}");
               }),
               "no files");
  expect_named(variant([](const std::string& p) {
                 write_text(p, "{\"format\": 1, \"step\": 7, \"world_size\": 2, \"samples_seen\": 448, \"files\": 3}");
               }),
               "files not a list");
  expect_named(variant([](const std::string& p) { write_text(p, "[1, 2, 3]"); }), "not an object");
  expect_named(variant([](const std::string& p) {
                 std::string t = read_text(p);
                 const auto at = t.find("\"format\": 1");
                 ASSERT_NE(at, std::string::npos) << t;
                 t.replace(at, 11, "\"format\": 2");
                 write_text(p, t);
               }),
               "newer format");
  expect_named(variant([](const std::string& p) {
                 std::string t = read_text(p);
                 const auto at = t.find("\"bytes\"");
                 ASSERT_NE(at, std::string::npos) << t;
                 t.replace(at, 7, "\"size\"");
                 write_text(p, t);
               }),
               "file entry without bytes");
}

TEST(Manifest, MissingOptimizerShardIsRejected) {
  TempDir dir;
  // a rank's file never arrived before the manifest was written
  const std::string a = dir / "a";
  make_checkpoint(a, 9, 2, false);
  fs::remove(fs::path(a) / optim_file_name(1, 2));
  write_manifest(a, 9, 2, 0);
  std::string why = verify_checkpoint(a);
  EXPECT_TRUE(contains(why, optim_file_name(1, 2))) << why;
  EXPECT_TRUE(contains(verify_checkpoint(a, false), optim_file_name(1, 2)));

  // the manifest claims more ranks than there are files
  const std::string b = dir / "b";
  make_checkpoint(b, 9, 2, false);
  write_manifest(b, 9, 3, 0);
  why = verify_checkpoint(b);
  EXPECT_TRUE(contains(why, optim_file_name(0, 3))) << why;

  // model.h5 or state.h5 absent from the manifest
  for (const std::string file : {"model.h5", "state.h5"}) {
    const std::string c = dir / ("c_" + file);
    make_checkpoint(c, 9, 2, false);
    fs::remove(fs::path(c) / file);
    write_manifest(c, 9, 2, 0);
    why = verify_checkpoint(c);
    EXPECT_TRUE(contains(why, file)) << why;
  }
}

std::set<int64_t> steps_of(const std::vector<CheckpointEntry>& entries) {
  std::set<int64_t> out;
  for (const auto& e : entries) out.insert(e.step);
  return out;
}

TEST(CheckpointDir, NewestValidSkipsDamagedAndUnfinished) {
  TempDir dir;
  const std::string root = dir / "checkpoints";
  for (int64_t step : {10, 20, 30}) make_checkpoint((fs::path(root) / step_dir_name(step)).string(), step);
  const std::string bad = (fs::path(root) / step_dir_name(30) / "model.h5").string();
  flip_middle_byte(bad);
  // an unfinished save of step 40 (complete and valid inside, but never renamed)
  const std::string unfinished = (fs::path(root) / (step_dir_name(40) + ".tmp")).string();
  make_checkpoint(unfinished, 40);
  // things that are not step directories
  write_text((fs::path(root) / step_dir_name(50)).string(), "a file, not a directory");
  fs::create_directories(fs::path(root) / "step-00000abc");
  fs::create_directories(fs::path(root) / "notes");
  write_text((fs::path(root) / "latest").string(), step_dir_name(30) + "\n");

  const auto all = list_checkpoints(root);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].step, 10);
  EXPECT_EQ(all[1].step, 20);
  EXPECT_EQ(all[2].step, 30);
  EXPECT_EQ(fs::path(all[1].path), fs::path(root) / step_dir_name(20));

  std::vector<std::string> rejected;
  const auto best = newest_valid_checkpoint(root, &rejected);
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(best->step, 20);
  EXPECT_EQ(fs::path(best->path), fs::path(root) / step_dir_name(20));
  ASSERT_EQ(rejected.size(), 1u);
  EXPECT_TRUE(contains(rejected[0], bad)) << rejected[0];
  EXPECT_EQ(rejected[0].find('\n'), std::string::npos) << rejected[0];
  EXPECT_TRUE(newest_valid_checkpoint(root, nullptr).has_value());

  const auto removed = remove_unfinished(root);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(fs::path(removed[0]), fs::path(unfinished));
  EXPECT_FALSE(fs::exists(unfinished));
  EXPECT_TRUE(remove_unfinished(root).empty());
  EXPECT_EQ(steps_of(list_checkpoints(root)), (std::set<int64_t>{10, 20, 30}));
  EXPECT_TRUE(fs::exists(fs::path(root) / "notes"));

  // nothing valid at all
  flip_middle_byte((fs::path(root) / step_dir_name(10) / "state.h5").string());
  truncate_by_one((fs::path(root) / step_dir_name(20) / optim_file_name(1, 2)).string());
  rejected.clear();
  EXPECT_FALSE(newest_valid_checkpoint(root, &rejected).has_value());
  ASSERT_EQ(rejected.size(), 3u);
  EXPECT_TRUE(contains(rejected[0], step_dir_name(30))) << rejected[0];
  EXPECT_TRUE(contains(rejected[1], step_dir_name(20))) << rejected[1];
  EXPECT_TRUE(contains(rejected[2], step_dir_name(10))) << rejected[2];

  // no root at all
  EXPECT_TRUE(list_checkpoints(dir / "absent").empty());
  EXPECT_FALSE(newest_valid_checkpoint(dir / "absent", &rejected).has_value());
  EXPECT_TRUE(remove_unfinished(dir / "absent").empty());
}

TEST(CheckpointDir, PublishRenamesAndPointsLatest) {
  TempDir dir;
  const std::string root = dir / "checkpoints";
  fs::create_directories(root);
  EXPECT_EQ(read_latest(root), "");

  const std::string tmp = (fs::path(root) / (step_dir_name(1200) + ".tmp")).string();
  make_checkpoint(tmp, 1200);
  const std::string published = publish_checkpoint(root, tmp, 1200);
  EXPECT_EQ(fs::path(published), fs::path(root) / "step-000001200");
  EXPECT_TRUE(fs::is_directory(published));
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(read_latest(root), "step-000001200");
  EXPECT_EQ(read_text((fs::path(root) / "latest").string()), "step-000001200\n");
  EXPECT_FALSE(fs::exists(fs::path(root) / "latest.tmp"));
  EXPECT_EQ(verify_checkpoint(published), "");
  EXPECT_EQ(steps_of(list_checkpoints(root)), (std::set<int64_t>{1200}));

  // a later step moves the pointer
  const std::string tmp2 = (fs::path(root) / (step_dir_name(2400) + ".tmp")).string();
  make_checkpoint(tmp2, 2400);
  publish_checkpoint(root, tmp2, 2400);
  EXPECT_EQ(read_latest(root), "step-000002400");
  EXPECT_EQ(steps_of(list_checkpoints(root)), (std::set<int64_t>{1200, 2400}));
  EXPECT_EQ(newest_valid_checkpoint(root, nullptr)->step, 2400);

  // publishing a step again (a resumed run saving the same step) replaces the old directory
  const std::string tmp3 = (fs::path(root) / (step_dir_name(2400) + ".tmp")).string();
  fs::create_directories(tmp3);
  write_text((fs::path(tmp3) / "marker").string(), "new");
  publish_checkpoint(root, tmp3, 2400);
  EXPECT_EQ(read_text((fs::path(root) / step_dir_name(2400) / "marker").string()), "new");
  EXPECT_FALSE(fs::exists(fs::path(root) / step_dir_name(2400) / "model.h5"));

  // a missing tmp directory is a UserError naming it
  const std::string absent = (fs::path(root) / "step-000009999.tmp").string();
  const std::string err = user_error([&] { publish_checkpoint(root, absent, 9999); });
  EXPECT_TRUE(contains(err, absent)) << err;
  EXPECT_EQ(read_latest(root), "step-000002400");
}

// An interrupted retention delete leaves step-N.old: never listed, removed like a .tmp.
TEST(CheckpointDir, InterruptedDeletesAreIgnoredAndRemoved) {
  TempDir dir;
  const std::string root = dir / "checkpoints";
  make_checkpoint((fs::path(root) / step_dir_name(10)).string(), 10);
  const std::string old = (fs::path(root) / (step_dir_name(20) + ".old")).string();
  make_checkpoint(old, 20);  // valid inside, but being deleted
  const std::string tmp = (fs::path(root) / (step_dir_name(30) + ".tmp")).string();
  fs::create_directories(tmp);
  EXPECT_EQ(steps_of(list_checkpoints(root)), (std::set<int64_t>{10}));
  EXPECT_EQ(newest_valid_checkpoint(root, nullptr)->step, 10);
  std::set<std::string> removed;
  for (const auto& p : remove_unfinished(root)) removed.insert(fs::path(p).filename().string());
  EXPECT_EQ(removed, (std::set<std::string>{step_dir_name(20) + ".old", step_dir_name(30) + ".tmp"}));
  EXPECT_FALSE(fs::exists(old));
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(steps_of(list_checkpoints(root)), (std::set<int64_t>{10}));
}

std::string make_empty_steps(const std::string& root) {
  for (int64_t step = 10; step <= 100; step += 10) fs::create_directories(fs::path(root) / step_dir_name(step));
  return root;
}

TEST(CheckpointDir, RetentionKeepsLastAndEveryMth) {
  TempDir dir;
  const std::string a = make_empty_steps(dir / "a");
  const auto removed = apply_retention(a, 3, 40);
  EXPECT_EQ(steps_of(list_checkpoints(a)), (std::set<int64_t>{40, 80, 90, 100}));
  std::set<std::string> removed_names;
  for (const auto& p : removed) removed_names.insert(fs::path(p).filename().string());
  EXPECT_EQ(removed_names, (std::set<std::string>{step_dir_name(10), step_dir_name(20), step_dir_name(30),
                                                  step_dir_name(50), step_dir_name(60), step_dir_name(70)}));
  // idempotent, and nothing but the kept step directories is left behind
  EXPECT_TRUE(apply_retention(a, 3, 40).empty());
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(a)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{step_dir_name(40), step_dir_name(80), step_dir_name(90), step_dir_name(100)}));

  const std::string b = make_empty_steps(dir / "b");
  EXPECT_EQ(apply_retention(b, 2, 0).size(), 8u);
  EXPECT_EQ(steps_of(list_checkpoints(b)), (std::set<int64_t>{90, 100}));

  // fewer directories than keep_last: nothing goes; .tmp directories are not retention's business
  const std::string c = dir / "c";
  fs::create_directories(fs::path(c) / step_dir_name(5));
  fs::create_directories(fs::path(c) / (step_dir_name(1) + ".tmp"));
  EXPECT_TRUE(apply_retention(c, 3, 0).empty());
  EXPECT_TRUE(fs::exists(fs::path(c) / (step_dir_name(1) + ".tmp")));
  EXPECT_EQ(steps_of(list_checkpoints(c)), (std::set<int64_t>{5}));
}

TEST(Determinism, SameContentsGiveIdenticalBytes) {
  TempDir dir;
  const NamedTensors entries = {{"visual.w", at::arange(60, at::kFloat).reshape({3, 4, 5}) / 7},
                                {"scalar", at::full({}, 2.5f)},
                                {"bn.num_batches_tracked", at::full({}, 17, at::kLong)}};
  TrainState s;
  s.step = 3;
  s.config = "a: 1\n";
  s.loader_state = {1, 2, 3};
  const FlatLayout layout = test_layout(3);
  auto save_all = [&](const std::string& sub) {
    fs::create_directories(sub);
    save_tensors_h5(entries, (fs::path(sub) / "model.h5").string(), 3, "tiny");
    write_train_state((fs::path(sub) / "state.h5").string(), s);
    write_shards(sub, layout, 3);
  };
  save_all(dir / "a");
  // HDF5 timestamps have a resolution of one second: a writer that kept them would differ here
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  save_all(dir / "b");
  for (const std::string name : {"model.h5", "state.h5", "optim-00000-of-00003.h5", "optim-00001-of-00003.h5",
                                 "optim-00002-of-00003.h5"}) {
    const FileDigest da = file_digest((fs::path(dir / "a") / name).string());
    const FileDigest db = file_digest((fs::path(dir / "b") / name).string());
    EXPECT_EQ(da.bytes, db.bytes) << name;
    EXPECT_EQ(da.xxh3, db.xxh3) << name;
  }
  // other contents, other checksum
  save_tensors_h5({{"visual.w", at::arange(60, at::kFloat).reshape({3, 4, 5}) / 9}}, dir / "c.h5", 3, "tiny");
  EXPECT_NE(file_digest(dir / "c.h5").xxh3, file_digest((fs::path(dir / "a") / "model.h5").string()).xxh3);
}

std::string xxh3_hex(const std::string& data) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(data.data(), data.size())));
  return hex;
}

TEST(FsSync, AtomicWriteAndDigest) {
  TempDir dir;
  const std::string path = dir / "run.txt";
  write_file_atomic(path, "first\nversion\n");
  EXPECT_EQ(read_text(path), "first\nversion\n");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_text(path), "second");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  write_file_atomic(path, "");
  EXPECT_EQ(read_text(path), "");

  const std::string text = "The quick brown fox jumps over the lazy dog";
  write_file_atomic(path, text);
  FileDigest d = file_digest(path);
  EXPECT_EQ(d.bytes, static_cast<int64_t>(text.size()));
  EXPECT_EQ(d.xxh3, xxh3_hex(text));
  EXPECT_EQ(d.xxh3.size(), 16u);
  EXPECT_TRUE(std::all_of(d.xxh3.begin(), d.xxh3.end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
      << d.xxh3;

  // empty file: the digest of no bytes (a known constant)
  write_file_atomic(path, "");
  d = file_digest(path);
  EXPECT_EQ(d.bytes, 0);
  EXPECT_EQ(d.xxh3, xxh3_hex(""));
  EXPECT_EQ(d.xxh3, "2d06800538d394c2");

  // larger than the 1 MiB read buffer: streamed digest equals the one-shot one
  std::string big(3 * (1 << 20) + 7, '\0');
  uint32_t x = 12345;
  for (auto& c : big) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  write_file_atomic(path, big);
  d = file_digest(path);
  EXPECT_EQ(d.bytes, static_cast<int64_t>(big.size()));
  EXPECT_EQ(d.xxh3, xxh3_hex(big));

  // failures are UserErrors naming the path
  const std::string missing = dir / "absent.bin";
  EXPECT_TRUE(contains(user_error([&] { file_digest(missing); }), missing));
  EXPECT_TRUE(contains(user_error([&] { fsync_file(missing); }), missing));
  const std::string nodir = dir / "no/such/dir/x.txt";
  EXPECT_TRUE(contains(user_error([&] { write_file_atomic(nodir, "x"); }), "no/such/dir"));
  fsync_dir(dir.path.string());
  fsync_file(path);
}

}  // namespace
}  // namespace pc
