// The CUDA mirror against the CPU reference. Every test skips (not passes) when no CUDA device is
// present, so this executable runs everywhere and proves something only on a GPU machine.
//
// Tolerances follow from fp32 (unit roundoff u = 2^-24 ≈ 6e-8). Both sides compute in fp32 but sum
// in different orders (cuBLAS tiles vs OpenBLAS kernels, warp trees vs loops), so an output that
// is a sum of K terms differs by about sqrt(K)·u (random rounding) and at most K·u relative to the
// sum of the terms' magnitudes. Each comparison therefore allows
//     |gpu − ref| ≤ rtol · (|ref| + rms(ref))
// (the rms term covers entries that are small because of cancellation) and prints the share of
// that threshold it used:
//   ops         rtol 2e-5   (K ≤ 1025: sqrt(K)·u ≈ 2e-6, with room for the exp/sqrt of libm vs
//                            CUDA, each within 2 ulps)
//   model, one step          rtol 2e-4   (a few hundred chained ops: errors compound through
//                            every layer's backward)
//   model after 10 steps     per tensor ‖gpu − ref‖ ≤ 2e-3 (‖ref‖ + rms·sqrt(n)), rms over all of
//                            the model's gradients (AdamW normalises each update by sqrt(v), so an
//                            entry whose gradient is at the noise level moves by up to 2·lr
//                            whatever its sign: compared as a whole tensor). The rms term matters
//                            for scalars summed with cancellation: on an H200 (2026-11-28) the
//                            gradient of a magnitude β after 10 steps differed by up to 5e-3 of
//                            itself, 1.7e-6 absolute, while every other tensor stayed under 2e-4.
//
// tf32 and bf16 (gpu/precision.h) round the two operands of every matrix product, to unit
// roundoff u = 2^-8 for bf16 and 2^-11 for tf32, taken as 2^-10 for tf32 because cuBLAS does not
// say whether it rounds or truncates. Each product term then carries a relative error up to 2u,
// of random sign, so a sum of K terms errs by a fraction of u·sqrt(Σ t²) ≈ u·rms(ref): 0.6u rms
// and 1.9u at the worst of 200 sums at every length (chapter 10, part 2), so about 3u at the worst
// of 10^5 entries. Hence:
//   ops, against fp32          rtol 8u for one product (linear), 16u for attention (two chained
//                              products and a softmax between)
//   bf16 ops, against the reference on bf16-rounded operands: rtol 1e-4. The products of two
//                              bf16 values are exact in fp32 and only the sums differ, but tensor
//                              cores may add with truncation, not rounding (so on V100, T4 and
//                              A100: Fasi et al., "Numerical behavior of NVIDIA tensor cores",
//                              2021): a bias of up to 2^-23 per 16-term step, about 8e-6 over
//                              K = 1025. 1e-4 is still 40 times
//                              below what rounding the operands does (4e-3): this pins down what
//                              the kernels compute. And the error against fp32 must reach u/2
//                              somewhere: a product that silently ran in fp32 fails.
//   model, one step            per tensor ‖gpu − ref‖ ≤ 16u (‖ref‖ + rms·sqrt(n)), rms over all
//                              gradients as for fp32: the errors of the ~10 products on each
//                              gradient's path add in quadrature (about 3u), and a scalar β's
//                              gradient is a cancelling sum, whose error is relative to its
//                              terms, not to itself
//   model, params after 10 AdamW steps: ‖gpu − ref‖ ≤ 8u ‖ref‖
// They were derived first and then checked on the CPU by test_gpu_host, whose host double rounds
// the operands exactly as defined: there the worst one-step gradient (a β of a magdir-normalized
// model in bf16, 36% off by itself) used 45% of its threshold; the worst other entries under 30%.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "gpu/device.h"
#include "require_gpu.h"
#include "gpu/model.h"
#include "gpu/ops.h"
#include "gpu/optim.h"
#include "ref/model/transformer.h"
#include "ref/ops/attention.h"
#include "ref/ops/crossentropy.h"
#include "ref/ops/embedding.h"
#include "ref/ops/linear.h"
#include "ref/ops/rmsnorm.h"
#include "ref/ops/rope.h"
#include "ref/ops/scale.h"
#include "ref/ops/swiglu.h"
#include "ref/rng.h"
#include "ref/train/optim.h"

