// Chapter 10: the GPU mirror, and how "equal to the reference" is measured.
//  1. (any machine) Two correct fp32 programs that sum in different orders disagree: a sequential
//     sum (the CPU loop) against a 32-lane warp tree (the GPU kernel), both against the exact sum
//     in double. Relative to the size of the terms (Σ|x_i|) they differ by a few u at every
//     length, far inside the worst case K·u; relative to the result they can differ without
//     bound (a sum that cancels has no digits to agree on). Hence the GPU tests' rule
//     |gpu − ref| ≤ rtol·(|ref| + rms).
//  2. (any machine) What tf32 and bf16 do to one product: dot products whose two operands are
//     rounded as the GPU's reduced precisions round them (gpu/precision.h), against the exact dot
//     product in double. The error is about u times the size of the terms, sqrt(Σ t²), at every
//     length; the worst stays inside the 8u the GPU tests allow for one product. A dot product
//     that cancels (as a magnitude β's gradient Σ α_c dγ_c does) keeps that absolute error while
//     its value shrinks, so its relative error can be anything.
//  3. (with a CUDA device) RMSNorm followed by a scale vector, forward and backward, on the GPU
//     against ref/ops in fp32: max errors, the share of the threshold used, and dγ reduced twice
//     to the same bits.
// Exit status 0 iff every stated bound holds.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "gpu/precision.h"
#include "ref/common.h"
#include "ref/ops/rmsnorm.h"
#include "ref/ops/scale.h"
#include "ref/rng.h"
#ifdef SCALEVEC_HAVE_CUDA
#include "gpu/cuda_utils.cuh"
#include "gpu/device.h"
#include "gpu/ops.h"
#endif

using namespace scalevec;

// [snippet:two_orders]
// The CPU loop: one accumulator, terms in order.
static float sum_sequential(const std::vector<float>& x) {
  float s = 0.f;
  for (float v : x) s += v;
  return s;
}
// The GPU kernel's order: lane l sums x[l], x[l+32], ...; then the 32 partials are combined by
// the butterfly of __shfl_xor_sync (offsets 16, 8, 4, 2, 1), as warp_sum in gpu/ops.cu.
static float sum_warp_tree(const std::vector<float>& x) {
  float lane[32] = {};
  for (size_t i = 0; i < x.size(); i++) lane[i % 32] += x[i];
  for (int o = 16; o > 0; o >>= 1) {
    float next[32];
    for (int l = 0; l < 32; l++) next[l] = lane[l] + lane[l ^ o];
    std::memcpy(lane, next, sizeof lane);
  }
  return lane[0];
}
// [end]

// [snippet:rounded_dot]
// One dot product with both operands rounded to precision p, summed exactly (in double): the
// error of this against the unrounded dot product is the rounding's alone (the GPU sums in fp32,
// whose error is part 1's, 2^16 times smaller than bf16's).
static double dot_rounded(const std::vector<float>& a, const std::vector<float>& b,
                          gpu::Precision p) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++)
    s += double(gpu::round_operand(a[i], p)) * double(gpu::round_operand(b[i], p));
  return s;
}
// [end]

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 10: the GPU mirror and its tolerances"};
  int trials = 200;
  app.add_option("--trials", trials, "random vectors per length in part 1")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;
  const double u = std::ldexp(1.0, -24);  // fp32 unit roundoff

  std::printf(
      "1. The same sum in two orders, fp32 (u = %.2e), error relative to sum |x_i|, "
      "%d random vectors per length\n",
      u, trials);
  std::printf("%6s %12s %12s %12s %16s %10s\n", "K", "sequential", "warp tree", "seq vs tree",
              "vs |sum|, worst", "K u");
  Rng rng(10);
  for (int K : {33, 260, 1025, 4096, 65536}) {
    double worst_seq = 0, worst_tree = 0, worst_diff = 0, worst_vs_result = 0;
    for (int t = 0; t < trials; t++) {
      std::vector<float> x(K);
      double exact = 0, mag = 0;
      for (auto& v : x) v = float(rng.normal()), exact += v, mag += std::abs(v);
      const float a = sum_sequential(x), b = sum_warp_tree(x);
      worst_seq = std::max(worst_seq, std::abs(a - exact) / mag);
      worst_tree = std::max(worst_tree, std::abs(b - exact) / mag);
      worst_diff = std::max(worst_diff, std::abs(double(a) - b) / mag);
      worst_vs_result = std::max(worst_vs_result, std::abs(double(a) - b) / std::abs(exact));
    }
    const bool within = worst_diff <= K * u;  // the worst-case bound always holds
    ok &= within;
    std::printf("%6d %12.2e %12.2e %12.2e %16.2e %10.2e %s\n", K, worst_seq, worst_tree, worst_diff,
                worst_vs_result, K * u, within ? "" : "FAIL");
  }
  std::printf(
      "   Columns 2-4: error relative to sum |x_i| (the size of the terms); column 5: the two\n"
      "   orders' difference relative to the result |sum x_i|. Both orders are correct, neither\n"
      "   is exact, and where the sum cancels their relative difference is large.\n\n");

  std::printf(
      "2. One product with rounded operands, error relative to sqrt(sum t_i^2) in units of u,\n"
      "   %d random dot products per length\n",
      trials);
  std::printf("%6s %6s %10s %10s %10s %14s\n", "prec", "K", "rms / u", "worst / u", "bound / u",
              "cancelling: rel");
  for (gpu::Precision p : {gpu::Precision::tf32, gpu::Precision::bf16}) {
    const double up = gpu::unit_roundoff(p);
    for (int K : {64, 1024, 16384}) {
      double ss = 0, worst = 0, worst_cancel = 0;
      for (int t = 0; t < trials; t++) {
        std::vector<float> a(K), b(K);
        for (auto& v : a) v = float(rng.normal());
        for (auto& v : b) v = float(rng.normal());
        double exact = 0, terms = 0;
        for (int i = 0; i < K; i++)
          exact += double(a[i]) * b[i], terms += std::pow(double(a[i]) * b[i], 2);
        const double e = std::abs(dot_rounded(a, b, p) - exact) / std::sqrt(terms) / up;
        ss += e * e, worst = std::max(worst, e);
        // b moved along a until the dot product is 1% of sqrt(Σ t²): its terms now cancel.
        double aa = 0;
        for (float v : a) aa += double(v) * v;
        const double target = 0.01 * std::sqrt(terms);
        for (int i = 0; i < K; i++) b[i] = float(b[i] - a[i] * ((exact - target) / aa));
        double exact_c = 0;
        for (int i = 0; i < K; i++) exact_c += double(a[i]) * b[i];
        worst_cancel =
            std::max(worst_cancel, std::abs(dot_rounded(a, b, p) - exact_c) / std::abs(exact_c));
      }
      const bool within = worst <= 8;  // the GPU tests' tolerance for one product: 8u
      ok &= within;
      std::printf("%6s %6d %10.2f %10.2f %10d %14.1e %s\n", gpu::precision_name(p), K,
                  std::sqrt(ss / trials), worst, 8, worst_cancel, within ? "" : "FAIL");
    }
  }
  std::printf(
      "   Last column: the worst |rounded - exact| / |exact| of dot products whose terms cancel\n"
      "   to 1%% of sqrt(sum t_i^2): the same absolute error, 100 times the relative one.\n\n");

  std::printf("3. RMSNorm + scale vector on the GPU against ref/ops (fp32)\n");
