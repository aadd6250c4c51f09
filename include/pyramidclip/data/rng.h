#pragma once
// A small, fully specified random generator for the data pipeline. std::uniform_*_distribution
// differs between standard libraries, and torch's global generator is shared with the model:
// shards, shuffles and crops must be reproducible from (seed, epoch, rank) alone, so they use
// this one (SplitMix64-seeded xoshiro256**, doubles from the top 53 bits).
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <utility>

namespace pc {

// SplitMix64 step: a good 64-bit mixer, also used to derive independent seeds.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Hashes a list of integers into one seed, e.g. mix_seed({seed, epoch, rank}).
inline uint64_t mix_seed(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x6A09E667F3BCC909ULL;
  for (uint64_t p : parts) {
    uint64_t s = h ^ p;
    h = splitmix64(s);
  }
  return h;
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) {
    for (auto& w : s_) w = splitmix64(seed);
  }
  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n); n > 0. Lemire's multiply-shift (bias < 2^-64 * n, irrelevant here).
  uint64_t below(uint64_t n) { return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64()) * n) >> 64); }
  // Uniform integer in [lo, hi] inclusive.
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1))); }
  // Standard normal (Box-Muller, one value per call; fine for our volumes).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Approximately normal (Irwin-Hall: the sum of four 16-bit uniforms, scaled to unit variance;
  // tails end at +-3.46). One generator step, no libm: for bulk synthetic noise.
  float normal_approx() {
    const uint64_t x = next_u64();
    const uint32_t sum = static_cast<uint32_t>((x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48));
    // mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12
    return (static_cast<float>(sum) - 131070.0f) * (1.0f / 37837.23f);
  }
  // Fisher-Yates shuffle of a random-access range.
  template <class Vec>
  void shuffle(Vec& v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(below(i));
      std::swap(v[i - 1], v[j]);
    }
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace pc