namespace scalevec {

#ifdef SCALEVEC_GPU_HOST_DOUBLE
// test_gpu_host: the kernels are emulated by the reference ops (host_double.cpp), so an op test
// would compare the reference with itself; they skip. The model, optimizer and determinism tests
// run and check the GPU path's host code against the reference.
#define REQUIRE_KERNELS() GTEST_SKIP() << "host double: kernels are checked on a GPU (test_gpu)"
#else
#define REQUIRE_KERNELS() REQUIRE_GPU()
#endif

using Vec = std::vector<float>;
using gpu::DeviceArray;

Vec randn(size_t n, uint64_t seed, double std = 1.0, double mean = 0.0) {
  Rng rng(seed);
  Vec v(n);
  for (auto& x : v) x = float(mean + std * rng.normal());
  return v;
}
DeviceArray<float> dev(const Vec& h) {
  DeviceArray<float> d;
  d.upload(h);
  return d;
}
DeviceArray<float> dev_zeros(size_t n) {
  DeviceArray<float> d(n);
  d.zero();
  return d;
}

// Elementwise comparison: |g − r| ≤ rtol (|r| + rms(r)). Prints one [cmp] line (tools/gpu-check.sh
// collects them into docs/gpu-results.md).
// Returns the max relative error.
double compare(const std::string& what, const Vec& g, const Vec& r, double rtol) {
  EXPECT_EQ(g.size(), r.size()) << what;
  if (g.size() != r.size()) return INFINITY;
  double ss = 0;
  for (float x : r) ss += double(x) * x;
  const double rms = r.empty() ? 0 : std::sqrt(ss / r.size());
  double max_abs = 0, max_rel = 0, share = 0;
  size_t worst = 0;
  for (size_t i = 0; i < r.size(); i++) {
    const double d = std::abs(double(g[i]) - r[i]);
    if (!std::isfinite(g[i])) {
      share = INFINITY, worst = i;
      break;
    }
    max_abs = std::max(max_abs, d);
    const double rel = d / (std::abs(double(r[i])) + rms + 1e-30);
    max_rel = std::max(max_rel, rel);
    if (rel / rtol > share) share = rel / rtol, worst = i;
  }
  std::printf("[cmp] %-44s n=%-8zu max abs %.2e  max rel %.2e  %6.2f%% of threshold (rtol %.0e)\n",
              what.c_str(), r.size(), max_abs, max_rel, 100 * share, rtol);
  EXPECT_LE(share, 1.0) << what << ": worst entry " << worst << " gpu " << g[worst] << " ref "
                        << r[worst];
  return max_rel;
}

// Whole-tensor comparison: ‖g − r‖ ≤ tol · (‖r‖ + rms·sqrt(n)), where rms is the RMS of the
// whole buffer the tensor belongs to (all of the model's gradients): the same rms term as above,
// for tensors whose entries are small by cancellation (a magnitude β's gradient Σ_c α_c dγ_c).
void compare_norm(const std::string& what, const Vec& g, const Vec& r, double tol, double rms = 0) {
  ASSERT_EQ(g.size(), r.size()) << what;
  double dd = 0, rr = 0, max_abs = 0;
  for (size_t i = 0; i < r.size(); i++) {
    const double d = double(g[i]) - r[i];
    dd += d * d, rr += double(r[i]) * r[i], max_abs = std::max(max_abs, std::abs(d));
  }
  const double rel = std::sqrt(dd) / (std::sqrt(rr) + 1e-30);
  const double share =
      std::sqrt(dd) / (tol * (std::sqrt(rr) + rms * std::sqrt(double(r.size()))) + 1e-30);
  std::printf("[cmp] %-44s n=%-8zu max abs %.2e  norm rel %.2e  %6.2f%% of threshold (tol %.0e)\n",
              what.c_str(), r.size(), max_abs, rel, 100 * share, tol);
  EXPECT_LE(share, 1.0) << what;
  EXPECT_TRUE(std::isfinite(rel)) << what;
}

constexpr double kOpTol = 2e-5;

Vec rounded(Vec v, gpu::Precision p) {
  for (auto& x : v) x = gpu::round_operand(x, p);
  return v;
}

// Sets the process's matrix-product precision for one scope, and restores fp32.
struct PrecisionScope {
  explicit PrecisionScope(gpu::Precision p) { gpu::set_matmul_precision(p); }
  ~PrecisionScope() { gpu::set_matmul_precision(gpu::Precision::fp32); }
};
const std::vector<gpu::Precision> kReduced = {gpu::Precision::tf32, gpu::Precision::bf16};
constexpr double kTensorCoreTol = 1e-4;  // exact operands, fp32 sums on tensor cores (see the top)

// The u of the tolerances (tf32's doubled: cuBLAS's rounding to tf32 is undocumented).
using gpu::tolerance_roundoff;

// ---------------------------------------------------------------------------------------------
// Ops, at odd sizes: C ∈ {33, 260, 1025}, row counts that are no multiple of any tile.

struct Shape {
  int N, IC, OC;
};
class LinearGpu : public ::testing::TestWithParam<Shape> {};

TEST_P(LinearGpu, ForwardAndBackward) {
  REQUIRE_KERNELS();
  const auto [N, IC, OC] = GetParam();
  const Vec x = randn((size_t)N * IC, 1), W = randn((size_t)OC * IC, 2, 0.1),
            dy = randn((size_t)N * OC, 3);
  Vec y(N * OC), dx((size_t)N * IC, 0.f), dW((size_t)OC * IC, 0.f);
  linear_forward(y.data(), x.data(), W.data(), N, IC, OC, OC);
  linear_backward(dx.data(), dW.data(), dy.data(), x.data(), W.data(), N, IC, OC, OC);
  auto gx = dev(x), gW = dev(W), gdy = dev(dy), gy = dev_zeros(y.size()),
       gdx = dev_zeros(dx.size()), gdW = dev_zeros(dW.size());
  gpu::linear_forward(gy.data(), gx.data(), gW.data(), N, IC, OC);
  gpu::linear_backward(gdx.data(), gdW.data(), gdy.data(), gx.data(), gW.data(), N, IC, OC);
  const std::string s = fmt::format("linear {}x{}->{}", N, IC, OC);
  compare(s + " out", gy.to_host(), y, kOpTol);
  compare(s + " dinp", gdx.to_host(), dx, kOpTol);
  compare(s + " dW", gdW.to_host(), dW, kOpTol);
}

// tf32 and bf16 against fp32 within 8u; bf16 against the reference on bf16-rounded operands
// within kTensorCoreTol. On the host double (test_gpu_host) the first part measures the
// emulated rounding against fp32, the derivation's check; the second would compare the emulation
// with itself and is skipped.
TEST_P(LinearGpu, ReducedPrecision) {
  REQUIRE_GPU();
  const auto [N, IC, OC] = GetParam();
  const Vec x = randn((size_t)N * IC, 1), W = randn((size_t)OC * IC, 2, 0.1),
            dy = randn((size_t)N * OC, 3);
  for (gpu::Precision p : kReduced) {
    for (bool exact : {false, true}) {
      if (exact && p != gpu::Precision::bf16) continue;
#ifdef SCALEVEC_GPU_HOST_DOUBLE
      if (exact) continue;
#endif
      // The reference: fp32 on the given operands, or on the operands rounded to bf16.
      const Vec rx = exact ? rounded(x, p) : x, rW = exact ? rounded(W, p) : W,
                rdy = exact ? rounded(dy, p) : dy;
      Vec y(N * OC), dx((size_t)N * IC, 0.f), dW((size_t)OC * IC, 0.f);
      linear_forward(y.data(), rx.data(), rW.data(), N, IC, OC, OC);
      linear_backward(dx.data(), dW.data(), rdy.data(), rx.data(), rW.data(), N, IC, OC, OC);
      auto gx = dev(x), gW = dev(W), gdy = dev(dy), gy = dev_zeros(y.size()),
           gdx = dev_zeros(dx.size()), gdW = dev_zeros(dW.size());
      {
        PrecisionScope scope(p);
        gpu::linear_forward(gy.data(), gx.data(), gW.data(), N, IC, OC);
        gpu::linear_backward(gdx.data(), gdW.data(), gdy.data(), gx.data(), gW.data(), N, IC, OC);
      }
      const double tol = exact ? kTensorCoreTol : 8 * tolerance_roundoff(p);
      const std::string s = fmt::format("linear {} {}x{}->{} vs {}", gpu::precision_name(p), N, IC,
                                        OC, exact ? "bf16-rounded ref" : "fp32");
      const double worst = std::max({compare(s + " out", gy.to_host(), y, tol),
                                     compare(s + " dinp", gdx.to_host(), dx, tol),
                                     compare(s + " dW", gdW.to_host(), dW, tol)});
      if (!exact) {
        EXPECT_GE(worst, gpu::unit_roundoff(p) / 2) << s << ": no rounding seen";
      }
    }
  }
}
INSTANTIATE_TEST_SUITE_P(OddSizes, LinearGpu,
                         ::testing::Values(Shape{37, 33, 260}, Shape{131, 260, 1025},
                                           Shape{67, 1025, 33}));

class RowsGpu : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(RowsGpu, RmsNorm) {
  REQUIRE_KERNELS();
  const auto [N, C] = GetParam();
  const Vec x = randn((size_t)N * C, 7, 2.0, 0.5), dn = randn(x.size(), 8);
  Vec n(x.size()), r(N), dx(x.size(), 0.f);
  rmsnorm_forward(n.data(), r.data(), x.data(), N, C, C, 1e-5f);
  rmsnorm_backward(dx.data(), dn.data(), n.data(), r.data(), N, C, C);
  auto gx = dev(x), gdn = dev(dn), gn = dev_zeros(x.size()), gr = dev_zeros(N),
       gdx = dev_zeros(x.size());
  gpu::rmsnorm_forward(gn.data(), gr.data(), gx.data(), N, C, 1e-5f);
  gpu::rmsnorm_backward(gdx.data(), gdn.data(), gn.data(), gr.data(), N, C);
  const std::string s = fmt::format("rmsnorm {}x{}", N, C);
  compare(s + " out", gn.to_host(), n, kOpTol);
  compare(s + " rstd", gr.to_host(), r, kOpTol);
  compare(s + " dx", gdx.to_host(), dx, kOpTol);
}

TEST_P(RowsGpu, ScaleWithDeterministicDgamma) {
  REQUIRE_KERNELS();
  const auto [N, C] = GetParam();
  const Vec x = randn((size_t)N * C, 9), g = randn(C, 10, 0.3, 1.0), dy = randn(x.size(), 11);
  Vec y(x.size()), dx(x.size(), 0.f), dg(C, 0.f);
  scale_forward(y.data(), x.data(), g.data(), N, C);
  scale_backward(dx.data(), dg.data(), dy.data(), x.data(), g.data(), N, C);
  auto gx = dev(x), gg = dev(g), gdy = dev(dy), gy = dev_zeros(y.size()), gdx = dev_zeros(x.size()),
       gdg = dev_zeros(C), part = dev_zeros(gpu::scale_partial_size(N, C));
  gpu::scale_forward(gy.data(), gx.data(), gg.data(), N, C);
  gpu::scale_backward(gdx.data(), gdg.data(), gdy.data(), gx.data(), gg.data(), N, C, part.data());
  const std::string s = fmt::format("scale {}x{}", N, C);
  compare(s + " out", gy.to_host(), y, kOpTol);
  compare(s + " dx", gdx.to_host(), dx, kOpTol);
  const Vec first = gdg.to_host();
  compare(s + " dgamma", first, dg, kOpTol);
  // Deterministic: the same dγ bits again.
  gdg.zero();
  gpu::scale_backward(gdx.data(), gdg.data(), gdy.data(), gx.data(), gg.data(), N, C, part.data());
  EXPECT_EQ(0, std::memcmp(first.data(), gdg.to_host().data(), C * sizeof(float)));
}

TEST_P(RowsGpu, SwiGLU) {
  REQUIRE_KERNELS();
  const auto [N, F] = GetParam();
  const Vec g = randn((size_t)N * F, 12, 2.0), u = randn(g.size(), 13), dh = randn(g.size(), 14);
  Vec h(g.size()), dg(g.size(), 0.f), du(g.size(), 0.f);
  swiglu_forward(h.data(), g.data(), u.data(), N, F, F);
  swiglu_backward(dg.data(), du.data(), dh.data(), g.data(), u.data(), N, F, F);
  auto G = dev(g), U = dev(u), DH = dev(dh), H = dev_zeros(g.size()), DG = dev_zeros(g.size()),
       DU = dev_zeros(g.size());
  gpu::swiglu_forward(H.data(), G.data(), U.data(), N, F);
  gpu::swiglu_backward(DG.data(), DU.data(), DH.data(), G.data(), U.data(), N, F);
  const std::string s = fmt::format("swiglu {}x{}", N, F);
  compare(s + " out", H.to_host(), h, kOpTol);
  compare(s + " dgate", DG.to_host(), dg, kOpTol);
  compare(s + " dup", DU.to_host(), du, kOpTol);
}

TEST_P(RowsGpu, CrossEntropy) {
  REQUIRE_KERNELS();
  const auto [N, V] = GetParam();
  const Vec logits = randn((size_t)N * V, 15, 3.0);
  std::vector<int32_t> targets(N);
  Rng rng(16);
  for (auto& t : targets) t = int32_t(rng.below(V));
  Vec losses(N), dl(logits.size(), 0.f);
  const float loss = crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V);
  crossentropy_backward(dl.data(), logits.data(), targets.data(), N, V, 1.f);
  DeviceArray<int32_t> gt;
  gt.upload(targets);
  auto gl = dev(logits), gloss = dev_zeros(N), gdl = dev_zeros(dl.size());
  gpu::crossentropy_forward(gloss.data(), gl.data(), gt.data(), N, V);
  gpu::crossentropy_backward(gdl.data(), gl.data(), gt.data(), N, V, 1.f);
  const std::string s = fmt::format("crossentropy {}x{}", N, V);
  const Vec gl_h = gloss.to_host();
  float total = 0.f;
  for (float l : gl_h) total += l;
  compare(s + " losses", gl_h, losses, kOpTol);
  compare(s + " mean", {total / N}, {loss}, kOpTol);
  compare(s + " dlogits", gdl.to_host(), dl, kOpTol);
}

