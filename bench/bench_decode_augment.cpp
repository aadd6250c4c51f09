// Decode + augment throughput of the training pipeline (issue #3), the C++ half of
// bench/run_decode_augment.sh, which runs it side by side with bench/decode_augment_pil.py.
//
//   bench_decode_augment --write-shards DIR --samples N [--per-shard 250] [--seed 1]
//       WebDataset shards of N photo-like JPEGs (random 256..640 px per side, quality 90, 4:2:0)
//       with a .txt caption each: DIR/bench-000000.tar, ...
//   bench_decode_augment --run DIR --threads T --seconds S [--size 224] [--min-side M] [--json PATH]
//       Reads every shard into memory first (disk I/O is not timed), then T threads each decode
//       JPEGs and make the two PyramidCLIP training views exactly as TrainLoader::process() does:
//       decode_image at the reduced-DCT min side ceil(size / sqrt(min crop area)), a global
//       RandomResizedCrop (scale 0.9..1) and a local one (0.5..1), ratio 3/4..4/3, antialiased
//       bilinear resize to size x size and CLIP normalisation (resized_crop_normalized). Thread t
//       takes samples t, t+T, ... round and round until S seconds are up. Prints samples/s in
//       total and per thread, and the mean time per sample of the decode and of the two crops.
//   bench_decode_augment --decode-scales DIR
//       Mean libturbojpeg decode time of the shards' JPEGs at each scaling factor 8/8 ... 1/8 (one
//       thread, best of 3 passes): why decode_jpeg only ever scales by 1/2, 1/4, 1/8.
#include <torch/torch.h>
#include <turbojpeg.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pyramidclip/data/augment.h"
#include "pyramidclip/data/image.h"
#include "pyramidclip/data/rng.h"
#include "pyramidclip/data/tar.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

uint8_t clamp8(float v) { return static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v)) + 0.5f); }

// A photo-like picture: a two-colour gradient under low-frequency lighting, 4..12 soft-edged
// shaded ellipses, value-noise texture at two scales and per-pixel sensor grain. At quality 90
// this gives JPEGs of ~1.5 bits per pixel (16-85 KB, mean 38 KB), unlike flat synthetic scenes.
pc::Image photo_like(int width, int height, pc::Rng& rng) {
  pc::Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(static_cast<size_t>(width) * height * 3);
  std::vector<float> px(static_cast<size_t>(width) * height * 3);

  // gradient + separable low-frequency lighting
  float c0[3], c1[3];
  for (int c = 0; c < 3; ++c) {
    c0[c] = static_cast<float>(rng.uniform(20, 235));
    c1[c] = static_cast<float>(rng.uniform(20, 235));
  }
  const double theta = rng.uniform(0, 6.283185307179586);
  const float gx = static_cast<float>(std::cos(theta)), gy = static_cast<float>(std::sin(theta));
  const float span = std::fabs(gx) * width + std::fabs(gy) * height;
  const float off = std::min(0.0f, gx * width) + std::min(0.0f, gy * height);
  std::vector<float> lx(width), ly(height);
  const double fx = rng.uniform(1, 3) * 6.2832 / width, px0 = rng.uniform(0, 6.2832);
  const double fy = rng.uniform(1, 3) * 6.2832 / height, py0 = rng.uniform(0, 6.2832);
  for (int x = 0; x < width; ++x) lx[x] = static_cast<float>(18 * std::sin(fx * x + px0));
  for (int y = 0; y < height; ++y) ly[y] = static_cast<float>(18 * std::sin(fy * y + py0));
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const float t = (gx * x + gy * y - off) / span, light = lx[x] + ly[y];
      float* p = &px[(static_cast<size_t>(y) * width + x) * 3];
      for (int c = 0; c < 3; ++c) p[c] = c0[c] * (1 - t) + c1[c] * t + light;
    }

  // soft-edged ellipses with radial shading
  const int shapes = static_cast<int>(rng.range(4, 12));
  for (int s = 0; s < shapes; ++s) {
    const float cx = static_cast<float>(rng.uniform(0, width)), cy = static_cast<float>(rng.uniform(0, height));
    const float rx = static_cast<float>(rng.uniform(0.05, 0.3) * width);
    const float ry = static_cast<float>(rng.uniform(0.05, 0.3) * height);
    const float edge = static_cast<float>(rng.uniform(0.5, 3.0));
    float col[3];
    for (float& v : col) v = static_cast<float>(rng.uniform(10, 245));
    const float shade = static_cast<float>(rng.uniform(-60, 60));
    const int x0 = std::max(0, static_cast<int>(cx - rx - edge - 1));
    const int x1 = std::min(width - 1, static_cast<int>(cx + rx + edge + 1));
    const int y0 = std::max(0, static_cast<int>(cy - ry - edge - 1));
    const int y1 = std::min(height - 1, static_cast<int>(cy + ry + edge + 1));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const float dx = (x + 0.5f - cx) / rx, dy = (y + 0.5f - cy) / ry;
        const float r = std::sqrt(dx * dx + dy * dy);
        const float d = (r - 1.0f) * std::min(rx, ry);  // ~distance to the rim in pixels
        const float a = std::clamp(0.5f - d / edge, 0.0f, 1.0f);
        if (a <= 0) continue;
        float* p = &px[(static_cast<size_t>(y) * width + x) * 3];
        for (int c = 0; c < 3; ++c) p[c] = p[c] * (1 - a) + (col[c] + shade * (1 - r)) * a;
      }
  }

  // value-noise texture (cells of 16 and 4 px, bilinear) + grain
  const float amp_coarse = static_cast<float>(rng.uniform(6, 16)), amp_fine = static_cast<float>(rng.uniform(4, 12));
  const float grain = static_cast<float>(rng.uniform(2.5, 5.0));
  auto lattice = [&](int cell) {
    const int nx = width / cell + 2, ny = height / cell + 2;
    std::vector<float> v(static_cast<size_t>(nx) * ny);
    for (float& e : v) e = static_cast<float>(rng.uniform(-1, 1));
    return std::make_pair(nx, v);
  };
  auto sample = [](const std::pair<int, std::vector<float>>& l, int cell, int x, int y) {
    const float u = static_cast<float>(x) / cell, w = static_cast<float>(y) / cell;
    const int ix = static_cast<int>(u), iy = static_cast<int>(w);
    const float a = u - ix, b = w - iy;
    const float* r0 = &l.second[static_cast<size_t>(iy) * l.first + ix];
    const float* r1 = r0 + l.first;
    return (r0[0] * (1 - a) + r0[1] * a) * (1 - b) + (r1[0] * (1 - a) + r1[1] * a) * b;
  };
  const auto coarse = lattice(16), fine = lattice(4);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const float tex = amp_coarse * sample(coarse, 16, x, y) + amp_fine * sample(fine, 4, x, y);
      const size_t i = (static_cast<size_t>(y) * width + x) * 3;
      for (int c = 0; c < 3; ++c) img.rgb[i + c] = clamp8(px[i + c] + tex + grain * rng.normal_approx());
    }
  return img;
}