#ifdef SCALEVEC_HAVE_CUDA
  std::string why;
  if (!gpu::available(&why)) {
    std::printf("   skipped: %s (docs/gpu-results.md has what an H200 measured)\n", why.c_str());
    return ok ? 0 : 1;
  }
  std::printf("   device: %s\n", gpu::describe().c_str());
  // [snippet:gpu_vs_ref]
  const int N = 129, C = 1025;  // odd on purpose: no tile divides them
  std::vector<float> x((size_t)N * C), g(C), dy(x.size());
  for (auto& v : x) v = float(2 * rng.normal() + 0.5);
  for (auto& v : g) v = float(1 + 0.3 * rng.normal());
  for (auto& v : dy) v = float(rng.normal());
  // Reference: n = N(x), y = γ ⊙ n; backward dn = γ ⊙ dy, dγ = Σ_rows dy ⊙ n, dx = N'(dn).
  std::vector<float> n(x.size()), rstd(N), y(x.size()), dn(x.size(), 0.f), dg(C, 0.f),
      dx(x.size(), 0.f);
  rmsnorm_forward(n.data(), rstd.data(), x.data(), N, C, C, 1e-5f);
  scale_forward(y.data(), n.data(), g.data(), N, C);
  scale_backward(dn.data(), dg.data(), dy.data(), n.data(), g.data(), N, C);
  rmsnorm_backward(dx.data(), dn.data(), n.data(), rstd.data(), N, C, C);
  // The same calls on the device, gpu/ops.h.
  gpu::DeviceArray<float> X, G, DY, Nn(x.size()), R(N), Y(x.size()), DN(x.size()), DG(C),
      DX(x.size()), part(gpu::scale_partial_size(N, C));
  X.upload(x), G.upload(g), DY.upload(dy), DN.zero(), DG.zero(), DX.zero();
  gpu::rmsnorm_forward(Nn.data(), R.data(), X.data(), N, C, 1e-5f);
  gpu::scale_forward(Y.data(), Nn.data(), G.data(), N, C);
  gpu::scale_backward(DN.data(), DG.data(), DY.data(), Nn.data(), G.data(), N, C, part.data());
  gpu::rmsnorm_backward(DX.data(), DN.data(), Nn.data(), R.data(), N, C);
  // [end]
  auto report = [&](const char* what, const std::vector<float>& gv, const std::vector<float>& rv,
                    double rtol) {
    double ss = 0, max_abs = 0, share = 0;
    for (float v : rv) ss += double(v) * v;
    const double rms = std::sqrt(ss / rv.size());
    for (size_t i = 0; i < rv.size(); i++) {
      const double d = std::abs(double(gv[i]) - rv[i]);
      max_abs = std::max(max_abs, d);
      share = std::max(share, d / (rtol * (std::abs(rv[i]) + rms)));
    }
    ok &= share <= 1;
    std::printf("   %-4s max abs %.2e, %5.1f%% of |gpu - ref| <= %.0e (|ref| + rms)%s\n", what,
                max_abs, 100 * share, rtol, share <= 1 ? "" : "  FAIL");
  };
  report("y", Y.to_host(), y, 2e-5);
  report("dγ", DG.to_host(), dg, 2e-5);
  report("dx", DX.to_host(), dx, 2e-5);
  const std::vector<float> first = DG.to_host();
  DG.zero(), DN.zero();
  gpu::scale_backward(DN.data(), DG.data(), DY.data(), Nn.data(), G.data(), N, C, part.data());
  const bool same = std::memcmp(first.data(), DG.to_host().data(), C * sizeof(float)) == 0;
  ok &= same;
  std::printf("   dγ reduced twice: %s\n", same ? "the same bits" : "DIFFERENT BITS (FAIL)");
#else
  std::printf("   skipped: this build has no CUDA (no nvcc at configure time)\n");
#endif
  return ok ? 0 : 1;
}