INSTANTIATE_TEST_SUITE_P(OddSizes, RowsGpu,
                         ::testing::Values(std::pair{1, 33}, std::pair{37, 260},
                                           std::pair{129, 1025}));

struct AttnShape {
  int B, T, NH, hs;
};
class AttentionGpu : public ::testing::TestWithParam<AttnShape> {};

TEST_P(AttentionGpu, RopeAndAttention) {
  REQUIRE_KERNELS();
  const auto [B, T, NH, hs] = GetParam();
  const int C = NH * hs;
  const size_t n = (size_t)B * T * C;
  Vec q = randn(n, 20), k = randn(n, 21), v = randn(n, 22);
  const Vec dy = randn(n, 23);
  Vec cos_t, sin_t;
  rope_tables(cos_t, sin_t, T, hs, 10000.0);
  auto gq = dev(q), gk = dev(k), gv = dev(v), gdy = dev(dy), gcos = dev(cos_t), gsin = dev(sin_t);
  const std::string s = fmt::format("attention B{} T{} NH{} hs{}", B, T, NH, hs);
  // RoPE (forward on q and k, as the block does).
  rope_forward(q.data(), cos_t.data(), sin_t.data(), B, T, NH, hs, C);
  rope_forward(k.data(), cos_t.data(), sin_t.data(), B, T, NH, hs, C);
  gpu::rope_forward(gq.data(), gcos.data(), gsin.data(), B, T, NH, hs);
  gpu::rope_forward(gk.data(), gcos.data(), gsin.data(), B, T, NH, hs);
  compare(s + " rope q", gq.to_host(), q, kOpTol);
  // Attention forward and backward.
  Vec y(n), att((size_t)B * NH * T * T), datt(att.size()), dq(n, 0.f), dk(n, 0.f), dv(n, 0.f);
  attention_forward(y.data(), att.data(), q.data(), k.data(), v.data(), C, B, T, NH, hs);
  attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), dy.data(), att.data(), q.data(),
                     k.data(), v.data(), C, B, T, NH, hs);
  auto gy = dev_zeros(n), gatt = dev_zeros(att.size()), gdq = dev_zeros(n), gdk = dev_zeros(n),
       gdv = dev_zeros(n), scratch = dev_zeros(gpu::attention_scratch_size(B, T, NH, hs));
  gq.upload(q), gk.upload(k);  // the reference's rotated q, k: attention alone is compared here
  gpu::attention_forward(gy.data(), gatt.data(), gq.data(), gk.data(), gv.data(), B, T, NH, hs,
                         scratch.data());
  gpu::attention_backward(gdq.data(), gdk.data(), gdv.data(), gdy.data(), gatt.data(), gq.data(),
                          gk.data(), gv.data(), B, T, NH, hs, scratch.data());
  compare(s + " out", gy.to_host(), y, kOpTol);
  compare(s + " probabilities", gatt.to_host(), att, kOpTol);
  compare(s + " dv", gdv.to_host(), dv, kOpTol);
  // RoPE backward on dq, dk.
  rope_backward(dq.data(), cos_t.data(), sin_t.data(), B, T, NH, hs, C);
  rope_backward(dk.data(), cos_t.data(), sin_t.data(), B, T, NH, hs, C);
  gpu::rope_backward(gdq.data(), gcos.data(), gsin.data(), B, T, NH, hs);
  gpu::rope_backward(gdk.data(), gcos.data(), gsin.data(), B, T, NH, hs);
  compare(s + " dq (through rope)", gdq.to_host(), dq, kOpTol);
  compare(s + " dk (through rope)", gdk.to_host(), dk, kOpTol);
}
// C = NH·hs ∈ {66, 260, 1024}; T not a multiple of 32.