int write_shards(const std::string& dir, int samples, int per_shard, uint64_t seed) {
  fs::create_directories(dir);
  pc::Rng rng(seed);
  std::unique_ptr<pc::TarWriter> tar;
  int64_t bytes = 0;
  int shards = 0;
  for (int i = 0; i < samples; ++i) {
    if (i % per_shard == 0) {
      if (tar) tar->close();
      char name[64];
      std::snprintf(name, sizeof name, "bench-%06d.tar", shards++);
      tar = std::make_unique<pc::TarWriter>((fs::path(dir) / name).string());
    }
    const int w = static_cast<int>(rng.range(256, 640)), h = static_cast<int>(rng.range(256, 640));
    const std::string jpg = pc::encode_jpeg(photo_like(w, h, rng), 90);
    bytes += static_cast<int64_t>(jpg.size());
    char key[32];
    std::snprintf(key, sizeof key, "%08d", i);
    tar->add(std::string(key) + ".jpg", jpg);
    tar->add(std::string(key) + ".txt", "a photo of " + std::to_string(w) + " by " + std::to_string(h) + " pixels");
  }
  if (tar) tar->close();
  std::printf("wrote %d samples in %d shards to %s, mean JPEG %.1f KB\n", samples, shards, dir.c_str(),
              samples ? bytes / 1024.0 / samples : 0.0);
  return 0;
}

struct Sample {
  std::string key, jpg;
  uint64_t key_hash = 0;
};

// FNV-1a of the key, as the train loader seeds a sample's augmentation with it.
uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return h;
}

std::vector<Sample> load_samples(const std::string& dir) {
  std::vector<std::string> shards;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tar") shards.push_back(e.path().string());
  std::sort(shards.begin(), shards.end());
  std::vector<Sample> out;
  for (const auto& path : shards) {
    pc::SampleReader reader(path);
    pc::RawSample s;
    while (reader.next(s)) {
      auto it = s.members.find("jpg");
      if (it == s.members.end() || !s.has("txt")) continue;
      out.push_back({s.key, std::move(it->second), fnv1a(s.key)});
    }
    if (reader.damaged()) throw std::runtime_error(path + ": " + reader.error());
  }
  return out;
}

