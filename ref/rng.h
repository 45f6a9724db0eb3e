// A tiny, fully specified random number generator (SplitMix64). Its whole state is one 64-bit
// integer, so a training-state file can save it exactly and a resumed run continues the same
// stream. Same seed -> same numbers on every machine and compiler.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>

namespace scalevec {

struct Rng {
  uint64_t state;

  explicit Rng(uint64_t seed = 0) : state(seed) {}

  uint64_t next_u64() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
  // Uniform integer in [0, n), n > 0 (the tiny modulo bias of 64-bit values is irrelevant here).
  uint64_t below(uint64_t n) { return next_u64() % n; }
  // Standard normal by Box-Muller (one value per call; state stays a single integer).
  double normal() {
    double u1 = uniform(), u2 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
};

// Derive independent streams (init, data, sampling) from one user seed.
inline uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  Rng r(seed ^ (0xD1B54A32D192ED03ull * (stream + 1)));
  return r.next_u64();
}

}  // namespace scalevec