// Attention in tf32 and bf16 against fp32: 16u (two chained products with a softmax between).
TEST_P(AttentionGpu, ReducedPrecision) {
  REQUIRE_GPU();
  const auto [B, T, NH, hs] = GetParam();
  const int C = NH * hs;
  const size_t n = (size_t)B * T * C;
  const Vec q = randn(n, 20), k = randn(n, 21), v = randn(n, 22), dy = randn(n, 23);
  Vec y(n), att((size_t)B * NH * T * T), datt(att.size()), dq(n, 0.f), dk(n, 0.f), dv(n, 0.f);
  attention_forward(y.data(), att.data(), q.data(), k.data(), v.data(), C, B, T, NH, hs);
  attention_backward(dq.data(), dk.data(), dv.data(), datt.data(), dy.data(), att.data(), q.data(),
                     k.data(), v.data(), C, B, T, NH, hs);
  for (gpu::Precision p : kReduced) {
    auto gq = dev(q), gk = dev(k), gv = dev(v), gdy = dev(dy), gy = dev_zeros(n),
         gatt = dev_zeros(att.size()), gdq = dev_zeros(n), gdk = dev_zeros(n), gdv = dev_zeros(n),
         scratch = dev_zeros(gpu::attention_scratch_size(B, T, NH, hs));
    {
      PrecisionScope scope(p);
      gpu::attention_forward(gy.data(), gatt.data(), gq.data(), gk.data(), gv.data(), B, T, NH, hs,
                             scratch.data());
      gpu::attention_backward(gdq.data(), gdk.data(), gdv.data(), gdy.data(), gatt.data(),
                              gq.data(), gk.data(), gv.data(), B, T, NH, hs, scratch.data());
    }
    const double tol = 16 * tolerance_roundoff(p);
    const std::string s =
        fmt::format("attention {} B{} T{} NH{} hs{} vs fp32", gpu::precision_name(p), B, T, NH, hs);
    compare(s + " out", gy.to_host(), y, tol);
    compare(s + " probabilities", gatt.to_host(), att, tol);
    compare(s + " dq", gdq.to_host(), dq, tol);
    compare(s + " dk", gdk.to_host(), dk, tol);
    compare(s + " dv", gdv.to_host(), dv, tol);
  }
}
INSTANTIATE_TEST_SUITE_P(OddSizes, AttentionGpu,
                         ::testing::Values(AttnShape{2, 37, 3, 22}, AttnShape{1, 129, 5, 52},
                                           AttnShape{3, 65, 8, 128}));

