// Tests of every reference op (ref/ops) and of the scale modules (ref/scale):
//   * finite differences in double precision of loss = Σ out ⊙ dout (random dout), over the full
//     Jacobian of tiny, odd-sized and strided shapes: every input entry and every parameter entry;
//   * negative controls: the same harness flags deliberately wrong backwards (a check that cannot
//     fail is a defect, docs/VERIFICATION.md);
//   * the analytic invariants of docs/VERIFICATION.md §2 (dγ = Σ_rows dout ⊙ N(x), RMSNorm scale
//     invariance, attention causality, RoPE is a rotation, cross-entropy = -log_softmax, ...);
//   * naive linear loops == BLAS; dγ bit-identical for any OpenMP thread count;
//   * every backward accumulates (+=): calling it twice doubles the gradient.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ref/check/gradcheck.h"
#include "ref/common.h"
#include "ref/ops/attention.h"
#include "ref/ops/crossentropy.h"
#include "ref/ops/embedding.h"
#include "ref/ops/exp.h"
#include "ref/ops/linear.h"
#include "ref/ops/residual.h"
#include "ref/ops/rmsnorm.h"
#include "ref/ops/rope.h"
#include "ref/ops/scale.h"
#include "ref/ops/swiglu.h"
#include "ref/rng.h"
#include "ref/scale/input_side.h"
#include "ref/scale/vector.h"
#include "single_threaded.h"

namespace scalevec {
namespace {

using Vec = std::vector<double>;
using Idx = std::vector<size_t>;

// ---------------------------------------------------------------------------------------------
// The finite-difference harness shared by every op.
//
// Step and tolerances. The 4-point stencil with h = 1e-3 has a truncation error of about
// h⁴|f⁽⁵⁾|/30 ≈ 3e-14 and a round-off error of about 1.5·ε·Σ|terms of the loss|/h ≈ 1e-11 for our
// tiny losses (Σ|terms| < 100). rtol = 1e-7 leaves a margin of > 100x for every gradient above the
// floor atol/rtol = 1e-3; gradients below it (e.g. dq of a softmax over a single key, which is 0
// by construction) are judged on the absolute scale atol = 1e-10, 10x above the round-off.
constexpr double kH = 1e-3, kRtol = 1e-7, kAtol = 1e-10;
// Written into every padding slot of a strided buffer: an op that touches padding is caught.
constexpr double kSentinel = -7.25;

// Entries of magnitude in [lo, hi) with a random sign: "inputs away from zero".
Vec away_from_zero(Rng& rng, size_t n, double lo = 0.5, double hi = 1.5) {
  Vec v(n);
  for (auto& x : v) x = (lo + (hi - lo) * rng.uniform()) * (rng.uniform() < 0.5 ? -1 : 1);
  return v;
}
// Entries uniform in [lo, hi): positive scales γ ≠ 1.
Vec uniform(Rng& rng, size_t n, double lo, double hi) {
  Vec v(n);
  for (auto& x : v) x = lo + (hi - lo) * rng.uniform();
  return v;
}
Vec normal(Rng& rng, size_t n) {
  Vec v(n);
  for (auto& x : v) x = rng.normal();
  return v;
}
// Indices of the used entries of a (rows, cols) block at column col0 of rows with stride ld.
Idx strided(int rows, int cols, int ld, int col0 = 0) {
  Idx v;
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) v.push_back((size_t)r * ld + col0 + c);
  return v;
}
// The complement of idx in [0, n): the padding of a strided layout.
Idx padding_of(const Idx& idx, size_t n) {
  std::vector<bool> used(n, false);
  for (size_t i : idx) used[i] = true;
  Idx pad;
  for (size_t i = 0; i < n; i++)
    if (!used[i]) pad.push_back(i);
  return pad;
}

// d loss / d x[i] by finite differences for every i in idx, compared with analytic[i]. Prints the
// worst errors (so the numbers are visible in the test log); the caller decides what to expect.
template <class Loss>
ErrorStats fd(const std::string& what, Vec& x, const Vec& analytic, Loss&& loss, const Idx& idx) {
  ErrorStats s = check_entries(x.data(), analytic.data(), idx, loss, kH, kRtol, kAtol);
  fmt::print("  [fd] {:<44} {:>4} entries  max rel err {:.2e}  max abs err {:.2e}{}\n", what,
             s.count, s.max_rel, s.max_abs, s.ok() ? "" : "  << FAILS");
  return s;
}
void expect_pass(const ErrorStats& s, const std::string& what) {
  EXPECT_GT(s.count, 0u) << what;
  EXPECT_TRUE(s.ok()) << what << ": " << s.failures << " of " << s.count << " entries beyond rtol "
                      << s.rtol << " (max rel err " << s.max_rel << ")";
}
// For the negative controls: the harness must flag the wrong backward clearly.
void expect_caught(const ErrorStats& s, const std::string& what) {
  EXPECT_FALSE(s.ok()) << what << ": a wrong backward passed the finite-difference check";
  EXPECT_GT(s.max_rel, 1e-3) << what;
}
// Backward called twice on the same zeroed buffers must give twice the gradient of one call.
void expect_doubled(const Vec& once, const Vec& twice, const Idx& idx, const std::string& what) {
  for (size_t i : idx)
    ASSERT_NEAR(twice[i], 2 * once[i], 1e-13 * (1 + std::abs(once[i])))
        << what << ": backward does not accumulate (+=) at entry " << i;
}
void expect_untouched(const Vec& v, const Idx& pad, double value, const std::string& what) {
  for (size_t i : pad) ASSERT_EQ(v[i], value) << what << ": padding entry " << i << " was written";
}

// ---------------------------------------------------------------------------------------------
// Linear: out = inp · Wᵀ, written into a column slice of a wider (N, ldo) buffer (the k part of a
// fused q|k|v row), both the naive loops and the BLAS version.

struct LinearShape {
  int N, IC, OC, ldo, col0;
};
template <class T>
using LinearFwd = void (*)(T*, const T*, const T*, int, int, int, int);
template <class T>
using LinearBwd = void (*)(T*, T*, const T*, const T*, const T*, int, int, int, int);

struct LinearCase {
  LinearShape s;
  Vec inp, W, out, dout;
  Idx out_idx;
  LinearFwd<double> fwd;
  LinearBwd<double> bwd;
  LinearCase(LinearShape shape, LinearFwd<double> f, LinearBwd<double> b)
      : s(shape), fwd(f), bwd(b) {
    Rng rng(100 + s.IC);
    inp = away_from_zero(rng, (size_t)s.N * s.IC);
    W = away_from_zero(rng, (size_t)s.OC * s.IC);
    dout = normal(rng, (size_t)s.N * s.ldo);
    out.assign((size_t)s.N * s.ldo, kSentinel);
    out_idx = strided(s.N, s.OC, s.ldo, s.col0);
  }
  double loss() {
    fwd(out.data() + s.col0, inp.data(), W.data(), s.N, s.IC, s.OC, s.ldo);
    double l = 0;
    for (size_t i : out_idx) l += out[i] * dout[i];
    return l;
  }
  void backward(Vec& dinp, Vec& dW) {
    loss();
    bwd(dinp.data(), dW.data(), dout.data() + s.col0, inp.data(), W.data(), s.N, s.IC, s.OC, s.ldo);
  }
};

TEST(Linear, FiniteDifferencesNaiveAndBlas) {
  struct Impl {
    const char* name;
    LinearFwd<double> fwd;
    LinearBwd<double> bwd;
  };
  const Impl impls[] = {{"naive", linear_forward_naive<double>, linear_backward_naive<double>},
                        {"blas", linear_forward<double>, linear_backward<double>}};
  // Odd sizes; contiguous, and a column slice of a (N, 3·OC) row.
  const LinearShape shapes[] = {{3, 5, 4, 4, 0}, {2, 3, 7, 21, 7}, {1, 1, 3, 5, 2}};
  for (const Impl& im : impls)
    for (const LinearShape& s : shapes) {
      const std::string name =
          fmt::format("linear {} N={} IC={} OC={} ldo={}", im.name, s.N, s.IC, s.OC, s.ldo);
      LinearCase c(s, im.fwd, im.bwd);
      Vec dinp(c.inp.size(), 0), dW(c.W.size(), 0);
      c.backward(dinp, dW);
      auto loss = [&] { return c.loss(); };
      expect_pass(fd(name + " dinp", c.inp, dinp, loss, all_indices(c.inp.size())), name);
      expect_pass(fd(name + " dW", c.W, dW, loss, all_indices(c.W.size())), name);
      expect_untouched(c.out, padding_of(c.out_idx, c.out.size()), kSentinel, name);
      Vec dinp2(dinp.size(), 0), dW2(dW.size(), 0);
      c.backward(dinp2, dW2);
      c.backward(dinp2, dW2);
      expect_doubled(dinp, dinp2, all_indices(dinp.size()), name + " dinp");
      expect_doubled(dW, dW2, all_indices(dW.size()), name + " dW");
    }
}

// The naive loops are the readable definition; the BLAS calls must equal them to round-off, in
// float and double, with a strided output. Bound: |Σ_k a_k b_k - fl(Σ)| <= K·u·Σ|a_k b_k| (u the
// unit round-off) for any summation order, doubled for the two computations being compared.
template <class T>
class LinearBlasVsNaive : public ::testing::Test {};
using Scalars = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LinearBlasVsNaive, Scalars);

