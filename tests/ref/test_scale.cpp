// The scale-vector modules of ref/scale/, in double precision against finite differences (full
// Jacobians of every input and parameter entry), and their type tags:
//   ScaleVector      gamma, magdir (γ = β α), magdir-normalized (γ = β α / rms(α))
//   InputSideScale   shared γ and HG (one γ per branch), composed with RMSNorm and the branch maps
//   OutputSide       DP (u ⊙ z), DNP (u ⊙ N_head(z)), QK-Norm / post-norm (γ ⊙ N(z)), DP + QK-Norm
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ref/check/gradcheck.h"
#include "ref/common.h"
#include "ref/ops/linear.h"
#include "ref/ops/rmsnorm.h"
#include "ref/rng.h"
#include "ref/scale/input_side.h"
#include "ref/scale/output_side.h"
#include "ref/scale/vector.h"
#include "single_threaded.h"

namespace scalevec {
namespace {

using Vec = std::vector<double>;
constexpr double kH = 1e-4, kRtol = 1e-7, kAtol = 1e-11;  // 4-point stencil; losses are O(10)

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

template <class Loss>
void expect_fd(const std::string& what, Vec& x, const Vec& analytic, Loss&& loss) {
  ErrorStats s =
      check_entries(x.data(), analytic.data(), all_indices(x.size()), loss, kH, kRtol, kAtol);
  fmt::print("  [fd] {:<52} {:>4} entries  max rel err {:.2e}\n", what, s.count, s.max_rel);
  EXPECT_GT(s.count, 0u) << what;
  EXPECT_TRUE(s.ok()) << what << ": max rel err " << s.max_rel;
}

// ---------------------------------------------------------------------------------------------
// ScaleVector parameterizations: loss = Σ_c γ_c w_c, so dγ = w; every parameter entry by FD.

class Parameterization : public ::testing::TestWithParam<ScaleParam> {};

TEST_P(Parameterization, FiniteDifferencesAndLayout) {
  const ScaleParam kind = GetParam();
  const int d = 7;
  ParamLayout layout;
  ScaleVector<double> g(layout, "site", "gamma", d, kind, {ScaleType::Input, "columns of W", true});
  const bool magdir = kind == ScaleParam::MagDir || kind == ScaleParam::MagDirNormalized;
  if (magdir) {
    ASSERT_EQ(layout.params().size(), 2u);
    EXPECT_EQ(layout.params()[0].name, "site.beta");
    EXPECT_EQ(layout.params()[0].shape, std::vector<int>{1});
    EXPECT_EQ(layout.params()[1].name, "site.alpha");
    EXPECT_EQ(layout.params()[1].shape, std::vector<int>{d});
    // magnitude_cancelled was set: β (and only β) says its gradient is structurally zero.
    EXPECT_NE(layout.params()[0].note.find("structurally zero"), std::string::npos);
    EXPECT_TRUE(layout.params()[1].note.empty());
  } else {
    ASSERT_EQ(layout.params().size(), 1u);
    EXPECT_EQ(layout.params()[0].name, "site.gamma");
  }
  for (const auto& p : layout.params()) {
    EXPECT_EQ(p.role, Role::Scale) << p.name;
    EXPECT_EQ(p.scale_type, ScaleType::Input) << p.name;  // β and α take the scale's type
    EXPECT_EQ(p.init_value, 1.0) << p.name;
  }
  Rng rng(21);
  Vec params = uniform(rng, layout.total(), 0.5, 1.5), w = normal(rng, d), grads(layout.total(), 0);
  auto loss = [&] {
    const double* gamma = g.forward(params.data());
    double l = 0;
    for (int c = 0; c < d; c++) l += gamma[c] * w[c];
    return l;
  };
  loss();
  std::copy(w.begin(), w.end(), g.grad());
  g.backward(params.data(), grads.data());
  expect_fd(fmt::format("ScaleVector {} d={}", scale_param_name(kind), d), params, grads, loss);
  // The forms themselves, computed independently.
  const double* gamma = g.forward(params.data());
  if (kind == ScaleParam::MagDir) {
    for (int c = 0; c < d; c++) EXPECT_DOUBLE_EQ(gamma[c], params[0] * params[1 + c]);
  }
  if (kind == ScaleParam::MagDirNormalized) {
    double ss = 0;
    for (int c = 0; c < d; c++) ss += params[1 + c] * params[1 + c];
    for (int c = 0; c < d; c++)
      EXPECT_NEAR(gamma[c], params[0] * params[1 + c] / std::sqrt(ss / d), 1e-15);
  }
  // set_identity makes γ = 1 exactly (what folding relies on).
  g.set_identity(params.data());
  gamma = g.forward(params.data());
  for (int c = 0; c < d; c++) EXPECT_EQ(gamma[c], 1.0);
}

INSTANTIATE_TEST_SUITE_P(Forms, Parameterization,
                         ::testing::Values(ScaleParam::Gamma, ScaleParam::MagDir,
                                           ScaleParam::MagDirNormalized),
                         [](const auto& param_info) {
                           std::string s = scale_param_name(param_info.param);
                           for (char& ch : s)
                             if (ch == '-') ch = '_';
                           return s;
                         });

// magdir-normalized: α only carries a direction, so the gradient of α has no radial part
// (αᵀ dα = 0) and γ does not change when α is scaled.
TEST(Parameterization, NormalizedDirectionIsScaleInvariant) {
  ParamLayout layout;
  ScaleVector<double> g(layout, "s", "gamma", 5, ScaleParam::MagDirNormalized,
                        {ScaleType::Input, "", false});
  Rng rng(3);
  Vec params = uniform(rng, 6, 0.5, 1.5), grads(6, 0);
  const Vec g1(g.forward(params.data()), g.forward(params.data()) + 5);
  Vec scaled = params;
  for (int c = 1; c < 6; c++) scaled[c] *= 3.5;
  const double* g2 = g.forward(scaled.data());
  for (int c = 0; c < 5; c++) EXPECT_NEAR(g2[c], g1[c], 1e-15);
  g.forward(params.data());
  const Vec w = normal(rng, 5);
  std::copy(w.begin(), w.end(), g.grad());
  g.backward(params.data(), grads.data());
  double radial = 0;
  for (int c = 1; c < 6; c++) radial += params[c] * grads[c];
  EXPECT_NEAR(radial, 0.0, 1e-14);
}

// ---------------------------------------------------------------------------------------------
// InputSideScale composed as the block uses it: n = N(x), a_f = γ_{g(f)} ⊙ n, z_f = W_f a_f,
// loss = Σ_f Σ z_f ⊙ dz_f. Shared γ vs HG, gamma vs magdir.

struct SiteCase {
  static constexpr int N = 4, C = 5, OC = 3, F = 3;
  ParamLayout layout;
  InputSideScale<double> site;
  Vec params, x, n, rstd, W, z, dz;
  SiteCase(ScaleParam kind, bool hg)
      : site(layout, "layers.0.attn_norm", C, kind,
             {{"q", "attn.wq", false}, {"k", "attn.wk", false}, {"v", "attn.wv", false}}, hg, false,
             N) {
    Rng rng(31);
    params = uniform(rng, layout.total(), 0.5, 1.5);
    x = normal(rng, N * C), W = normal(rng, F * OC * C), dz = normal(rng, F * N * OC);
    n.assign(N * C, 0), rstd.assign(N, 0), z.assign(dz.size(), 0);
  }
  double loss() {
    rmsnorm_forward(n.data(), rstd.data(), x.data(), N, C, C, 1e-5);
    site.forward(params.data(), n.data(), N);
    for (int f = 0; f < F; f++)
      linear_forward(z.data() + f * N * OC, site.input(f), W.data() + f * OC * C, N, C, OC, OC);
    double l = 0;
    for (size_t i = 0; i < z.size(); i++) l += z[i] * dz[i];
    return l;
  }
  void backward(Vec& dx, Vec& dp, Vec& dW) {
    loss();
    site.zero_grad(N);
    for (int f = 0; f < F; f++)
      linear_backward(site.dinput(f), dW.data() + f * OC * C, dz.data() + f * N * OC, site.input(f),
                      W.data() + f * OC * C, N, C, OC, OC);
    Vec dn(N * C, 0);
    site.backward(params.data(), dp.data(), dn.data(), N);
    rmsnorm_backward(dx.data(), dn.data(), n.data(), rstd.data(), N, C, C);
  }
};

// The parameterization is a type: a value outside the enum (a corrupt cast, a kind added to the
// enum but not to the ops) is an error in both ops, never treated as another kind.
TEST(Parameterization, UnknownKindIsAnError) {
  const ScaleParam bogus = static_cast<ScaleParam>(7);
  std::vector<float> gamma(4), p(4, 1.f), dp(4), beta(1, 1.f), db(1);
  EXPECT_THROW(scale_vector_forward(gamma.data(), p.data(), beta.data(), bogus, 4), Error);
  EXPECT_THROW(
      scale_vector_backward(dp.data(), db.data(), gamma.data(), p.data(), beta.data(), bogus, 4),
      Error);
  for (ScaleParam k : kScaleParams)
    EXPECT_NO_THROW(scale_vector_forward(gamma.data(), p.data(), beta.data(), k, 4))
        << scale_param_name(k);
}

TEST(InputSide, SharedAndBranchSpecificFiniteDifferences) {
  for (bool hg : {false, true})
    for (ScaleParam kind : {ScaleParam::Gamma, ScaleParam::MagDir, ScaleParam::MagDirNormalized}) {
      const std::string name =
          fmt::format("input side {} {}", hg ? "HG" : "shared", scale_param_name(kind));
      SiteCase c(kind, hg);
      Vec dx(c.x.size(), 0), dp(c.params.size(), 0), dW(c.W.size(), 0);
      c.backward(dx, dp, dW);
      auto loss = [&] { return c.loss(); };
      expect_fd(name + " dx", c.x, dx, loss);
      expect_fd(name + " dscales", c.params, dp, loss);
      expect_fd(name + " dW", c.W, dW, loss);
    }
}

TEST(InputSide, BranchSpecificNamesAndFoldTargets) {
  ParamLayout layout;
  InputSideScale<double> hg(layout, "layers.2.attn_norm", 6, ScaleParam::Gamma,
                            {{"q", "layers.2.attn.wq", false},
                             {"k", "layers.2.attn.wk", false},
                             {"v", "layers.2.attn.wv", false}},
                            true, false, 1);
  ASSERT_EQ(layout.params().size(), 3u);
  const char* expect[3][2] = {{"layers.2.attn_norm.q.gamma", "columns of layers.2.attn.wq"},
                              {"layers.2.attn_norm.k.gamma", "columns of layers.2.attn.wk"},
                              {"layers.2.attn_norm.v.gamma", "columns of layers.2.attn.wv"}};
  for (int f = 0; f < 3; f++) {
    EXPECT_EQ(layout.params()[f].name, expect[f][0]);
    EXPECT_EQ(layout.params()[f].fold, expect[f][1]);
    EXPECT_EQ(layout.params()[f].scale_type, ScaleType::Input);
  }
  hg.set_targets({{100, 6, 6, true}, {200, 6, 6, true}, {300, 6, 6, true}});
  std::vector<ScaleSite<double>> sites;
  hg.sites(sites);
  ASSERT_EQ(sites.size(), 3u);
  for (int f = 0; f < 3; f++) {
    ASSERT_EQ(sites[f].targets.size(), 1u);  // each γ_f folds into its own map only
    EXPECT_EQ(sites[f].targets[0].offset, size_t(100 * (f + 1)));
  }
}

// skip_cancelled: a group whose every branch is normalized after its map gets plain γ instead of
// a magnitude that the normalization would cancel; other groups keep magdir.
TEST(InputSide, SkipsCancelledMagnitudes) {
  ParamLayout layout;
  InputSideScale<double> s(
      layout, "l.attn_norm", 4, ScaleParam::MagDir,
      {{"q", "l.attn.wq", true}, {"k", "l.attn.wk", true}, {"v", "l.attn.wv", false}}, true, true,
      1);
  std::vector<std::string> names;
  for (const auto& p : layout.params()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"l.attn_norm.q.gamma", "l.attn_norm.k.gamma",
                                             "l.attn_norm.v.beta", "l.attn_norm.v.alpha"}));
}

