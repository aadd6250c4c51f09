// `data synth`: writes the synthetic dataset (see synth.h for the layout). Every sample draws
// from its own generator seeded by (seed, split, index), so shards are independent (written by
// several threads if asked) and the output is byte-identical for a seed whatever the thread count.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "pyramidclip/data/image.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"
#include "synth_internal.h"

namespace fs = std::filesystem;

namespace pc {
namespace synth {
namespace {

// Fixed attribute codebooks (independent of the dataset seed, so every split and every run
// shares what "red" or "circle" looks like to the fake detector).
struct Codebook {
  std::vector<float> shape, colour, size;  // [k][2048]
  Codebook() {
    Rng rng(0x5EEDC0DEB00CULL);
    auto fill = [&](std::vector<float>& v, int k) {
      v.resize(static_cast<size_t>(k) * kRoiAppearance);
      for (float& x : v) x = static_cast<float>(rng.normal());
    };
    fill(shape, kShapes);
    fill(colour, kColours);
    fill(size, kSizes);
  }
};

const Codebook& codebook() {
  static const Codebook cb;
  return cb;
}

std::string shard_name(int index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d.tar", index);
  return buf;
}

std::string sample_key(int64_t index) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%09lld", static_cast<long long>(index));
  return buf;
}

nlohmann::json scene_json(const Scene& scene, int image_size) {
  nlohmann::json objects = nlohmann::json::array();
  const float s = static_cast<float>(image_size);
  for (const Object& o : scene.objects) {
    objects.push_back({{"shape", kShapeNames[o.shape]},
                       {"colour", kColourNames[o.colour]},
                       {"size", kSizeNames[o.size]},
                       {"position", position_phrase(o, image_size)},
                       {"box", {o.x1 / s, o.y1 / s, o.x2 / s, o.y2 / s}},
                       {"covered_by", o.covered_by}});
  }
  return {{"objects", objects}, {"background", background_phrase(scene.bg)}};
}

struct ShardOut {
  int64_t samples = 0;
  uint64_t bytes = 0;
  std::vector<std::string> texts;
};

ShardOut write_train_shard(const SynthOptions& opt, int shard, const std::string& path) {
  ShardOut out;
  TarWriter tar(path);
  const int64_t begin = static_cast<int64_t>(shard) * opt.samples_per_shard;
  const int64_t end = std::min<int64_t>(opt.train_samples, begin + opt.samples_per_shard);
  for (int64_t i = begin; i < end; ++i) {
    Rng rng(mix_seed({opt.seed, 1, static_cast<uint64_t>(i)}));
    const Scene scene = sample_scene(rng, opt.image_size, opt.min_objects, opt.max_objects);
    const Image img = render_scene(scene, opt.image_size);
    const std::string key = sample_key(i);
    std::string caption = scene_caption(scene, opt.image_size, rng);
    std::string summary = scene_summary(scene);
    std::string tags = scene_tags(scene);
    const std::vector<float> roi = roi_features(scene, opt.image_size, rng);
    tar.add(key + ".jpg", encode_jpeg(img, opt.jpeg_quality));
    tar.add(key + ".txt", caption);
    tar.add(key + ".summary.txt", summary);
    tar.add(key + ".tags.txt", tags);
    tar.add(key + ".roi.npy",
            encode_npy(roi.data(), static_cast<int64_t>(scene.objects.size()), kRoiDim, NpyDtype::kFloat16));
    tar.add(key + ".json", scene_json(scene, opt.image_size).dump());
    out.texts.push_back(std::move(caption));
    out.texts.push_back(std::move(summary));
    out.texts.push_back(std::move(tags));
    ++out.samples;
  }
  tar.close();
  out.bytes = fs::file_size(path);
  return out;
}

ShardOut write_heldout_shard(const SynthOptions& opt, int shard, int64_t total, const std::string& path) {
  ShardOut out;
  TarWriter tar(path);
  const int classes = kShapes * kColours;
  const int64_t begin = static_cast<int64_t>(shard) * opt.samples_per_shard;
  const int64_t end = std::min<int64_t>(total, begin + opt.samples_per_shard);
  for (int64_t i = begin; i < end; ++i) {
    const int cls = static_cast<int>(i % classes);
    Rng rng(mix_seed({opt.seed, 2, static_cast<uint64_t>(i)}));
    const Scene scene = single_object_scene(rng, opt.image_size, cls / kColours, cls % kColours);
    const std::string key = sample_key(i);
    tar.add(key + ".jpg", encode_jpeg(render_scene(scene, opt.image_size), opt.jpeg_quality));
    tar.add(key + ".cls", std::to_string(cls));
    ++out.samples;
  }
  tar.close();
  out.bytes = fs::file_size(path);
  return out;
}

// Runs fn(shard) for every shard on `threads` threads; rethrows the first failure.
template <class Fn>
void for_each_shard(int shards, int threads, Fn fn) {
  threads = std::max(1, std::min(threads, shards));
  if (threads == 1) {
    for (int s = 0; s < shards; ++s) fn(s);
    return;
  }
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      try {
        for (int s = t; s < shards; s += threads) fn(s);
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
      }
    });
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// Removes NNNNN.tar shards left by an earlier, larger run (only names this generator writes).
void remove_stale_shards(const fs::path& dir, int keep) {
  static const std::regex kShard(R"((\d{5})\.tar(\.tmp)?)");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, kShard) && (m[2].matched || std::stoi(m[1].str()) >= keep)) fs::remove(e.path(), ec);
  }
}