TYPED_TEST(LinearBlasVsNaive, EqualToRoundOff) {
  using T = TypeParam;
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const LinearShape shapes[] = {{7, 33, 17, 17, 0}, {13, 9, 5, 15, 5}, {5, 64, 33, 100, 66}};
  for (const LinearShape& s : shapes) {
    Rng rng(7 + s.IC);
    auto to_t = [](const Vec& v) { return std::vector<T>(v.begin(), v.end()); };
    const std::vector<T> inp = to_t(away_from_zero(rng, (size_t)s.N * s.IC));
    const std::vector<T> W = to_t(away_from_zero(rng, (size_t)s.OC * s.IC));
    const std::vector<T> dout = to_t(normal(rng, (size_t)s.N * s.ldo));
    // Forward: outputs in a column slice, padding must stay as it was.
    std::vector<T> o1((size_t)s.N * s.ldo, T(kSentinel)), o2 = o1;
    linear_forward_naive(o1.data() + s.col0, inp.data(), W.data(), s.N, s.IC, s.OC, s.ldo);
    linear_forward(o2.data() + s.col0, inp.data(), W.data(), s.N, s.IC, s.OC, s.ldo);
    double worst = 0;
    for (int n = 0; n < s.N; n++)
      for (int o = 0; o < s.OC; o++) {
        double mag = 0;
        for (int i = 0; i < s.IC; i++)
          mag += std::abs(double(inp[(size_t)n * s.IC + i]) * double(W[(size_t)o * s.IC + i]));
        const size_t k = (size_t)n * s.ldo + s.col0 + o;
        const double err = std::abs(double(o1[k]) - double(o2[k]));
        ASSERT_LE(err, 2 * s.IC * u * mag) << "forward out[" << n << "][" << o << "]";
        worst = std::max(worst, err / mag);
      }
    for (size_t k = 0; k < o1.size(); k++)
      if (k % s.ldo < (size_t)s.col0 || k % s.ldo >= (size_t)(s.col0 + s.OC)) {
        ASSERT_EQ(o1[k], T(kSentinel));
        ASSERT_EQ(o2[k], T(kSentinel));
      }
    // Backward, accumulating into the same nonzero starting values.
    std::vector<T> di1 = to_t(normal(rng, inp.size())), dW1 = to_t(normal(rng, W.size()));
    std::vector<T> di2 = di1, dW2 = dW1, di0 = di1, dW0 = dW1;
    linear_backward_naive(di1.data(), dW1.data(), dout.data() + s.col0, inp.data(), W.data(), s.N,
                          s.IC, s.OC, s.ldo);
    linear_backward(di2.data(), dW2.data(), dout.data() + s.col0, inp.data(), W.data(), s.N, s.IC,
                    s.OC, s.ldo);
    for (int n = 0; n < s.N; n++)
      for (int i = 0; i < s.IC; i++) {
        double mag = std::abs(double(di0[(size_t)n * s.IC + i]));
        for (int o = 0; o < s.OC; o++)
          mag += std::abs(double(dout[(size_t)n * s.ldo + s.col0 + o]) * W[(size_t)o * s.IC + i]);
        const size_t k = (size_t)n * s.IC + i;
        ASSERT_LE(std::abs(double(di1[k]) - double(di2[k])), 2 * (s.OC + 1) * u * mag) << "dinp";
        worst = std::max(worst, std::abs(double(di1[k]) - double(di2[k])) / mag);
      }
    for (int o = 0; o < s.OC; o++)
      for (int i = 0; i < s.IC; i++) {
        double mag = std::abs(double(dW0[(size_t)o * s.IC + i]));
        for (int n = 0; n < s.N; n++)
          mag += std::abs(double(dout[(size_t)n * s.ldo + s.col0 + o]) * inp[(size_t)n * s.IC + i]);
        const size_t k = (size_t)o * s.IC + i;
        ASSERT_LE(std::abs(double(dW1[k]) - double(dW2[k])), 2 * (s.N + 1) * u * mag) << "dW";
        worst = std::max(worst, std::abs(double(dW1[k]) - double(dW2[k])) / mag);
      }
    fmt::print(
        "  [blas vs naive] {} N={} IC={} OC={} ldo={}: max |diff| / Σ|terms| = {:.2e} "
        "(unit round-off {:.1e})\n",
        sizeof(T) == 4 ? "float " : "double", s.N, s.IC, s.OC, s.ldo, worst, u);
  }
}

// ---------------------------------------------------------------------------------------------
// RMSNorm (the fixed N(x)), on rows of a possibly wider buffer (per-head use: a head slice).

struct NormShape {
  int N, C, ld, col0;
};
using RmsnormBwd = void (*)(double*, const double*, const double*, const double*, int, int, int);

struct RmsnormCase {
  NormShape s;
  double eps;
  Vec x, dn, n, rstd;
  Idx idx;
  explicit RmsnormCase(NormShape shape, double eps_ = 1e-5) : s(shape), eps(eps_) {
    Rng rng(200 + s.C);
    x = away_from_zero(rng, (size_t)s.N * s.ld);
    dn = normal(rng, x.size());
    n.assign(x.size(), kSentinel);
    rstd.assign(s.N, 0);
    idx = strided(s.N, s.C, s.ld, s.col0);
  }
  double loss() {
    rmsnorm_forward(n.data() + s.col0, rstd.data(), x.data() + s.col0, s.N, s.C, s.ld, eps);
    double l = 0;
    for (size_t i : idx) l += n[i] * dn[i];
    return l;
  }
  void backward(Vec& dx, RmsnormBwd bwd) {
    loss();
    bwd(dx.data() + s.col0, dn.data() + s.col0, n.data() + s.col0, rstd.data(), s.N, s.C, s.ld);
  }
  ErrorStats check(RmsnormBwd bwd, const std::string& name) {
    Vec dx(x.size(), 0);
    backward(dx, bwd);
    return fd(
        name, x, dx, [&] { return loss(); }, idx);
  }
};

const NormShape kNormShapes[] = {{3, 5, 5, 0}, {4, 3, 8, 2}, {2, 7, 12, 4}, {3, 1, 1, 0}};

TEST(Rmsnorm, FiniteDifferences) {
  for (const NormShape& s : kNormShapes) {
    const std::string name = fmt::format("rmsnorm N={} C={} ld={} col0={}", s.N, s.C, s.ld, s.col0);
    RmsnormCase c(s);
    expect_pass(c.check(rmsnorm_backward<double>, name + " dx"), name);
    Vec dx(c.x.size(), 0), dx2(c.x.size(), 0);
    c.backward(dx, rmsnorm_backward<double>);
    c.backward(dx2, rmsnorm_backward<double>);
    c.backward(dx2, rmsnorm_backward<double>);
    expect_doubled(dx, dx2, c.idx, name);
    const Idx pad = padding_of(c.idx, c.x.size());
    expect_untouched(c.n, pad, kSentinel, name + " forward");
    expect_untouched(dx, pad, 0.0, name + " backward");
  }
}