TEST(EmbeddingGpu, ForwardAndBackwardWithRepeatedTokens) {
  REQUIRE_KERNELS();
  const int V = 256, C = 260, N = 517;
  const Vec wte = randn((size_t)V * C, 30), dx = randn((size_t)N * C, 31);
  std::vector<int32_t> tokens(N);
  Rng rng(32);
  for (auto& t : tokens) t = int32_t(rng.below(40));  // few distinct tokens: many repeats
  Vec x((size_t)N * C), dw(wte.size(), 0.f);
  embedding_forward(x.data(), tokens.data(), wte.data(), N, C);
  embedding_backward(dw.data(), dx.data(), tokens.data(), N, C);
  std::vector<int32_t> offsets(V + 1, 0), positions(N);
  for (int n = 0; n < N; n++) offsets[tokens[n] + 1]++;
  for (int v = 0; v < V; v++) offsets[v + 1] += offsets[v];
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int n = 0; n < N; n++) positions[fill[tokens[n]]++] = n;
  DeviceArray<int32_t> gt, gp, go;
  gt.upload(tokens), gp.upload(positions), go.upload(offsets);
  auto gw = dev(wte), gdx = dev(dx), gx = dev_zeros(x.size()), gdw = dev_zeros(dw.size());
  gpu::embedding_forward(gx.data(), gt.data(), gw.data(), N, C);
  gpu::embedding_backward(gdw.data(), gdx.data(), gp.data(), go.data(), V, C);
  compare("embedding out", gx.to_host(), x, 0.0 + 1e-30);
  compare("embedding dwte", gdw.to_host(), dw, kOpTol);
}

// Every parameterization's γ and its backward, against ref ScaleVector.
TEST(ScaleVectorGpu, EveryParameterization) {
  REQUIRE_KERNELS();
  for (ScaleParam kind : {ScaleParam::Gamma, ScaleParam::MagDir, ScaleParam::MagDirNormalized}) {
    for (int d : {33, 1025}) {
      ParamLayout layout;
      ScaleVector<float> sv(layout, "s", "gamma", d, kind, {});
      Vec P = randn(layout.total(), 40 + d, 0.5, 1.0), G(layout.total(), 0.f);
      const Vec dgamma = randn(d, 41);
      const float* gamma = sv.forward(P.data());
      const Vec gamma_ref(gamma, gamma + d);
      std::copy(dgamma.begin(), dgamma.end(), sv.grad());
      sv.backward(P.data(), G.data());
      auto gP = dev(P), gG = dev_zeros(G.size()), gg = dev_zeros(d), gdg = dev(dgamma);
      const bool md = kind != ScaleParam::Gamma;
      gpu::scale_vector_forward(gg.data(), gP.data() + sv.offset(),
                                md ? gP.data() + sv.beta_offset() : nullptr, kind, d);
      gpu::scale_vector_backward(
          gG.data() + sv.offset(), md ? gG.data() + sv.beta_offset() : nullptr, gdg.data(),
          gP.data() + sv.offset(), md ? gP.data() + sv.beta_offset() : nullptr, kind, d);
      const std::string s = fmt::format("scale vector {} d={}", scale_param_name(kind), d);
      compare(s + " gamma", gg.to_host(), gamma_ref, kOpTol);
      compare(s + " param grads", gG.to_host(), G, kOpTol);
    }
  }
}