void write_text_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out) throw UserError("cannot write " + tmp.string() + ": check the output directory is writable");
  }
  fs::rename(tmp, path);
}

}  // namespace

std::vector<float> roi_features(const Scene& scene, int image_size, Rng& rng) {
  const Codebook& cb = codebook();
  const size_t m = scene.objects.size();
  std::vector<float> out(m * kRoiDim);
  const float s = static_cast<float>(image_size);
  // appearance = (shape + colour + 0.5 size + 0.5 noise) / sqrt(2.5): unit variance per entry
  const float norm = 1.0f / std::sqrt(2.5f);
  for (size_t k = 0; k < m; ++k) {
    const Object& o = scene.objects[k];
    float* row = out.data() + k * kRoiDim;
    const float* sh = cb.shape.data() + static_cast<size_t>(o.shape) * kRoiAppearance;
    const float* co = cb.colour.data() + static_cast<size_t>(o.colour) * kRoiAppearance;
    const float* sz = cb.size.data() + static_cast<size_t>(o.size) * kRoiAppearance;
    for (int d = 0; d < kRoiAppearance; ++d)
      row[d] = (sh[d] + co[d] + 0.5f * sz[d] + 0.5f * rng.normal_approx()) * norm;
    // a detector's box: the true box with a few percent of jitter, clipped to the image
    const float w = o.x2 - o.x1, h = o.y2 - o.y1;
    const float box[4] = {o.x1 + w * static_cast<float>(rng.uniform(-0.04, 0.04)),
                          o.y1 + h * static_cast<float>(rng.uniform(-0.04, 0.04)),
                          o.x2 + w * static_cast<float>(rng.uniform(-0.04, 0.04)),
                          o.y2 + h * static_cast<float>(rng.uniform(-0.04, 0.04))};
    for (int j = 0; j < 4; ++j) row[kRoiAppearance + j] = std::clamp(box[j] / s, 0.0f, 1.0f);
  }
  return out;
}

}  // namespace synth

const std::vector<std::string>& synth_shape_names() {
  static const std::vector<std::string> v(synth::kShapeNames, synth::kShapeNames + synth::kShapes);
  return v;
}

const std::vector<std::string>& synth_colour_names() {
  static const std::vector<std::string> v(synth::kColourNames, synth::kColourNames + synth::kColours);
  return v;
}

std::vector<std::string> synth_class_names() {
  std::vector<std::string> names;
  for (int s = 0; s < synth::kShapes; ++s)
    for (int c = 0; c < synth::kColours; ++c)
      names.push_back(std::string(synth::kColourNames[c]) + " " + synth::kShapeNames[s]);
  return names;
}