// Negative control: the backward without the projection term (dx = r·dn, forgetting that r
// depends on x) must be flagged.
void rmsnorm_backward_no_projection(double* dx, const double* dn, const double*, const double* rstd,
                                    int N, int C, int ld) {
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++) dx[(size_t)i * ld + c] += rstd[i] * dn[(size_t)i * ld + c];
}
TEST(NegativeControl, FdCatchesRmsnormWithoutProjectionTerm) {
  RmsnormCase c({3, 5, 5, 0});
  expect_caught(c.check(rmsnorm_backward_no_projection, "rmsnorm, broken backward (control)"),
                "rmsnorm without projection");
}

// N(s·x) = N(x) and therefore dx(s·x) = dx(x)/s, exactly when eps = 0 (with eps > 0 only up to
// eps/mean(x²)), so eps = 0 here and the tolerance is round-off.
TEST(Rmsnorm, InvariantToScalingInputAndGradientScalesInversely) {
  for (double s : {1e-3, 0.37, 5.0, 1e4}) {
    RmsnormCase a({4, 7, 7, 0}, 0.0), b({4, 7, 7, 0}, 0.0);
    for (auto& v : b.x) v *= s;
    a.loss(), b.loss();
    Vec dxa(a.x.size(), 0), dxb(b.x.size(), 0);
    a.backward(dxa, rmsnorm_backward<double>);
    b.backward(dxb, rmsnorm_backward<double>);
    for (size_t i = 0; i < a.x.size(); i++) {
      EXPECT_NEAR(b.n[i], a.n[i], 1e-15 * 8) << "N(s x) != N(x), s = " << s;
      EXPECT_NEAR(dxb[i] * s, dxa[i], 1e-14 * (1 + std::abs(dxa[i]))) << "dx(s x) != dx(x)/s";
    }
    // dx ⊥ x row-wise: moving x along itself does not change N(x), so the gradient has no
    // component along x.
    for (int r = 0; r < 4; r++) {
      double dot = 0, mag = 0;
      for (int ch = 0; ch < 7; ch++)
        dot += dxa[r * 7 + ch] * a.x[r * 7 + ch],
            mag += std::abs(dxa[r * 7 + ch] * a.x[r * 7 + ch]);
      EXPECT_LE(std::abs(dot), 1e-14 * mag);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The scale op y = γ ⊙ x and its dγ = Σ_rows dy ⊙ x.

TEST(Scale, FiniteDifferences) {
  for (auto nc : {std::pair{4, 5}, std::pair{1, 3}, std::pair{67, 2}}) {
    const int N = nc.first, C = nc.second;  // not a structured binding: lambdas capture these
    const std::string name = fmt::format("scale N={} C={}", N, C);
    Rng rng(300 + N);
    Vec x = away_from_zero(rng, (size_t)N * C), gamma = uniform(rng, C, 0.5, 1.5);
    Vec dy = normal(rng, x.size()), y(x.size());
    auto loss = [&] {
      scale_forward(y.data(), x.data(), gamma.data(), N, C);
      double l = 0;
      for (size_t i = 0; i < y.size(); i++) l += y[i] * dy[i];
      return l;
    };
    auto backward = [&](Vec& dx, Vec& dg) {
      scale_backward(dx.data(), dg.data(), dy.data(), x.data(), gamma.data(), N, C);
    };
    Vec dx(x.size(), 0), dg(C, 0), dx2(x.size(), 0), dg2(C, 0);
    backward(dx, dg);
    expect_pass(fd(name + " dx", x, dx, loss, all_indices(x.size())), name);
    expect_pass(fd(name + " dgamma", gamma, dg, loss, all_indices(C)), name);
    backward(dx2, dg2), backward(dx2, dg2);
    expect_doubled(dx, dx2, all_indices(dx.size()), name + " dx");
    expect_doubled(dg, dg2, all_indices(C), name + " dgamma");
  }
}

// dγ is a sum over all B·T rows. Its order is fixed (blocks of kRowBlock rows, blocks added in
// order), so 1, 2 or 3 OpenMP threads give the same bits (docs/VERIFICATION.md §3: deterministic
// gain gradients). Float, and enough rows for many blocks and a ragged last block.
TEST(Scale, DgammaBitIdenticalForAnyThreadCount) {
  const int N = 1000, C = 33;
  Rng rng(5);
  std::vector<float> x(N * C), dy(N * C), gamma(C);
  for (auto& v : x) v = float(rng.normal());
  for (auto& v : dy) v = float(rng.normal());
  for (auto& v : gamma) v = float(0.5 + rng.uniform());
  const int saved = num_threads();
  std::vector<std::vector<float>> dgs, dxs;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    std::vector<float> dx(N * C, 0.f), dg(C, 0.f);
    scale_backward(dx.data(), dg.data(), dy.data(), x.data(), gamma.data(), N, C);
    dgs.push_back(dg), dxs.push_back(dx);
  }
  set_num_threads(saved);
  for (size_t k = 1; k < dgs.size(); k++) {
    EXPECT_EQ(0, std::memcmp(dgs[0].data(), dgs[k].data(), C * sizeof(float)))
        << "dgamma differs between 1 and " << k + 1 << " threads";
    EXPECT_EQ(0, std::memcmp(dxs[0].data(), dxs[k].data(), N * C * sizeof(float)));
  }
  // The reduction is a real sum: it agrees with a double-precision sum to float round-off.
  for (int c = 0; c < C; c++) {
    double ref = 0, mag = 0;
    for (int n = 0; n < N; n++)
      ref += double(dy[n * C + c]) * x[n * C + c],
          mag += std::abs(double(dy[n * C + c]) * x[n * C + c]);
    EXPECT_NEAR(dgs[0][c], ref, 1e-6 * mag);
  }
}

// Every op, forward and backward in float (the training precision), gives the same bits with 1
// and 2 threads (OpenMP loops and OpenBLAS): the FD checks above run single-threaded, training
// does not.
TEST(ThreadCount, OpsGiveTheSameBits) {
  const int B = 2, T = 9, NH = 2, hs = 8, C = NH * hs, N = B * T, F = 24, V = 256, IC = 64;
  Rng rng(21);
  auto rnd = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = float(rng.normal());
    return v;
  };
  const std::vector<float> x = rnd(N * 3 * C), dy = rnd(N * 3 * C), W = rnd(3 * C * IC),
                           inp = rnd(N * IC), wte = rnd(V * C), logits = rnd(N * V);
  std::vector<int32_t> tok(N);
  for (auto& t : tok) t = int32_t(rng.below(V));
  std::vector<float> cs, sn;
  rope_tables(cs, sn, T, hs, 10000.0);
  const int T2 = 2 * kAttentionTile + 3, N2 = B * T2;  // attention_forward_tiled: three tiles
  const std::vector<float> x2 = rnd(N2 * 3 * C), dy2 = rnd(N2 * C);
  auto run_all = [&] {
    std::vector<float> all;
    auto keep = [&](const std::vector<float>& v) { all.insert(all.end(), v.begin(), v.end()); };
    std::vector<float> o(N * 3 * C, 0.f), di(N * IC, 0.f), dW(W.size(), 0.f);
    linear_forward(o.data(), inp.data(), W.data(), N, IC, 3 * C, 3 * C);
    linear_backward(di.data(), dW.data(), dy.data(), inp.data(), W.data(), N, IC, 3 * C, 3 * C);
    keep(o), keep(di), keep(dW);
    std::vector<float> n(N * C), r(N), dx(N * C, 0.f);
    rmsnorm_forward(n.data(), r.data(), x.data(), N, C, C, 1e-5f);
    rmsnorm_backward(dx.data(), dy.data(), n.data(), r.data(), N, C, C);
    keep(n), keep(dx);
    std::vector<float> q = x, dq = dy;
    rope_forward(q.data(), cs.data(), sn.data(), B, T, NH, hs, 3 * C);
    rope_backward(dq.data(), cs.data(), sn.data(), B, T, NH, hs, 3 * C);
    keep(q), keep(dq);
    std::vector<float> out(N * C), att(B * NH * T * T), datt(att.size()), dqkv(N * 3 * C, 0.f);
    attention_forward(out.data(), att.data(), x.data(), x.data() + C, x.data() + 2 * C, 3 * C, B, T,
                      NH, hs);
    attention_backward(dqkv.data(), dqkv.data() + C, dqkv.data() + 2 * C, datt.data(), dy.data(),
                       att.data(), x.data(), x.data() + C, x.data() + 2 * C, 3 * C, B, T, NH, hs);
    keep(out), keep(dqkv);
    // the tiled form, over more than one tile
    std::vector<float> out2(N2 * C), att2(B * NH * T2 * T2), datt2(att2.size()),
        dqkv2(N2 * 3 * C, 0.f);
    attention_forward_tiled(out2.data(), att2.data(), x2.data(), x2.data() + C, x2.data() + 2 * C,
                            3 * C, B, T2, NH, hs);
    attention_backward_tiled(dqkv2.data(), dqkv2.data() + C, dqkv2.data() + 2 * C, datt2.data(),
                             dy2.data(), att2.data(), x2.data(), x2.data() + C, x2.data() + 2 * C,
                             3 * C, B, T2, NH, hs);
    keep(out2), keep(att2), keep(dqkv2);
    std::vector<float> h(N * F), dgu(N * 2 * F, 0.f);
    swiglu_forward(h.data(), x.data(), x.data() + F, N, F, 3 * C);
    swiglu_backward(dgu.data(), dgu.data() + F, dy.data(), x.data(), x.data() + F, N, F, 2 * F);
    keep(h), keep(dgu);
    std::vector<float> e(N * C), de(V * C, 0.f), losses(N), dl(N * V, 0.f);
    embedding_forward(e.data(), tok.data(), wte.data(), N, C);
    embedding_backward(de.data(), dy.data(), tok.data(), N, C);
    keep(e), keep(de);
    keep({crossentropy_forward(losses.data(), logits.data(), tok.data(), N, V)});
    crossentropy_backward(dl.data(), logits.data(), tok.data(), N, V, 1.f);
    keep(losses), keep(dl);
    return all;
  };
  const int saved = num_threads();
  set_num_threads(1);
  const std::vector<float> one = run_all();
  set_num_threads(2);
  const std::vector<float> two = run_all();
  set_num_threads(saved);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(0, std::memcmp(one.data(), two.data(), one.size() * sizeof(float)));
}

// ---------------------------------------------------------------------------------------------
// RoPE, in place on a column slice of a wider row (the q or k part of q|k|v).

struct RopeShape {
  int B, T, NH, hs, ld, col0;
};

TEST(Rope, FiniteDifferences) {
  const RopeShape shapes[] = {{2, 3, 2, 6, 36, 12}, {1, 5, 3, 2, 18, 0}, {2, 2, 1, 4, 4, 0}};
  for (const RopeShape& s : shapes) {
    const std::string name =
        fmt::format("rope B={} T={} NH={} hs={} ld={}", s.B, s.T, s.NH, s.hs, s.ld);
    Vec cs, sn;
    rope_tables(cs, sn, s.T + 2, s.hs, 10.0);  // base 10: large angles at every frequency
    Rng rng(400 + s.hs);
    const size_t len = (size_t)s.B * s.T * s.ld;
    Vec x = away_from_zero(rng, len), dout = normal(rng, len), y;
    const Idx idx = strided(s.B * s.T, s.NH * s.hs, s.ld, s.col0);
    auto loss = [&] {
      y = x;
      rope_forward(y.data() + s.col0, cs.data(), sn.data(), s.B, s.T, s.NH, s.hs, s.ld);
      double l = 0;
      for (size_t i : idx) l += y[i] * dout[i];
      return l;
    };
    // rope_backward turns d(rotated) into d(unrotated) in place (it transforms, it does not
    // accumulate: the accumulation check does not apply).
    Vec dx = dout;
    rope_backward(dx.data() + s.col0, cs.data(), sn.data(), s.B, s.T, s.NH, s.hs, s.ld);
    expect_pass(fd(name + " dx", x, dx, loss, idx), name);
    loss();
    const Idx pad = padding_of(idx, len);
    for (size_t i : pad) ASSERT_EQ(y[i], x[i]) << name << ": forward touched padding";
    for (size_t i : pad) ASSERT_EQ(dx[i], dout[i]) << name << ": backward touched padding";
  }
}

// RoPE is a rotation of each (i, i + hs/2) pair: it keeps every pair's norm, is the identity at
// t = 0, and rope_backward is the inverse rotation. A basis vector pins the rotate-half
// convention (channel i pairs with i + hs/2, angle t·base^(-2i/hs)).
TEST(Rope, IsARotationAndBackwardIsItsInverse) {
  const int B = 2, T = 5, NH = 2, hs = 8, half = hs / 2, ld = NH * hs;
  const double base = 10000.0;
  Vec cs, sn;
  rope_tables(cs, sn, T, hs, base);
  Rng rng(9);
  const Vec x = away_from_zero(rng, (size_t)B * T * ld);
  Vec y = x;
  rope_forward(y.data(), cs.data(), sn.data(), B, T, NH, hs, ld);
  for (int bt = 0; bt < B * T; bt++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < half; i++) {
        const size_t a = (size_t)bt * ld + h * hs + i, b = a + half;
        EXPECT_NEAR(y[a] * y[a] + y[b] * y[b], x[a] * x[a] + x[b] * x[b], 1e-14);
        if (bt % T == 0) {  // angle 0: the identity
          EXPECT_EQ(y[a], x[a]);
          EXPECT_EQ(y[b], x[b]);
        }
      }
  Vec back = y;
  rope_backward(back.data(), cs.data(), sn.data(), B, T, NH, hs, ld);
  for (size_t i = 0; i < x.size(); i++) EXPECT_NEAR(back[i], x[i], 1e-15 * 4);
  // Convention: e_i at position t goes to cos(tθ_i) e_i + sin(tθ_i) e_{i+half}.
  for (int i = 0; i < half; i++) {
    const int t = 3;
    Vec e((size_t)T * hs, 0.0);
    e[(size_t)t * hs + i] = 1;
    rope_forward(e.data(), cs.data(), sn.data(), 1, T, 1, hs, hs);
    const double angle = t * std::pow(base, -2.0 * i / hs);
    for (int ch = 0; ch < hs; ch++) {
      const double want = ch == i ? std::cos(angle) : ch == i + half ? std::sin(angle) : 0.0;
      EXPECT_NEAR(e[(size_t)t * hs + ch], want, 1e-15) << "channel " << ch << " of e_" << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Causal attention (scaled scores, causal softmax, P·v) on q|k|v slices of one (B, T, ld) buffer.

struct AttnShape {
  int B, T, NH, hs, ld;
};
using AttnBwd = void (*)(double*, double*, double*, double*, const double*, const double*,
                         const double*, const double*, const double*, int, int, int, int, int);

struct AttnCase {
  AttnShape s;
  int C;
  Vec qkv, out, att, datt, dout;
  Idx idx;
  bool tiled = false;  // the forward of the CPU backend (attention_forward_tiled)
  explicit AttnCase(AttnShape shape) : s(shape), C(shape.NH * shape.hs) {
    Rng rng(500 + s.T * 10 + s.hs);
    qkv = away_from_zero(rng, (size_t)s.B * s.T * s.ld);
    dout = normal(rng, (size_t)s.B * s.T * C);
    out.assign(dout.size(), 0), att.assign((size_t)s.B * s.NH * s.T * s.T, 0), datt = att;
    idx = strided(s.B * s.T, 3 * C, s.ld);
  }
  double* q() { return qkv.data(); }
  double loss() {
    (tiled ? attention_forward_tiled<double>
           : attention_forward<double>)(out.data(), att.data(), q(), q() + C, q() + 2 * C, s.ld,
                                        s.B, s.T, s.NH, s.hs);
    double l = 0;
    for (size_t i = 0; i < out.size(); i++) l += out[i] * dout[i];
    return l;
  }
  void backward(Vec& dqkv, AttnBwd bwd) {
    loss();
    double* d = dqkv.data();
    bwd(d, d + C, d + 2 * C, datt.data(), dout.data(), att.data(), q(), q() + C, q() + 2 * C, s.ld,
        s.B, s.T, s.NH, s.hs);
  }
  ErrorStats check(AttnBwd bwd, const std::string& name) {
    Vec d(qkv.size(), 0);
    backward(d, bwd);
    return fd(
        name, qkv, d, [&] { return loss(); }, idx);
  }
};

TEST(Attention, FiniteDifferences) {
  // Odd T and hs, ld = 3C (the model's layout) and ld = 3C + 1 (padding), T = 1 (dq = dk = 0).
  const AttnShape shapes[] = {
      {2, 5, 2, 3, 18}, {1, 4, 3, 2, 19}, {2, 1, 1, 4, 12}, {1, 7, 1, 5, 15}};
  for (const AttnShape& s : shapes) {
    const std::string name =
        fmt::format("attention B={} T={} NH={} hs={} ld={}", s.B, s.T, s.NH, s.hs, s.ld);
    AttnCase c(s);
    expect_pass(c.check(attention_backward<double>, name + " dq|dk|dv"), name);
    Vec d(c.qkv.size(), 0), d2(c.qkv.size(), 0);
    c.backward(d, attention_backward<double>);
    c.backward(d2, attention_backward<double>);
    c.backward(d2, attention_backward<double>);
    expect_doubled(d, d2, c.idx, name);
    expect_untouched(d, padding_of(c.idx, d.size()), 0.0, name);
  }
}

// The tiled form the CPU backend runs (attention.h, attention_forward_tiled): its own finite
// differences, at T across several tiles with a partial last one.
TEST(AttentionTiles, FiniteDifferences) {
  static_assert(kAttentionTile == 32, "the shapes below straddle tiles of 32");
  for (const AttnShape& s : {AttnShape{1, 33, 2, 3, 18}, AttnShape{2, 70, 1, 2, 7}}) {
    const std::string name =
        fmt::format("tiled attention B={} T={} NH={} hs={}", s.B, s.T, s.NH, s.hs);
    AttnCase c(s);
    c.tiled = true;
    expect_pass(c.check(attention_backward_tiled<double>, name + " dq|dk|dv"), name);
  }
}

// ... and the readable form's results: P (with exact zeros above the diagonal), out, dq, dk, dv,
// in float and double, at T below, at and across the tile size. The tiles split each product
// differently and sum dv, dk tile by tile, so the bound is a float rounding bound: 64 unit
// roundoffs of the largest magnitude of each result (the differences seen: about 4 of them).
template <class T>
void expect_tiles_equal_readable(int B, int Tn, int NH, int hs, double roundoffs) {
  const int C = NH * hs, ld = 3 * C;
  Rng rng(1000 + Tn);
  std::vector<T> qkv((size_t)B * Tn * ld), dout((size_t)B * Tn * C);
  for (auto& x : qkv) x = T(rng.normal());
  for (auto& x : dout) x = T(rng.normal());
  struct Out {
    std::vector<T> out, att, dqkv;
  };
  auto run = [&](bool tiled) {
    Out o{std::vector<T>(dout.size()), std::vector<T>((size_t)B * NH * Tn * Tn, T(7)),
          std::vector<T>(qkv.size(), T(0))};
    std::vector<T> datt(o.att.size());
    const T *q = qkv.data(), *k = q + C, *v = q + 2 * C;
    T* d = o.dqkv.data();
    if (tiled) {
      attention_forward_tiled(o.out.data(), o.att.data(), q, k, v, ld, B, Tn, NH, hs);
      attention_backward_tiled(d, d + C, d + 2 * C, datt.data(), dout.data(), o.att.data(), q, k, v,
                               ld, B, Tn, NH, hs);
    } else {
      attention_forward(o.out.data(), o.att.data(), q, k, v, ld, B, Tn, NH, hs);
      attention_backward(d, d + C, d + 2 * C, datt.data(), dout.data(), o.att.data(), q, k, v, ld,
                         B, Tn, NH, hs);
    }
    return o;
  };
  const Out a = run(false), b = run(true);
  const std::string where = fmt::format("B={} T={} NH={} hs={}", B, Tn, NH, hs);
  auto expect_close = [&](const std::vector<T>& x, const std::vector<T>& y, const char* what) {
    double scale = 0, worst = 0;
    for (size_t i = 0; i < x.size(); i++) {
      scale = std::max(scale, std::fabs(double(x[i])));
      worst = std::max(worst, std::fabs(double(x[i]) - double(y[i])));
    }
    const double eps = std::numeric_limits<T>::epsilon() / 2;
    EXPECT_LE(worst, roundoffs * eps * scale)
        << what << " at " << where << ": " << worst / eps / scale << " roundoffs of " << scale;
  };
  expect_close(a.att, b.att, "P");
  expect_close(a.out, b.out, "out");
  expect_close(a.dqkv, b.dqkv, "dq|dk|dv");
  for (int bh = 0; bh < B * NH; bh++)
    for (int i = 0; i < Tn; i++)
      for (int j = i + 1; j < Tn; j++)
        ASSERT_EQ(b.att[((size_t)bh * Tn + i) * Tn + j], T(0)) << "P above the diagonal, " << where;
}

TEST(AttentionTiles, EqualTheReadableFormToRounding) {
  for (const int Tn : {1, 5, 31, 32, 33, 64, 70, 128}) {
    expect_tiles_equal_readable<float>(2, Tn, 2, 8, 64);
    expect_tiles_equal_readable<double>(1, Tn, 2, 4, 64);
  }
}

// Negative control: the softmax Jacobian without its "- Σ_l P_il dP_il" term.
void attention_backward_bad_softmax(double* dq, double* dk, double* dv, double* datt,
                                    const double* dout, const double* att, const double* q,
                                    const double* k, const double* v, int ld, int B, int Tn, int NH,
                                    int hs) {
  const int C = NH * hs;
  const double scale = 1 / std::sqrt(double(hs));
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const size_t off = (size_t)b * Tn * ld + (size_t)h * hs;
    const double* P = att + (size_t)bh * Tn * Tn;
    double* dS = datt + (size_t)bh * Tn * Tn;
    const double* dout_bh = dout + (size_t)b * Tn * C + (size_t)h * hs;
    gemm<double>(false, true, Tn, Tn, hs, 1, dout_bh, C, v + off, ld, 0, dS, Tn);
    gemm<double>(true, false, Tn, hs, Tn, 1, P, Tn, dout_bh, C, 1, dv + off, ld);
    for (int i = 0; i < Tn * Tn; i++) dS[i] *= P[i];  // BUG: dS = P ⊙ dP
    gemm<double>(false, false, Tn, hs, Tn, scale, dS, Tn, k + off, ld, 1, dq + off, ld);
    gemm<double>(true, false, Tn, hs, Tn, scale, dS, Tn, q + off, ld, 1, dk + off, ld);
  }
}
TEST(NegativeControl, FdCatchesAttentionWithWrongSoftmaxJacobian) {
  AttnCase c({2, 5, 2, 3, 18});
  expect_caught(c.check(attention_backward_bad_softmax, "attention, broken backward (control)"),
                "attention without the softmax's -dot term");
}

// Causality: changing q, k and v at positions > t0 leaves every output at positions <= t0
// bit-identical (masked probabilities are exactly 0), while later outputs do change.
TEST(Attention, FutureTokensDoNotChangeEarlierOutputs) {
  AttnCase c({2, 6, 2, 4, 24});
  c.loss();
  const Vec out1 = c.out;
  for (int P = 0; P < 2 * 2; P++)  // (b, h): every probability row sums to 1, masked entries are 0
    for (int i = 0; i < 6; i++) {
      double sum = 0;
      for (int j = 0; j < 6; j++) sum += c.att[((size_t)P * 6 + i) * 6 + j];
      EXPECT_NEAR(sum, 1.0, 1e-15 * 8);
      for (int j = i + 1; j < 6; j++) EXPECT_EQ(c.att[((size_t)P * 6 + i) * 6 + j], 0.0);
    }
  const int t0 = 2, C = 8;
  Rng rng(77);
  for (int b = 0; b < 2; b++)
    for (int t = t0 + 1; t < 6; t++)
      for (int j = 0; j < 3 * C; j++) c.qkv[((size_t)b * 6 + t) * 24 + j] += 1 + rng.uniform();
  c.loss();
  bool later_changed = false;
  for (int b = 0; b < 2; b++)
    for (int t = 0; t < 6; t++)
      for (int j = 0; j < C; j++) {
        const size_t i = ((size_t)b * 6 + t) * C + j;
        if (t <= t0) {
          ASSERT_EQ(c.out[i], out1[i]) << "output at t=" << t << " saw the future";
        } else {
          later_changed |= c.out[i] != out1[i];
        }
      }
  EXPECT_TRUE(later_changed);
}

// The causal softmax against an independent long-double computation, with large scores (the
// max subtraction must keep exp finite).
TEST(Attention, CausalSoftmaxMatchesIndependentComputation) {
  const int T = 6;
  Rng rng(3);
  Vec S = away_from_zero(rng, T * T, 0.5, 300.0), P = S;
  causal_softmax_inplace(P.data(), T);
  for (int i = 0; i < T; i++) {
    long double mx = S[i * T];
    for (int j = 1; j <= i; j++) mx = std::max<long double>(mx, S[i * T + j]);
    long double sum = 0;
    for (int j = 0; j <= i; j++) sum += std::exp((long double)S[i * T + j] - mx);
    for (int j = 0; j < T; j++) {
      const double want = j <= i ? double(std::exp((long double)S[i * T + j] - mx) / sum) : 0.0;
      EXPECT_NEAR(P[i * T + j], want, 1e-15) << "row " << i << " column " << j;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SwiGLU on the gate|up halves of one (N, ld) buffer, ld >= 2F.

struct SwigluShape {
  int N, F, ld;
};
using SwigluBwd = void (*)(double*, double*, const double*, const double*, const double*, int, int,
                           int);

struct SwigluCase {
  SwigluShape s;
  Vec gu, h, dh;
  Idx idx;
  explicit SwigluCase(SwigluShape shape) : s(shape) {
    Rng rng(600 + s.F);
    gu = away_from_zero(rng, (size_t)s.N * s.ld, 0.3, 3.0);  // both sides of silu's minimum
    dh = normal(rng, (size_t)s.N * s.F);
    h.assign(dh.size(), 0);
    idx = strided(s.N, 2 * s.F, s.ld);
  }
  double loss() {
    swiglu_forward(h.data(), gu.data(), gu.data() + s.F, s.N, s.F, s.ld);
    double l = 0;
    for (size_t i = 0; i < h.size(); i++) l += h[i] * dh[i];
    return l;
  }
  void backward(Vec& dgu, SwigluBwd bwd) {
    loss();
    bwd(dgu.data(), dgu.data() + s.F, dh.data(), gu.data(), gu.data() + s.F, s.N, s.F, s.ld);
  }
  ErrorStats check(SwigluBwd bwd, const std::string& name) {
    Vec d(gu.size(), 0);
    backward(d, bwd);
    return fd(
        name, gu, d, [&] { return loss(); }, idx);
  }
};

// vexp (ref/ops/exp.h), the exp of the float softmax, SiLU and cross-entropy loops. Against the
// correctly rounded e^x (std::exp in double, rounded once to float): at most 1 unit in the last
// place over every 61st float of [kExpLo, kExpHi] (36 million values; the exhaustive sweep of all
// 2.2 billion, run once by hand on 2026-12-01, also gave 1); the limits and special values as
// exp.h states them.
int32_t ulp_distance(float a, float b) {
  const int32_t ia = std::bit_cast<int32_t>(a), ib = std::bit_cast<int32_t>(b);
  return ia > ib ? ia - ib : ib - ia;  // both positive here: their bits are ordered like them
}

TEST(VectorExp, WithinOneUlpOfTheCorrectlyRoundedValue) {
  int32_t worst = 0;
  float worst_x = 0;
  long checked = 0;
  for (int64_t b = 0; b < (int64_t(1) << 32); b += 61) {
    const float x = std::bit_cast<float>(uint32_t(b));
    if (!(x >= kExpLo && x <= kExpHi)) continue;
    const int32_t d = ulp_distance(vexp(x), float(std::exp(double(x))));
    if (d > worst) worst = d, worst_x = x;
    checked++;
  }
  EXPECT_GT(checked, 30000000);
  EXPECT_LE(worst, 1) << "at x = " << worst_x;
}

TEST(VectorExp, LimitsAndSpecialValues) {
  EXPECT_EQ(vexp(0.0f), 1.0f);
  EXPECT_EQ(vexp(-0.0f), 1.0f);
  EXPECT_TRUE(std::isnan(vexp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(vexp(std::numeric_limits<float>::infinity()), std::numeric_limits<float>::infinity());
  EXPECT_EQ(vexp(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(vexp(std::nextafter(kExpHi, 100.0f)), std::numeric_limits<float>::infinity());
  EXPECT_EQ(vexp(std::nextafter(kExpLo, -100.0f)), 0.0f);
  EXPECT_TRUE(std::isfinite(vexp(kExpHi)));
  EXPECT_GT(vexp(kExpLo), 0.0f);        // about the smallest normal float, not 0
  EXPECT_EQ(vexp(1.0), std::exp(1.0));  // double: the library's exp
}

// A loop of vexp is vectorized by the compiler; each element must still be what a scalar call
// gives (the same operations in the same order), so a softmax does not depend on where a row
// starts or on its length.
TEST(VectorExp, VectorizedLoopEqualsScalarCalls) {
  float (*volatile scalar)(float) = [](float x) { return vexp(x); };  // not inlined into a loop
  std::vector<float> x(4099), y(x.size());
  Rng rng(11);
  for (auto& v : x) v = float(rng.uniform() * 200 - 100);
  for (size_t i = 0; i < x.size(); i++) y[i] = vexp(x[i]);
  for (size_t i = 0; i < x.size(); i++)
    ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(scalar(x[i]))) << x[i];
}

TEST(Swiglu, FiniteDifferences) {
  for (const SwigluShape& s : {SwigluShape{3, 5, 10}, SwigluShape{2, 3, 7}, SwigluShape{1, 1, 2}}) {
    const std::string name = fmt::format("swiglu N={} F={} ld={}", s.N, s.F, s.ld);
    SwigluCase c(s);
    expect_pass(c.check(swiglu_backward<double>, name + " dgate|dup"), name);
    Vec d(c.gu.size(), 0), d2(c.gu.size(), 0);
    c.backward(d, swiglu_backward<double>);
    c.backward(d2, swiglu_backward<double>);
    c.backward(d2, swiglu_backward<double>);
    expect_doubled(d, d2, c.idx, name);
    expect_untouched(d, padding_of(c.idx, d.size()), 0.0, name);
  }
}

// Negative control: silu'(g) taken as σ(g) (the product rule's g·σ'(g) term forgotten).
void swiglu_backward_bad_silu(double* dg, double* du, const double* dh, const double* g,
                              const double* u, int N, int F, int ld) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < F; j++) {
      const size_t a = (size_t)i * ld + j;
      const double s = sigmoid(g[a]), d = dh[(size_t)i * F + j];
      du[a] += d * g[a] * s;
      dg[a] += d * u[a] * s;  // BUG
    }
}
TEST(NegativeControl, FdCatchesSwigluWithWrongSiluDerivative) {
  SwigluCase c({3, 5, 10});
  expect_caught(c.check(swiglu_backward_bad_silu, "swiglu, broken backward (control)"),
                "swiglu with silu' = sigmoid");
}

// ---------------------------------------------------------------------------------------------
// Embedding, cross-entropy, residual.

TEST(Embedding, FiniteDifferences) {
  const int V = 5, C = 3, N = 6;
  const std::vector<int32_t> tokens = {1, 3, 1, 4, 1, 0};  // token 2 unused: its row gets 0
  Rng rng(700);
  Vec wte = away_from_zero(rng, V * C), dx = normal(rng, N * C), x(N * C);
  auto loss = [&] {
    embedding_forward(x.data(), tokens.data(), wte.data(), N, C);
    double l = 0;
    for (int i = 0; i < N * C; i++) l += x[i] * dx[i];
    return l;
  };
  Vec dwte(V * C, 0), dwte2(V * C, 0);
  embedding_backward(dwte.data(), dx.data(), tokens.data(), N, C);
  expect_pass(fd("embedding V=5 C=3 N=6 dwte", wte, dwte, loss, all_indices(V * C)), "embedding");
  embedding_backward(dwte2.data(), dx.data(), tokens.data(), N, C);
  embedding_backward(dwte2.data(), dx.data(), tokens.data(), N, C);
  expect_doubled(dwte, dwte2, all_indices(V * C), "embedding");
}

// A token used at several positions receives the sum of their gradients, in position order,
// added to what its row held; rows of unused tokens are not touched.
TEST(Embedding, BackwardSumsRepeatedTokens) {
  const int C = 4, N = 5;
  const std::vector<int32_t> tokens = {2, 0, 2, 2, 1};
  Rng rng(8);
  const Vec dx = normal(rng, N * C);
  Vec dwte(4 * C, 0.5);
  embedding_backward(dwte.data(), dx.data(), tokens.data(), N, C);
  for (int c = 0; c < C; c++) {
    EXPECT_EQ(dwte[2 * C + c], ((0.5 + dx[0 * C + c]) + dx[2 * C + c]) + dx[3 * C + c]);
    EXPECT_EQ(dwte[0 * C + c], 0.5 + dx[1 * C + c]);
    EXPECT_EQ(dwte[1 * C + c], 0.5 + dx[4 * C + c]);
    EXPECT_EQ(dwte[3 * C + c], 0.5);
  }
}

TEST(CrossEntropy, FiniteDifferences) {
  for (auto nv : {std::pair{3, 7}, std::pair{2, 256}, std::pair{1, 2}}) {
    const int N = nv.first, V = nv.second;  // not a structured binding: lambdas capture these
    const std::string name = fmt::format("crossentropy N={} V={}", N, V);
    Rng rng(800 + V);
    Vec logits = away_from_zero(rng, (size_t)N * V, 0.5, 3.0), losses(N);
    std::vector<int32_t> targets(N);
    for (auto& t : targets) t = int32_t(rng.below(V));
    const double dloss = 0.7;  // the upstream gradient of the scalar loss
    auto loss = [&] {
      return dloss * crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V);
    };
    Vec d(logits.size(), 0), d2(logits.size(), 0);
    crossentropy_backward(d.data(), logits.data(), targets.data(), N, V, dloss);
    expect_pass(fd(name + " dlogits", logits, d, loss, all_indices(d.size())), name);
    crossentropy_backward(d2.data(), logits.data(), targets.data(), N, V, dloss);
    crossentropy_backward(d2.data(), logits.data(), targets.data(), N, V, dloss);
    expect_doubled(d, d2, all_indices(d.size()), name);
  }
}

// Per-row losses equal -log softmax(logits)[target] computed independently (long double, no max
// shift), the returned value is their mean, and adding a constant to a row (here 700, where a
// plain exp overflows) changes nothing.
TEST(CrossEntropy, EqualsNegativeLogSoftmax) {
  const int N = 4, V = 256;
  Rng rng(10);
  Vec logits = away_from_zero(rng, (size_t)N * V, 0.0, 20.0), losses(N);
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = int32_t(rng.below(V));
  const double mean = crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V);
  long double total = 0;
  for (int n = 0; n < N; n++) {
    long double z = 0;
    for (int v = 0; v < V; v++) z += std::exp((long double)logits[(size_t)n * V + v]);
    const long double want =
        -std::log(std::exp((long double)logits[(size_t)n * V + targets[n]]) / z);
    EXPECT_NEAR(losses[n], double(want), 1e-13) << "row " << n;
    total += want;
  }
  EXPECT_NEAR(mean, double(total / N), 1e-13);
  Vec shifted = logits, losses2(N);
  for (auto& l : shifted) l += 700;
  const double mean2 = crossentropy_forward(losses2.data(), shifted.data(), targets.data(), N, V);
  EXPECT_TRUE(std::isfinite(mean2));
  EXPECT_NEAR(mean2, mean, 1e-11);
}

// out = a + b; the model's backward of it is "both inputs receive dout" (both paths accumulate
// into one gradient buffer), which is what this checks.
TEST(Residual, FiniteDifferences) {
  const size_t n = 7;
  Rng rng(900);
  Vec a = away_from_zero(rng, n), b = away_from_zero(rng, n), dout = normal(rng, n), out(n);
  auto loss = [&] {
    residual_forward(out.data(), a.data(), b.data(), n);
    double l = 0;
    for (size_t i = 0; i < n; i++) l += out[i] * dout[i];
    return l;
  };
  expect_pass(fd("residual n=7 da", a, dout, loss, all_indices(n)), "residual");
  expect_pass(fd("residual n=7 db", b, dout, loss, all_indices(n)), "residual");
  loss();
  residual_forward(out.data(), a.data(), out.data(), n);  // in place, as the model uses it
  for (size_t i = 0; i < n; i++) EXPECT_EQ(out[i], a[i] + (a[i] + b[i]));
}

// ---------------------------------------------------------------------------------------------
// Scale modules: ScaleVector (parameterization) and InputSideScale (placement).

TEST(ScaleVector, GammaIsTheParameterAndItsGradientChainsIntoTheBuffer) {
  ParamLayout layout;
  ParamInfo other;
  other.name = "w", other.shape = {3};
  layout.add(other);  // the scale does not sit at offset 0
  ScaleVector<double> g(layout, "site", "gamma", 5, ScaleParam::Gamma,
                        {ScaleType::Output, "why", false});
  ASSERT_EQ(layout.total(), 8u);
  const ParamInfo& p = layout.get("site.gamma");
  EXPECT_EQ(p.offset, 3u);
  EXPECT_EQ(p.shape, std::vector<int>{5});
  EXPECT_EQ(p.role, Role::Scale);
  EXPECT_EQ(p.scale_type, ScaleType::Output);
  EXPECT_EQ(p.init_value, 1.0);
  EXPECT_EQ(p.fold, "why");
  EXPECT_FALSE(g.identity());

  Rng rng(11);
  Vec params = uniform(rng, 8, 0.5, 1.5), w = normal(rng, 5);
  auto loss = [&] {
    const double* gamma = g.forward(params.data());
    double l = 0;
    for (int c = 0; c < 5; c++) l += gamma[c] * w[c];
    return l;
  };
  loss();
  Vec grads(8, 0), grads2(8, 0);
  std::copy(w.begin(), w.end(), g.grad());  // what the ops would accumulate into dγ
  g.backward(params.data(), grads.data());
  for (int c = 0; c < 5; c++) EXPECT_EQ(g.grad()[c], 0.0) << "dγ not cleared after backward";
  expect_pass(fd("ScaleVector gamma d=5", params, grads, loss, all_indices(8)), "ScaleVector");
  for (int r = 0; r < 2; r++) {
    std::copy(w.begin(), w.end(), g.grad());
    g.backward(params.data(), grads2.data());
  }
  expect_doubled(grads, grads2, all_indices(8), "ScaleVector");
}

TEST(ScaleVector, NoneIsTheIdentityWithoutParameters) {
  ParamLayout layout;
  ScaleVector<double> g(layout, "site", "gamma", 4, ScaleParam::None,
                        {ScaleType::Input, "columns", false});
  EXPECT_EQ(layout.total(), 0u);
  EXPECT_TRUE(layout.params().empty());
  EXPECT_TRUE(g.identity());
  const double* gamma = g.forward(nullptr);
  for (int c = 0; c < 4; c++) EXPECT_EQ(gamma[c], 1.0);
  g.grad()[0] = 3;
  g.backward(nullptr, nullptr);  // no parameters: nothing to write, dγ cleared
  EXPECT_EQ(g.grad()[0], 0.0);
  EXPECT_EQ(parse_scale_param("none"), ScaleParam::None);
  EXPECT_EQ(parse_scale_param(scale_param_name(ScaleParam::Gamma)), ScaleParam::Gamma);
  try {
    parse_scale_param("magic");
    ADD_FAILURE() << "no error for an unknown parameterization";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("magic"), std::string::npos) << e.what();
  }
}

// The module composed as the block uses it, forward then backward:
//     n = N(x),  a = γ ⊙ n  (or a = n for `none`),  z_f = W_f a  for f = q, k, v
// with z_f in column slices of one (N, 3·OC) buffer. Every entry of x, of γ and of each W_f.
struct InputSideCase {
  static constexpr int N = 3, C = 5, OC = 4, kBranches = 3;
  ParamLayout layout;
  InputSideScale<double> site;
  Vec params, x, n, rstd, W, z, dz;
  explicit InputSideCase(ScaleParam kind)
      : site(layout, "layers.0.attn_norm", C, kind,
             {{"q", "attn.wq", false}, {"k", "attn.wk", false}, {"v", "attn.wv", false}}, false,
             false, N) {
    Rng rng(1000);
    params = uniform(rng, layout.total(), 0.5, 1.5);  // γ ≠ 1
    x = away_from_zero(rng, N * C);
    W = away_from_zero(rng, kBranches * OC * C);
    dz = normal(rng, N * kBranches * OC);
    n.assign(N * C, 0), rstd.assign(N, 0), z.assign(dz.size(), 0);
  }
  double loss() {
    rmsnorm_forward(n.data(), rstd.data(), x.data(), N, C, C, 1e-5);
    site.forward(params.data(), n.data(), N);
    for (int f = 0; f < kBranches; f++)
      linear_forward(z.data() + f * OC, site.input(f), W.data() + f * OC * C, N, C, OC,
                     kBranches * OC);
    double l = 0;
    for (size_t i = 0; i < z.size(); i++) l += z[i] * dz[i];
    return l;
  }
  // The block's backward protocol: zero_grad, branch backwards into dinput, then backward().
  void backward(Vec& dx, Vec& dparams, Vec& dW) {
    loss();
    site.zero_grad(N);
    for (int f = 0; f < kBranches; f++)
      linear_backward(site.dinput(f), dW.data() + f * OC * C, dz.data() + f * OC, site.input(f),
                      W.data() + f * OC * C, N, C, OC, kBranches * OC);
    Vec dn(N * C, 0);
    site.backward(params.data(), dparams.data(), dn.data(), N);
    rmsnorm_backward(dx.data(), dn.data(), n.data(), rstd.data(), N, C, C);
  }
};

TEST(InputSideScale, FiniteDifferencesGammaAndNone) {
  for (ScaleParam kind : {ScaleParam::Gamma, ScaleParam::None}) {
    const std::string name = fmt::format("input-side {} N=3 C=5 qkv", scale_param_name(kind));
    InputSideCase c(kind);
    EXPECT_EQ(c.layout.total(), kind == ScaleParam::Gamma ? 5u : 0u);
    Vec dx(c.x.size(), 0), dp(c.params.size(), 0), dW(c.W.size(), 0);
    c.backward(dx, dp, dW);
    auto loss = [&] { return c.loss(); };
    expect_pass(fd(name + " dx", c.x, dx, loss, all_indices(dx.size())), name);
    expect_pass(fd(name + " dW_q|k|v", c.W, dW, loss, all_indices(dW.size())), name);
    if (kind == ScaleParam::Gamma)
      expect_pass(fd(name + " dgamma", c.params, dp, loss, all_indices(dp.size())), name);
    Vec dx2(dx.size(), 0), dp2(dp.size(), 0), dW2(dW.size(), 0);
    c.backward(dx2, dp2, dW2);
    c.backward(dx2, dp2, dW2);
    expect_doubled(dx, dx2, all_indices(dx.size()), name + " dx");
    expect_doubled(dp, dp2, all_indices(dp.size()), name + " dgamma");
  }
}

// docs/VERIFICATION.md §2: dγ = Σ_rows dout ⊙ N(x), with N(x) computed here independently (long
// double) and dout the summed gradient of the two branches (gate, up) that share this γ; also
// dn = dout ⊙ γ. 70 rows: more than one reduction block.
TEST(InputSideScale, DgammaIsRowSumOfDoutTimesNormalizedInput) {
  const int N = 70, C = 7;
  const double eps = 1e-5;
  ParamLayout layout;
  InputSideScale<double> site(layout, "layers.0.mlp_norm", C, ScaleParam::Gamma,
                              {{"gate", "mlp.w_gate", false}, {"up", "mlp.w_up", false}}, false,
                              false, N);
  Rng rng(12);
  const Vec params = uniform(rng, C, 0.5, 1.5), x = away_from_zero(rng, N * C);
  const Vec da_gate = normal(rng, N * C), da_up = normal(rng, N * C);
  Vec n(N * C), rstd(N), dn(N * C, 0), grads(C, 0);
  rmsnorm_forward(n.data(), rstd.data(), x.data(), N, C, C, eps);
  site.forward(params.data(), n.data(), N);
  site.zero_grad(N);
  for (int i = 0; i < N * C; i++) site.dinput(0)[i] += da_gate[i];
  for (int i = 0; i < N * C; i++) site.dinput(1)[i] += da_up[i];
  site.backward(params.data(), grads.data(), dn.data(), N);
  for (int c = 0; c < C; c++) {
    long double want = 0, mag = 0;
    for (int r = 0; r < N; r++) {
      long double ss = 0;
      for (int j = 0; j < C; j++) ss += (long double)x[r * C + j] * x[r * C + j];
      const long double nx = x[r * C + c] / std::sqrt(ss / C + eps);
      const long double dout = (long double)da_gate[r * C + c] + da_up[r * C + c];
      want += dout * nx, mag += std::abs(dout * nx);
    }
    EXPECT_NEAR(grads[c], double(want), 1e-14 * double(mag)) << "dgamma[" << c << "]";
  }
  for (int i = 0; i < N * C; i++)
    EXPECT_NEAR(dn[i], (da_gate[i] + da_up[i]) * params[i % C], 1e-15 * 8);
}

// Every γ placed on the input side is tagged Input-type, named after its site, and documents the
// linear maps it folds into; `none` declares nothing and hands n to the branches unchanged.
TEST(InputSideScale, LayoutTagsAndIdentity) {
  ParamLayout layout;
  InputSideScale<double> site(layout, "layers.1.attn_norm", 6, ScaleParam::Gamma,
                              {{"q", "layers.1.attn.wq", false},
                               {"k", "layers.1.attn.wk", false},
                               {"v", "layers.1.attn.wv", false}},
                              false, false, 2);
  ASSERT_EQ(layout.params().size(), 1u);
  const ParamInfo& p = layout.params()[0];
  EXPECT_EQ(p.name, "layers.1.attn_norm.gamma");
  EXPECT_EQ(p.role, Role::Scale);
  EXPECT_EQ(p.scale_type, ScaleType::Input);
  EXPECT_EQ(p.fold, "columns of layers.1.attn.wq layers.1.attn.wk layers.1.attn.wv");

  ParamLayout empty;
  InputSideScale<double> none(empty, "final_norm", 6, ScaleParam::None, {{"head", "head", false}},
                              false, false, 2);
  EXPECT_EQ(empty.total(), 0u);
  const Vec n(12, 0.25);
  none.forward(nullptr, n.data(), 2);
  EXPECT_EQ(none.input(0), n.data());
}

// The reference's emulation of the GPU precisions (ref/ops/precision.h): under OperandPrecision a
// float product equals the exact product of operands rounded one by one (checked against a naive
// triple loop in double over the rounded values, every transpose and a strided operand), and the
// rounding really happens (bf16 differs from fp32 on these inputs). The scope restores fp32.
TEST(OperandPrecision, ProductsRoundBothOperandsAsTheGpuModeDoes) {
  const int M = 5, N = 7, K = 9, ld_pad = 3;
  Rng rng(12);
  std::vector<float> A((size_t)K * (M + ld_pad)), B((size_t)K * (N + ld_pad));
  for (auto& x : A) x = float(rng.normal());
  for (auto& x : B) x = float(rng.normal());
  for (Precision p : {Precision::tf32, Precision::bf16})
    for (bool tA : {false, true})
      for (bool tB : {false, true}) {
        const int lda = (tA ? M : K) + ld_pad, ldb = (tB ? K : N) + ld_pad;
        auto a = [&](int i, int k) { return tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]; };
        auto b = [&](int k, int j) { return tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]; };
        std::vector<float> got((size_t)M * N), exact((size_t)M * N);
        {
          OperandPrecision rounding(p);
          gemm<float>(tA, tB, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, got.data(), N);
        }
        gemm<float>(tA, tB, M, N, K, 1.f, A.data(), lda, B.data(), ldb, 0.f, exact.data(), N);
        EXPECT_EQ(operand_precision(), Precision::fp32);
        double changed = 0;
        for (int i = 0; i < M; i++)
          for (int j = 0; j < N; j++) {
            double want = 0, mag = 0;
            for (int k = 0; k < K; k++) {
              const double t = double(round_operand(a(i, k), p)) * round_operand(b(k, j), p);
              want += t, mag += std::abs(t);
            }
            // Only the fp32 summation differs from the double loop: K u32 of the magnitudes.
            EXPECT_NEAR(got[(size_t)i * N + j], want, K * 0x1p-24 * mag)
                << precision_name(p) << " tA=" << tA << " tB=" << tB << " (" << i << "," << j
                << ")";
            changed = std::max(changed,
                               double(std::abs(got[(size_t)i * N + j] - exact[(size_t)i * N + j])));
          }
        EXPECT_GT(changed, 0x1p-24) << precision_name(p) << ": the operands were not rounded";
      }
}

}  // namespace
}  // namespace scalevec