// A kind outside the enum is rejected on the host, before any launch (no kernel treats it as
// another kind). Runs on the host double too: there the reference op rejects it.
TEST(ScaleVectorGpu, UnknownKindIsAnError) {
  const ScaleParam bogus = static_cast<ScaleParam>(7);
  EXPECT_THROW(gpu::scale_vector_forward(nullptr, nullptr, nullptr, bogus, 4), Error);
  EXPECT_THROW(gpu::scale_vector_backward(nullptr, nullptr, nullptr, nullptr, nullptr, bogus, 4),
               Error);
}

TEST(NewtonSchulzGpu, WideAndTall) {
  REQUIRE_KERNELS();
  for (auto [R, C] : {std::pair{33, 260}, std::pair{260, 33}, std::pair{128, 128}}) {
    const Vec G = randn((size_t)R * C, 50 + R);
    Vec out(G.size()), work(newton_schulz_work(R, C));
    newton_schulz(G.data(), out.data(), R, C, 5, work.data());
    auto gG = dev(G), gout = dev_zeros(G.size()),
         gwork = dev_zeros(gpu::newton_schulz_work_size(R, C));
    gpu::newton_schulz(gG.data(), gout.data(), R, C, 5, gwork.data());
    // Five chained iterations of products over up to 260 terms, polynomial of degree 5 each.
    compare(fmt::format("newton-schulz {}x{}", R, C), gout.to_host(), out, 2e-4);
  }
}

// ---------------------------------------------------------------------------------------------
// The whole model, every scale strategy and the architecture switches.

struct ModelCase {
  std::string name;  // scale preset, optionally +qk (QK-Norm) and +post (post-norms)
  std::string optimizer = "adamw";
};
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name << " " << c.optimizer; }
std::string case_name(const ::testing::TestParamInfo<ModelCase>& i) {
  std::string s = i.param.name + "_" + i.param.optimizer;
  for (auto& c : s)
    if (!std::isalnum((unsigned char)c)) c = '_';
  return s;
}

ModelConfig model_for(const std::string& name) {
  ModelConfig c;
  // Odd on purpose: N = B·T = 3·33 = 99 rows, d_ff = 160, head size 32.
  c.n_layer = 2, c.d_model = 96, c.n_head = 3, c.d_ff = 160, c.context = 33;
  std::string preset = name;
  const bool qk = preset.find("+qk") != std::string::npos;
  const bool post = preset.find("+post") != std::string::npos;
  preset = preset.substr(0, preset.find('+'));
  c.set_scale(preset);
  c.sc.qk_norm = qk, c.sc.post_norm = post;
  c.validate();
  return c;
}

struct Batch {
  std::vector<int32_t> x, y;
};
Batch batch_for(int B, int T, uint64_t seed) {
  Rng rng(seed);
  Batch b;
  for (int i = 0; i < B * T; i++)
    b.x.push_back(int32_t(rng.below(256))), b.y.push_back(int32_t(rng.below(256)));
  return b;
}

// Initialise, then move every scale away from its init so that γ = 1 hides no bug.
void init_away_from_one(Transformer<float>& ref) {
  ref.init(123);
  Rng rng(5);
  for (const auto& p : ref.layout().params())
    if (p.role == Role::Scale)
      for (size_t i = 0; i < p.numel; i++)
        ref.params[p.offset + i] = float(1.0 + 0.3 * rng.normal());
}

double rms_of(const Vec& v) {
  double ss = 0;
  for (float x : v) ss += double(x) * x;
  return std::sqrt(ss / double(v.size()));
}

class ModelGpu : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelGpu, LossAndEveryGradientOneStepAndTenSteps) {
  REQUIRE_GPU();
  const ModelCase mc = GetParam();
  const ModelConfig cfg = model_for(mc.name);
  const int B = 3, T = cfg.context;
  Transformer<float> ref(cfg, B);
  init_away_from_one(ref);
  gpu::GpuTransformer g(cfg, B);
  g.set_params(ref.params);
  ASSERT_EQ(g.layout().total(), ref.layout().total());

  TrainConfig tc;
  tc.optimizer = parse_optimizer(mc.optimizer), tc.lr = 1e-3, tc.weight_decay = 0.1,
  tc.wd_policy = WdPolicy::Iwd;
  tc.muon_lr = 0.01, tc.sgd_momentum = 0.9;
  auto opt = make_optimizer<float>(ref.layout(), tc);
  gpu::GpuOptimizer gopt(g.layout(), tc);
  DeviceArray<float> partial;

