// GPU vs CPU reference. Every test skips (not passes) when no CUDA device is present.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gpu/device.h"
#include "ref/ops/rmsnorm.h"
#include "ref/rng.h"

namespace scalevec {

#define REQUIRE_GPU()                                   \
  do {                                                  \
    std::string why;                                    \
    if (!gpu::available(&why)) GTEST_SKIP() << why;     \
  } while (0)

// Odd sizes on purpose: C not a multiple of the warp, N not a multiple of the rows per block.
class RmsNormGpu : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(RmsNormGpu, MatchesReference) {
  REQUIRE_GPU();
  const auto [N, C] = GetParam();
  Rng rng(7);
  std::vector<float> x((size_t)N * C), n_ref(x.size()), n_gpu(x.size()), r_ref(N), r_gpu(N);
  for (auto& v : x) v = float(rng.normal() * 2.0 + 0.5);
  rmsnorm_forward(n_ref.data(), r_ref.data(), x.data(), N, C, C, 1e-5f);
  gpu::rmsnorm_forward_host(n_gpu.data(), r_gpu.data(), x.data(), N, C, 1e-5f);
  // fp32 with a different summation order: a few ulps relative to values of order 1.
  const double rtol = 1e-5, atol = 1e-6;
  double max_abs = 0, max_rel = 0, share = 0;
  for (size_t i = 0; i < x.size(); i++) {
    const double d = std::abs(double(n_gpu[i]) - n_ref[i]);
    max_abs = std::max(max_abs, d);
    max_rel = std::max(max_rel, d / std::max(1e-30, std::abs(double(n_ref[i]))));
    share = std::max(share, d / (atol + rtol * std::abs(double(n_ref[i]))));
  }
  std::printf("rmsnorm N=%d C=%d: max abs %.3e, max rel %.3e, %.1f%% of threshold\n", N, C,
              max_abs, max_rel, 100 * share);
  EXPECT_LE(share, 1.0);
}

INSTANTIATE_TEST_SUITE_P(OddSizes, RmsNormGpu,
                         ::testing::Values(std::pair{1, 33}, std::pair{37, 260},
                                           std::pair{129, 1025}));

TEST(Gpu, Describe) {
  REQUIRE_GPU();
  const std::string d = gpu::describe();
  std::printf("device: %s\n", d.c_str());
  EXPECT_FALSE(d.empty());
}

}  // namespace scalevec