// ---------------------------------------------------------------------------------------------
// OutputSide: y = s ⊙ N_h(u ⊙ z) with either stage optional; loss = Σ y ⊙ dy; FD on z and on every
// scale parameter; the backward accumulates into dz.

struct OutCase {
  static constexpr int N = 3, D = 8;
  ParamLayout layout;
  OutputSide<double> out;
  Vec params, z, y, dy;
  OutCase(const typename OutputSide<double>::Spec& s)
      : out(layout, "layers.0.attn.q", D, s, {0, D, 5, false}, "layers.0.attn.wq", N) {
    Rng rng(41);
    params = uniform(rng, layout.total(), 0.5, 1.5);
    z = normal(rng, N * D), dy = normal(rng, N * D), y.assign(N * D, 0);
  }
  double loss() {
    out.forward(params.data(), z.data(), y.data(), N);
    double l = 0;
    for (size_t i = 0; i < y.size(); i++) l += y[i] * dy[i];
    return l;
  }
};

struct OutSpecCase {
  const char* name;
  bool dp;
  const char* norm;
  const char* symbol;
  int heads;
  ScaleParam param;
};

class OutputSideFd : public ::testing::TestWithParam<OutSpecCase> {};

TEST_P(OutputSideFd, FiniteDifferencesAndAccumulation) {
  const OutSpecCase& k = GetParam();
  typename OutputSide<double>::Spec s;
  s.param = k.param, s.dp = k.dp, s.norm = k.norm, s.norm_symbol = k.symbol, s.heads = k.heads;
  OutCase c(s);
  ASSERT_FALSE(c.out.identity());
  c.loss();
  Vec dz(c.z.size(), 0), dp(c.params.size(), 0);
  c.out.backward(c.params.data(), dp.data(), c.dy.data(), dz.data(), OutCase::N);
  auto loss = [&] { return c.loss(); };
  expect_fd(std::string(k.name) + " dz", c.z, dz, loss);
  if (!dp.empty()) expect_fd(std::string(k.name) + " dscales", c.params, dp, loss);
  Vec dz2(dz.size(), 0), dp2(dp.size(), 0);
  for (int r = 0; r < 2; r++) {
    c.loss();
    c.out.backward(c.params.data(), dp2.data(), c.dy.data(), dz2.data(), OutCase::N);
  }
  for (size_t i = 0; i < dz.size(); i++)
    EXPECT_NEAR(dz2[i], 2 * dz[i], 1e-13 * (1 + std::abs(dz[i])));
}