  const int steps = 10;
  for (int s = 1; s <= steps; s++) {
    const Batch b = batch_for(B, T, 1000 + s);
    ref.zero_grad(), g.zero_grad();
    const float l_ref = ref.forward(b.x.data(), b.y.data(), B, T);
    const float l_gpu = g.forward(b.x.data(), b.y.data(), B, T);
    ref.backward(), g.backward();
    if (s == 1 || s == steps) {
      const Vec grads = g.get_grads();
#ifdef SCALEVEC_GPU_HOST_DOUBLE
      // On the host double the GPU path is the reference's own model code on the CUDA backend,
      // whose ops here are the reference ops: the first step's loss and every gradient must be
      // the reference's bits (a wrong argument, offset or missing zeroing in gpu/backend.* breaks
      // it).
      if (s == 1) {
        EXPECT_EQ(l_gpu, l_ref) << mc.name << " loss";
        EXPECT_EQ(0, std::memcmp(grads.data(), ref.grads.data(), grads.size() * sizeof(float)))
            << mc.name << " " << mc.optimizer << ": gradients not bit-identical to the reference";
      }
#endif
      const double rms_all = rms_of(ref.grads);
      std::printf("[cmp] %-44s rms of all gradients %.3e\n",
                  fmt::format("{} {} step {}", mc.name, mc.optimizer, s).c_str(), rms_all);
      for (const auto& p : ref.layout().params()) {
        const Vec gr(grads.begin() + p.offset, grads.begin() + p.offset + p.numel);
        const Vec rr(ref.grads.begin() + p.offset, ref.grads.begin() + p.offset + p.numel);
        // A magnitude whose gradient is structurally zero (cancelled by a later norm) is compared
        // against rounding noise: only its size matters.
        if (!p.note.empty()) {
          for (size_t i = 0; i < gr.size(); i++) EXPECT_LE(std::abs(gr[i]), 1e-3) << p.name;
          continue;
        }
        const std::string what = fmt::format("{} {} step {} d{}", mc.name, mc.optimizer, s, p.name);
        if (s == 1)
          compare(what, gr, rr, 2e-4);
        else
          compare_norm(what, gr, rr, 2e-3, rms_all);
      }
      compare(fmt::format("{} {} step {} loss", mc.name, mc.optimizer, s), {l_gpu}, {l_ref},
              s == 1 ? 2e-5 : 2e-4);
    } else {
      EXPECT_NEAR(l_gpu, l_ref, 2e-4 * std::abs(l_ref)) << "step " << s;
    }
    const double n_ref = clip_grad_norm(ref.grads.data(), ref.grads.size(), 1.0);
    const double n_gpu = gpu::clip_grad_norm(g.grads.data(), g.grads.size(), 1.0, partial);
    EXPECT_NEAR(n_gpu, n_ref, 1e-3 * n_ref) << "gradient norm, step " << s;
    opt->step(ref.params.data(), ref.grads.data(), 1.0);
    gopt.step(g.params.data(), g.grads.data(), 1.0);
  }
  compare_norm(fmt::format("{} {} params after {} steps", mc.name, mc.optimizer, steps),
               g.get_params(), ref.params, 2e-3);
}

std::vector<ModelCase> model_cases() {
  std::vector<ModelCase> v;
  for (const auto& s : scale_strategy_names()) v.push_back({s});
  v.push_back({"baseline+qk"});
  v.push_back({"baseline+post"});
  v.push_back({"dp+qk+post"});
  v.push_back({"unified+post"});
  v.push_back({"magdir-normalized+post"});
  v.push_back({"baseline", "muon"});
  v.push_back({"unified", "muon"});
  v.push_back({"baseline", "sgd"});
  v.push_back({"hg", "sgd"});
  return v;
}
INSTANTIATE_TEST_SUITE_P(EveryStrategy, ModelGpu, ::testing::ValuesIn(model_cases()), case_name);

// The model with tf32 or bf16 matrix products against the fp32 reference: the loss and every
// gradient after one step, the parameters after 10 AdamW steps, within 8u (see the top).
struct PrecisionCase {
  std::string name;
  gpu::Precision precision;
};
void PrintTo(const PrecisionCase& c, std::ostream* os) {
  *os << c.name << " " << gpu::precision_name(c.precision);
}
class ModelGpuPrecision : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(ModelGpuPrecision, WithinTheOperandRoundoff) {
  REQUIRE_GPU();
  const auto& [name, precision] = GetParam();
  const ModelConfig cfg = model_for(name);
  const int B = 3, T = cfg.context;
  Transformer<float> ref(cfg, B);
  init_away_from_one(ref);
  gpu::GpuTransformer g(cfg, B);
  g.set_params(ref.params);
  PrecisionScope scope(precision);
  const double u = tolerance_roundoff(precision), tol = 8 * u;
  const std::string tag = fmt::format("{} {}", name, gpu::precision_name(precision));

  TrainConfig tc;
  tc.lr = 1e-3, tc.weight_decay = 0.1, tc.wd_policy = WdPolicy::Iwd;
  auto opt = make_optimizer<float>(ref.layout(), tc);
  gpu::GpuOptimizer gopt(g.layout(), tc);
  DeviceArray<float> partial;
  for (int s = 1; s <= 10; s++) {
    const Batch b = batch_for(B, T, 2000 + s);
    ref.zero_grad(), g.zero_grad();
    const float l_ref = ref.forward(b.x.data(), b.y.data(), B, T);
    const float l_gpu = g.forward(b.x.data(), b.y.data(), B, T);
    ref.backward(), g.backward();
    if (s == 1) {
      const Vec grads = g.get_grads();
      const double rms_all = rms_of(ref.grads);
      for (const auto& p : ref.layout().params()) {
        if (!p.note.empty()) continue;  // structurally zero (see ModelGpu)
        const Vec gr(grads.begin() + p.offset, grads.begin() + p.offset + p.numel);
        const Vec rr(ref.grads.begin() + p.offset, ref.grads.begin() + p.offset + p.numel);
        compare_norm(fmt::format("{} step 1 d{}", tag, p.name), gr, rr, 2 * tol, rms_all);
      }
      compare(tag + " step 1 loss", {l_gpu}, {l_ref}, 2 * u);
    }
    clip_grad_norm(ref.grads.data(), ref.grads.size(), 1.0);
    gpu::clip_grad_norm(g.grads.data(), g.grads.size(), 1.0, partial);
    opt->step(ref.params.data(), ref.grads.data(), 1.0);
    gopt.step(g.params.data(), g.grads.data(), 1.0);
  }
  compare_norm(tag + " params after 10 steps", g.get_params(), ref.params, tol);
}

