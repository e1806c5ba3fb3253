#pragma once
// Seeded random numbers with named, independent streams.
//
// One scenario seed (and a run number, as in ns-3) feeds every stream; each
// stream's state is derived from (seed, run, name) by hashing, so adding a new
// component with its own stream never shifts the draws of another component.
// The generator is xoshiro256** (Blackman & Vigna, 2018), seeded through
// SplitMix64. The distributions are implemented here rather than taken from
// <random>, whose distributions are implementation-defined: the same seed must
// give the same run bit for bit on every standard library.

#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace moesim {

/// FNV-1a 64-bit hash of a name (stable across platforms and runs).
constexpr std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : s) {
    h ^= static_cast<std::uint8_t>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

constexpr std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// 128-bit product for Lemire's bounded integers (GCC/Clang extension).
__extension__ using Uint128 = unsigned __int128;

class RandomStream {
 public:
  using result_type = std::uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return ~result_type{0}; }

  explicit RandomStream(std::uint64_t seed_material) {
    std::uint64_t sm = seed_material;
    for (auto& w : s_) w = splitmix64(sm);
  }

  /// Next raw 64-bit value (xoshiro256**).
  result_type operator()() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method).
  std::uint64_t below(std::uint64_t n) {
    Uint128 m = static_cast<Uint128>((*this)()) * n;
    auto low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        m = static_cast<Uint128>((*this)()) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }
  /// Exponential with the given mean (inverse transform).
  double exponential(double mean) { return -mean * std::log1p(-uniform()); }
  /// Standard normal (Marsaglia polar method; one value per call, no caching,
  /// so the stream position depends only on the number of calls).
  double normal() {
    for (;;) {
      const double u = 2.0 * uniform() - 1.0;
      const double v = 2.0 * uniform() - 1.0;
      const double s = u * u + v * v;
      if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
    }
  }
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  double lognormal(double mu, double sigma) { return std::exp(normal(mu, sigma)); }
  /// Gamma(shape k, scale theta) by Marsaglia & Tsang (2000); k < 1 boosted.
  double gamma(double shape, double scale) {
    if (shape < 1.0) {
      const double u = uniform();
      return gamma(shape + 1.0, scale) * std::pow(u > 0.0 ? u : 0x1.0p-53, 1.0 / shape);
    }
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = 0.0;
      double v = 0.0;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
    }
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::array<std::uint64_t, 4> s_{};
};

/// The seed of a scenario run, from which every named stream is derived.
class RandomStreams {
 public:
  explicit RandomStreams(std::uint64_t seed, std::uint64_t run = 0) : seed_(seed), run_(run) {}

  /// The stream for `name`: depends only on (seed, run, name).
  [[nodiscard]] RandomStream stream(std::string_view name) const {
    std::uint64_t sm = seed_ ^ 0x6a09e667f3bcc909ULL;
    std::uint64_t material = splitmix64(sm);
    material ^= fnv1a64(name) * 0x9e3779b97f4a7c15ULL;
    material ^= (run_ + 1) * 0xc2b2ae3d27d4eb4fULL;
    return RandomStream(material);
  }
  [[nodiscard]] std::uint64_t seed() const { return seed_; }
  [[nodiscard]] std::uint64_t run() const { return run_; }

 private:
  std::uint64_t seed_;
  std::uint64_t run_;
};

}  // namespace moesim