INSTANTIATE_TEST_SUITE_P(
    Placements, OutputSideFd,
    ::testing::Values(
        OutSpecCase{"DP", true, "", "", 1, ScaleParam::Gamma},
        OutSpecCase{"DP_magdir", true, "", "", 1, ScaleParam::MagDir},
        OutSpecCase{"DNP_2heads", false, "layers.0.attn.q_dnp", "u", 2, ScaleParam::Gamma},
        OutSpecCase{"DNP_magdir_norm", false, "layers.0.attn.q_dnp", "u", 2,
                    ScaleParam::MagDirNormalized},
        OutSpecCase{"QKNorm", false, "layers.0.attn.q_norm", "gamma", 2, ScaleParam::Gamma},
        OutSpecCase{"DP_then_QKNorm", true, "layers.0.attn.q_norm", "gamma", 4, ScaleParam::Gamma},
        OutSpecCase{"PostNorm_1head", false, "layers.0.post_attn_norm", "gamma", 1,
                    ScaleParam::Gamma},
        OutSpecCase{"NormWithoutScale", false, "layers.0.attn.q_norm", "gamma", 2,
                    ScaleParam::None}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// Types follow the structure: the DP u folds into the rows of W (Input); a scale after the
// normalization cannot (Output); a DP u followed by a normalization has its magnitude cancelled.
TEST(OutputSide, TypesAndNotes) {
  typename OutputSide<double>::Spec s;
  s.param = ScaleParam::MagDir, s.dp = true, s.norm = "layers.0.attn.q_norm",
  s.norm_symbol = "gamma", s.heads = 2;
  ParamLayout layout;
  OutputSide<double> o(layout, "layers.0.attn.q", 8, s, {0, 8, 5, false}, "layers.0.attn.wq", 1);
  for (const auto& p : layout.params()) {
    const bool dp = p.name.find("_dp.") != std::string::npos;
    EXPECT_EQ(p.scale_type, dp ? ScaleType::Input : ScaleType::Output) << p.name;
    if (dp) {
      EXPECT_EQ(p.fold, "rows of layers.0.attn.wq") << p.name;
    }
    const bool cancelled_beta = p.name == "layers.0.attn.q_dp.beta";
    EXPECT_EQ(!p.note.empty(), cancelled_beta) << p.name;
  }
  std::vector<ScaleSite<double>> sites;
  o.sites(sites);
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[0].type, ScaleType::Input);
  EXPECT_EQ(sites[1].type, ScaleType::Output);
  EXPECT_FALSE(sites[0].targets[0].columns);  // rows of W
}

}  // namespace
}  // namespace scalevec