std::vector<PrecisionCase> precision_cases() {
  std::vector<PrecisionCase> v;
  for (gpu::Precision p : kReduced)
    for (const char* name : {"baseline", "unified", "dp+qk+post", "magdir-normalized+post"})
      v.push_back({name, p});
  return v;
}
INSTANTIATE_TEST_SUITE_P(Reduced, ModelGpuPrecision, ::testing::ValuesIn(precision_cases()),
                         [](const ::testing::TestParamInfo<PrecisionCase>& i) {
                           std::string s =
                               i.param.name + "_" + gpu::precision_name(i.param.precision);
                           for (auto& c : s)
                             if (!std::isalnum((unsigned char)c)) c = '_';
                           return s;
                         });

// bf16 keeps fp32 master weights and scale vectors: one AdamW step of lr 1e-6 moves every
// parameter by about ±1e-6 (the first step is lr·sign(g)), far below bf16's resolution (2^-8
// relative: 8e-5 at a weight of 0.02, 8e-3 at a γ of 1). Stored in bf16, no parameter would move
// and the difference would be the whole update; in fp32 only the entries whose gradient sign
// differs from the reference's (gradients near zero) differ.
TEST(ModelGpuPrecision, Bf16KeepsUpdatesBelowItsResolution) {
  REQUIRE_GPU();
  const ModelConfig cfg = model_for("unified");
  const int B = 3, T = cfg.context;
  Transformer<float> ref(cfg, B);
  init_away_from_one(ref);
  gpu::GpuTransformer g(cfg, B);
  g.set_params(ref.params);
  PrecisionScope scope(gpu::Precision::bf16);
  TrainConfig tc;
  tc.lr = 1e-6, tc.weight_decay = 0;
  auto opt = make_optimizer<float>(ref.layout(), tc);
  gpu::GpuOptimizer gopt(g.layout(), tc);
  const Vec before = ref.params;
  const Batch b = batch_for(B, T, 3001);
  ref.zero_grad(), g.zero_grad();
  ref.forward(b.x.data(), b.y.data(), B, T), g.forward(b.x.data(), b.y.data(), B, T);
  ref.backward(), g.backward();
  opt->step(ref.params.data(), ref.grads.data(), 1.0);
  gopt.step(g.params.data(), g.grads.data(), 1.0);
  const Vec after = g.get_params();
  Vec d_gpu, d_ref, s_gpu, s_ref;  // updates of all parameters, of the scale vectors
  for (const auto& p : ref.layout().params())
    for (size_t i = p.offset; i < p.offset + p.numel; i++) {
      d_gpu.push_back(after[i] - before[i]), d_ref.push_back(ref.params[i] - before[i]);
      if (p.role == Role::Scale) s_gpu.push_back(d_gpu.back()), s_ref.push_back(d_ref.back());
    }
  ASSERT_FALSE(s_ref.empty());
  compare_norm("bf16 lr 1e-6 update of the scale vectors", s_gpu, s_ref, 0.5);
  compare_norm("bf16 lr 1e-6 update of all parameters", d_gpu, d_ref, 0.5);
}

// Two runs of the same steps on the same device give the same bits (no atomics, fixed orders).
TEST(ModelGpuDeterminism, RepeatRunsAreBitIdentical) {
  REQUIRE_GPU();
  const ModelConfig cfg = model_for("dp+qk+post");
  const int B = 3, T = cfg.context;
  Transformer<float> ref(cfg, 0);
  ref.init(7);
  TrainConfig tc;
  tc.optimizer = OptimizerKind::Muon;
  auto run = [&] {
    gpu::GpuTransformer g(cfg, B);
    g.set_params(ref.params);
    gpu::GpuOptimizer opt(g.layout(), tc);
    DeviceArray<float> partial;
    std::vector<float> losses;
    for (int s = 1; s <= 5; s++) {
      const Batch b = batch_for(B, T, 77 + s);
      g.zero_grad();
      losses.push_back(g.forward(b.x.data(), b.y.data(), B, T));
      g.backward();
      gpu::clip_grad_norm(g.grads.data(), g.grads.size(), 1.0, partial);
      opt.step(g.params.data(), g.grads.data(), 0.5);
    }
    return std::pair{losses, g.get_params()};
  };
  const auto a = run(), b = run();
  EXPECT_EQ(0, std::memcmp(a.first.data(), b.first.data(), a.first.size() * sizeof(float)));
  ASSERT_EQ(a.second.size(), b.second.size());
  EXPECT_EQ(0, std::memcmp(a.second.data(), b.second.data(), a.second.size() * sizeof(float)))
      << "parameters differ between two identical runs";
  std::printf("[cmp] %-44s repeat runs bit-identical: %s\n", "dp+qk+post muon 5 steps",
              std::memcmp(a.second.data(), b.second.data(), a.second.size() * sizeof(float))
                  ? "no"
                  : "yes");
}

TEST(Gpu, Describe) {
  REQUIRE_KERNELS();
  const std::string d = gpu::describe();
  std::printf("device: %s\n", d.c_str());
  EXPECT_FALSE(d.empty());
}

TEST(Gpu, SkipsOrRunsCleanly) {
  // On a machine without a device this is the one test that runs: available() must answer
  // without throwing and give a reason.
  std::string why;
  const bool ok = gpu::available(&why);
  if (!ok) {
    EXPECT_FALSE(why.empty());
  }
}

}  // namespace scalevec