SynthResult synth_dataset(const SynthOptions& opt) {
  using namespace synth;
  require(!opt.out_dir.empty(), "data synth needs an output directory: pass --out DIR");
  require(opt.train_samples >= 1, "data synth: train-samples must be >= 1 (got " + std::to_string(opt.train_samples) + ")");
  require(opt.samples_per_shard >= 1,
          "data synth: samples-per-shard must be >= 1 (got " + std::to_string(opt.samples_per_shard) + ")");
  require(opt.image_size >= 16 && opt.image_size <= 4096,
          "data synth: image-size must be in [16, 4096] (got " + std::to_string(opt.image_size) + ")");
  require(opt.jpeg_quality >= 1 && opt.jpeg_quality <= 100,
          "data synth: jpeg-quality must be in [1, 100] (got " + std::to_string(opt.jpeg_quality) + ")");
  require(opt.heldout_per_class >= 0, "data synth: heldout-per-class must be >= 0");
  require(opt.min_objects >= 1 && opt.max_objects <= 8 && opt.min_objects <= opt.max_objects,
          "data synth: objects per image must satisfy 1 <= min <= max <= 8");
  const auto start = std::chrono::steady_clock::now();
  const fs::path out(opt.out_dir);
  std::error_code ec;
  fs::create_directories(out / "train", ec);
  fs::create_directories(out / "heldout", ec);
  require(fs::is_directory(out / "train") && fs::is_directory(out / "heldout"),
          "data synth: cannot create " + (out / "train").string() + ": " + ec.message());

  SynthResult result;
  const int train_shards = static_cast<int>((opt.train_samples + opt.samples_per_shard - 1) / opt.samples_per_shard);
  const int64_t heldout_total = static_cast<int64_t>(opt.heldout_per_class) * kShapes * kColours;
  const int heldout_shards = static_cast<int>((heldout_total + opt.samples_per_shard - 1) / opt.samples_per_shard);
  remove_stale_shards(out / "train", train_shards);
  remove_stale_shards(out / "heldout", heldout_shards);

  std::vector<ShardOut> train(static_cast<size_t>(train_shards)), heldout(static_cast<size_t>(heldout_shards));
  for_each_shard(train_shards, opt.threads, [&](int s) {
    train[static_cast<size_t>(s)] = write_train_shard(opt, s, (out / "train" / shard_name(s)).string());
  });
  for_each_shard(heldout_shards, opt.threads, [&](int s) {
    heldout[static_cast<size_t>(s)] = write_heldout_shard(opt, s, heldout_total, (out / "heldout" / shard_name(s)).string());
  });

  nlohmann::json shards = nlohmann::json::object();
  for (int s = 0; s < train_shards; ++s) {
    ShardOut& so = train[static_cast<size_t>(s)];
    shards["train/" + shard_name(s)] = {{"samples", so.samples}, {"bytes", so.bytes}};
    result.train_samples += so.samples;
    for (std::string& t : so.texts) result.texts.push_back(std::move(t));
  }
  for (int s = 0; s < heldout_shards; ++s) {
    const ShardOut& so = heldout[static_cast<size_t>(s)];
    shards["heldout/" + shard_name(s)] = {{"samples", so.samples}, {"bytes", so.bytes}};
    result.heldout_samples += so.samples;
  }
  result.train_shards = train_shards;
  result.heldout_shards = heldout_shards;
  result.classes = synth_class_names();
  result.num_classes = static_cast<int>(result.classes.size());

  std::string classes_text;
  for (const std::string& c : result.classes) classes_text += c + "\n";
  write_text_file(out / "classes.txt", classes_text);
  const nlohmann::json meta = {
      {"format", "pyramidclip-synth"},
      {"version", 1},
      {"options",
       {{"train_samples", opt.train_samples},
        {"samples_per_shard", opt.samples_per_shard},
        {"image_size", opt.image_size},
        {"jpeg_quality", opt.jpeg_quality},
        {"heldout_per_class", opt.heldout_per_class},
        {"min_objects", opt.min_objects},
        {"max_objects", opt.max_objects},
        {"seed", opt.seed}}},
      {"train", {{"samples", result.train_samples}, {"shards", train_shards}, {"pattern", "train/{00000.." + shard_name(train_shards - 1).substr(0, 5) + "}.tar"}}},
      {"heldout", {{"samples", result.heldout_samples}, {"shards", heldout_shards}, {"classes", result.num_classes}}},
      {"roi_dim", kRoiDim},
      {"shard_samples", shards}};
  write_text_file(out / "meta.json", meta.dump(2) + "\n");
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("data synth: {} train samples in {} shards, {} held-out images ({} classes) under {} in {:.1f}s",
               result.train_samples, train_shards, result.heldout_samples, result.num_classes, opt.out_dir,
               result.seconds);
  return result;
}

}  // namespace pc