struct ThreadResult {
  int64_t samples = 0;
  double decode_s = 0, crop_s = 0;
  double cpu_s = 0;  // CPU time of the thread in the timed loop (less than the wall time when the machine is shared)
};

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

int run(const std::string& dir, int threads, double seconds, int size, int min_side_override,
        const std::string& json_path) {
  at::set_num_threads(1);
  const std::vector<Sample> samples = load_samples(dir);
  if (samples.empty()) throw std::runtime_error("no .jpg+.txt samples in " + dir);
  const pc::CropRange global_crop{0.9, 1.0}, local_crop{0.5, 1.0};  // TrainLoaderOptions' defaults
  const double min_area = std::min(global_crop.min, local_crop.min);
  // --min-side overrides it (0: full-size decode)
  const int min_side =
      min_side_override >= 0 ? min_side_override : static_cast<int>(std::ceil(size / std::sqrt(min_area)));
  const uint64_t seed = 0;

  std::vector<ThreadResult> results(static_cast<size_t>(threads));
  std::mutex m;
  std::condition_variable cv;
  int ready = 0;
  bool go = false;
  Clock::time_point start, stop;
  std::vector<double> thread_elapsed(static_cast<size_t>(threads));

  auto worker = [&](int t) {
    std::vector<float> global(3 * static_cast<size_t>(size) * size), local(global.size());
    auto one = [&](size_t i, uint64_t pass, ThreadResult* r) {
      const Sample& s = samples[i];
      const auto t0 = Clock::now();
      const pc::Image img = pc::decode_image(s.jpg.data(), s.jpg.size(), "jpg", min_side);
      const auto t1 = Clock::now();
      pc::Rng aug(pc::mix_seed({seed, 0xA06ULL, pass, s.key_hash}));
      const pc::CropBox g = pc::sample_resized_crop(img.height, img.width, global_crop, aug);
      const pc::CropBox l = pc::sample_resized_crop(img.height, img.width, local_crop, aug);
      pc::resized_crop_normalized(img, g, size, global.data());
      pc::resized_crop_normalized(img, l, size, local.data());
      const auto t2 = Clock::now();
      if (r) {
        r->decode_s += std::chrono::duration<double>(t1 - t0).count();
        r->crop_s += std::chrono::duration<double>(t2 - t1).count();
        ++r->samples;
      }
    };
    // warm-up (thread-local decoder handle and row buffers), then wait for the common start
    for (size_t i = static_cast<size_t>(t), n = 0; n < 8 && i < samples.size(); i += threads, ++n)
      one(i, 1000, nullptr);
    {
      std::unique_lock<std::mutex> lock(m);
      ++ready;
      cv.notify_all();
      cv.wait(lock, [&] { return go; });
    }
    ThreadResult& r = results[static_cast<size_t>(t)];
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    size_t i = static_cast<size_t>(t);
    uint64_t pass = 0;
    const double cpu0 = thread_cpu_seconds();
    for (;;) {
      one(i, pass, &r);
      if (Clock::now() >= deadline) break;
      i += static_cast<size_t>(threads);
      if (i >= samples.size()) {
        i = static_cast<size_t>(t);
        ++pass;
      }
    }
    r.cpu_s = thread_cpu_seconds() - cpu0;
    thread_elapsed[static_cast<size_t>(t)] = std::chrono::duration<double>(Clock::now() - start).count();
  };

  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker, t);
  {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return ready == threads; });
    start = Clock::now();
    go = true;
  }
  cv.notify_all();
  for (auto& th : pool) th.join();
  stop = Clock::now();
  const double elapsed = *std::max_element(thread_elapsed.begin(), thread_elapsed.end());

  ThreadResult sum;
  for (const auto& r : results) {
    sum.samples += r.samples;
    sum.decode_s += r.decode_s;
    sum.crop_s += r.crop_s;
    sum.cpu_s += r.cpu_s;
  }
  const double total = sum.samples / elapsed, per_thread = total / threads;
  const double decode_ms = 1e3 * sum.decode_s / sum.samples, crop_ms = 1e3 * sum.crop_s / sum.samples;
  const double per_cpu_s = sum.samples / sum.cpu_s;
  std::printf("cpp threads=%d size=%d min_side=%d samples=%zu processed=%lld elapsed=%.2fs: %.1f samples/s, "
              "%.1f per thread, %.1f per CPU second (decode %.3f ms + 2 crops %.3f ms per sample)\n",
              threads, size, min_side, samples.size(), static_cast<long long>(sum.samples), elapsed, total, per_thread,
              per_cpu_s, decode_ms, crop_ms);
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << "{\"impl\": \"cpp\", \"threads\": " << threads << ", \"size\": " << size << ", \"min_side\": " << min_side
      << ", \"dataset_samples\": " << samples.size() << ", \"processed\": " << sum.samples
      << ", \"elapsed_s\": " << elapsed << ", \"samples_per_s\": " << total
      << ", \"samples_per_s_per_thread\": " << per_thread << ", \"cpu_s\": " << sum.cpu_s
      << ", \"samples_per_cpu_s\": " << per_cpu_s << ", \"decode_ms_per_sample\": " << decode_ms
      << ", \"crops_ms_per_sample\": " << crop_ms << "}\n";
    if (!f) throw std::runtime_error("cannot write " + json_path);
  }
  return 0;
}

int decode_scales(const std::string& dir) {
  const std::vector<Sample> all = load_samples(dir);
  const std::vector<Sample> samples(all.begin(), all.begin() + std::min<size_t>(all.size(), 300));
  if (samples.empty()) throw std::runtime_error("no .jpg+.txt samples in " + dir);
  tjhandle h = tjInitDecompress();
  std::vector<unsigned char> out;
  std::printf("libturbojpeg decode of %zu JPEGs, mean per image (best of 3 passes):\n", samples.size());
  double full_ms = 0;
  for (int num = 8; num >= 1; --num) {
    const tjscalingfactor f{num, 8};
    double best = 1e30;
    for (int pass = 0; pass < 3; ++pass) {
      const auto t0 = Clock::now();
      for (const Sample& s : samples) {
        const auto* buf = reinterpret_cast<const unsigned char*>(s.jpg.data());
        int w = 0, ht = 0, sub = 0, cs = 0;
        if (tjDecompressHeader3(h, buf, s.jpg.size(), &w, &ht, &sub, &cs) != 0)
          throw std::runtime_error(tjGetErrorStr2(h));
        const int ow = TJSCALED(w, f), oh = TJSCALED(ht, f);
        out.resize(static_cast<size_t>(ow) * oh * 3);
        if (tjDecompress2(h, buf, s.jpg.size(), out.data(), ow, 0, oh, TJPF_RGB, TJFLAG_ACCURATEDCT) != 0)
          throw std::runtime_error(tjGetErrorStr2(h));
      }
      best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / samples.size());
    }
    if (num == 8) full_ms = best;
    std::printf("  %d/8: %.3f ms (%.2fx the full-size decode)\n", num, best, best / full_ms);
  }
  tjDestroy(h);
  return 0;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_decode_augment --write-shards DIR --samples N [--per-shard 250] [--seed 1]\n"
               "       bench_decode_augment --run DIR --threads T --seconds S [--size 224] [--min-side M]\n"
               "                            [--json PATH]\n"
               "       bench_decode_augment --decode-scales DIR\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string write_dir, run_dir, scales_dir, json;
  int samples = 2000, per_shard = 250, threads = 1, size = 224, min_side = -1;
  double seconds = 10;
  uint64_t seed = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    const char* v = argv[++i];
    if (a == "--write-shards") write_dir = v;
    else if (a == "--run") run_dir = v;
    else if (a == "--decode-scales") scales_dir = v;
    else if (a == "--samples") samples = std::atoi(v);
    else if (a == "--per-shard") per_shard = std::atoi(v);
    else if (a == "--seed") seed = std::strtoull(v, nullptr, 10);
    else if (a == "--threads") threads = std::atoi(v);
    else if (a == "--seconds") seconds = std::atof(v);
    else if (a == "--size") size = std::atoi(v);
    else if (a == "--json") json = v;
    else if (a == "--min-side") min_side = std::atoi(v);
    else usage();
  }
  const int modes = (write_dir.empty() ? 0 : 1) + (run_dir.empty() ? 0 : 1) + (scales_dir.empty() ? 0 : 1);
  if (modes != 1 || samples < 1 || per_shard < 1 || threads < 1 || size < 1 || seconds <= 0)
    usage();
  try {
    if (!scales_dir.empty()) return decode_scales(scales_dir);
    return write_dir.empty() ? run(run_dir, threads, seconds, size, min_side, json)
                             : write_shards(write_dir, samples, per_shard, seed);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_decode_augment: %s\n", e.what());
    return 1;
  }
}
