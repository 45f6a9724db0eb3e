// The exact checks of docs/SCALE_VECTORS.md §6 on the real model (ref/check/theory.h), the
// Input/Output classification, structurally zero gradients, invalid combinations, and the
// finite-difference check of the whole model for every scale preset and architecture switch.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ref/check/model_gradcheck.h"
#include "ref/check/theory.h"
#include "ref/common.h"
#include "ref/rng.h"
#include "single_threaded.h"

namespace scalevec {
namespace {

ScaleConfig with(const std::string& preset, bool qk, bool post) {
  ScaleConfig s = scale_preset(preset);
  s.qk_norm = qk, s.post_norm = post;
  return s;
}

// Every valid (preset, qk_norm, post_norm) combination: DNP on q,k excludes QK-Norm.
std::vector<std::tuple<std::string, bool, bool>> all_combinations() {
  std::vector<std::tuple<std::string, bool, bool>> out;
  for (const auto& p : scale_strategy_names())
    for (bool qk : {false, true})
      for (bool post : {false, true}) {
        const ScaleConfig s = scale_preset(p);
        if (qk && (s.has(s.dnp, Branch::Q) || s.has(s.dnp, Branch::K))) continue;
        out.push_back({p, qk, post});
      }
  return out;
}

std::string label(const std::tuple<std::string, bool, bool>& c) {
  return fmt::format("{}{}{}", std::get<0>(c), std::get<1>(c) ? "+qk_norm" : "",
                     std::get<2>(c) ? "+post_norm" : "");
}

// ---------------------------------------------------------------------------------------------
// 1. Folding: Input-type scales fold exactly, Output-type ones cannot.

TEST(Folding, InputTypeFoldsOutputTypeDoesNot) {
  for (const auto& combo : all_combinations()) {
    const auto& [preset, qk, post] = combo;
    const auto results = fold_check(with(preset, qk, post), 5);
    int inputs = 0, outputs = 0;
    for (const auto& r : results) {
      if (r.type == ScaleType::Input) {
        inputs++;
        EXPECT_LE(r.change, 1e-13)
            << label(combo) << ": Input-type " << r.site << " does not fold into " << r.targets;
      } else {
        outputs++;
        EXPECT_GE(r.change, 1e-8) << label(combo) << ": Output-type " << r.site << " folds into "
                                  << r.targets << " (it should not)";
      }
    }
    // The number of Output-type sites follows from the structure: 2 per layer for QK-Norm (q, k),
    // 2 per layer for DNP on q, k, 2 per layer for post-norms; 2 layers.
    const ScaleConfig s = with(preset, qk, post);
    const int per_layer = (qk ? 2 : 0) + (int)s.dnp.size() + (post ? 2 : 0);
    EXPECT_EQ(outputs, s.param == ScaleParam::None ? 0 : 2 * per_layer) << label(combo);
    if (s.param != ScaleParam::None) {
      EXPECT_GT(inputs, 0) << label(combo);
    }
    fmt::print("  [fold] {:<36} {:>2} Input sites fold, {:>2} Output sites do not\n", label(combo),
               inputs, outputs);
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Theorem 2.2: the step of w̃ = γ w is the preconditioned one, to O(lr²).

TEST(Preconditioner, StepMatchesTheoremToSecondOrder) {
  for (bool hg : {false, true}) {
    ScaleConfig s;
    s.hg = hg;
    const auto r = precond_check(s, {1e-2, 1e-3, 1e-4}, 3);
    for (const auto& x : r)
      fmt::print("  [precond] {} lr {:.0e}: relative error {:.3e}, coupling share {:.2e}\n",
                 hg ? "HG    " : "shared", x.lr, x.rel_err, x.coupling);
    // The error is the O(lr²) remainder relative to an O(lr) step: it shrinks like lr.
    EXPECT_LT(r[1].rel_err, 1e-4);
    EXPECT_NEAR(r[0].rel_err / r[1].rel_err, 10.0, 2.0);
    EXPECT_NEAR(r[1].rel_err / r[2].rel_err, 10.0, 2.0);
    // A shared γ couples the branches (the other branches' terms contribute); HG decouples them.
    if (hg) {
      EXPECT_LT(r[1].coupling, 1e-12);  // zero up to round-off
    } else {
      EXPECT_GT(r[1].coupling, 1e-4);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 3. γ_j² - Σ_f ‖w_{f,j}‖² is conserved by gradient flow; weight decay breaks the conservation.

TEST(Conservation, ConservedWithoutWeightDecayBrokenWithIt) {
  for (bool hg : {false, true}) {
    ScaleConfig s;
    s.hg = hg;
    const auto big = conservation_check(s, 1e-1, 2.0, 0.0, 3);
    const auto small = conservation_check(s, 1e-2, 2.0, 0.0, 3);
    const auto decayed = conservation_check(s, 1e-2, 2.0, 0.1, 3);
    for (const auto& c : {big, small, decayed})
      fmt::print("  [conserve] {} lr {:.0e} ({} steps): drift {:.3e}, drift of γ² alone {:.3e}\n",
                 hg ? "HG    " : "shared", c.lr, c.steps, c.drift, c.drift_gamma2);
    EXPECT_GT(small.drift_gamma2, 1e-4) << "γ² must move for the check to mean something";
    EXPECT_LT(small.drift, 1e-2 * small.drift_gamma2);
    EXPECT_LT(small.drift, big.drift / 10) << "the drift must vanish as lr -> 0";
    EXPECT_GT(decayed.drift, 0.1 * decayed.drift_gamma2) << "weight decay should break it";
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Theorem 3.1: at u = 1 (where the two placements coincide) the dual model's squared gradient
// norm, the first-order loss decrease per unit lr, is the input-only one plus ‖∂L/∂u‖².

TEST(DualPlacement, AtLeastAsFastToFirstOrder) {
  const DualResult r = dual_check(1e-3, 0.0, 3);
  fmt::print(
      "  [dual] loss {:.15f} vs {:.15f}; |grad|^2 input-only {:.9e}, dual {:.9e}, |dL/du|^2 "
      "{:.3e}; one-step drop (lr 1e-3) {:.9e} vs {:.9e}\n",
      r.loss_input, r.loss_dual, r.grad_sq_input, r.grad_sq_dual, r.grad_sq_u, r.drop_input,
      r.drop_dual);
  EXPECT_NEAR(r.loss_dual, r.loss_input, 1e-13);
  EXPECT_GT(r.grad_sq_u, 0.0);
  EXPECT_NEAR(r.grad_sq_dual, r.grad_sq_input + r.grad_sq_u, 1e-12 * r.grad_sq_input);
  EXPECT_GT(r.drop_dual, r.drop_input);
}

// ---------------------------------------------------------------------------------------------
// 5. Theorem 3.2: the magnitude-direction preconditioner.

TEST(MagnitudeDirection, StepMatchesTheoremToSecondOrder) {
  const auto r = magdir_check({1e-2, 1e-3, 1e-4}, 3);
  for (const auto& x : r)
    fmt::print("  [magdir] lr {:.0e}: relative error {:.3e} (plain-γ prediction: {:.3e})\n", x.lr,
               x.rel_err, x.plain_rel_err);
  EXPECT_LT(r[1].rel_err, 1e-4);
  EXPECT_NEAR(r[0].rel_err / r[1].rel_err, 10.0, 2.0);
  EXPECT_NEAR(r[1].rel_err / r[2].rel_err, 10.0, 2.0);
  EXPECT_GT(r[1].plain_rel_err, 0.1) << "the step must differ from plain gradient descent on γ";
}

// ---------------------------------------------------------------------------------------------
// Structurally zero gradients: exactly the parameters the modules mark (β cancelled by a later
// normalization) have (numerically) zero gradient; with eps -> 0 it is zero to round-off.

TEST(ZeroGradients, MarkedParametersAndOnlyThose) {
  struct Case {
    const char* what;
    ScaleConfig sc;
  };
  ScaleConfig keep = scale_preset("unified");
  keep.skip_cancelled_magnitude = false;
  ScaleConfig qk = scale_preset("magdir");
  qk.hg = true, qk.qk_norm = true, qk.dp = {Branch::Q, Branch::K};
  // A post-norm cancels the magnitude of v and up (the sublayer output is linear in them).
  ScaleConfig post_keep = keep, post = scale_preset("unified");
  post_keep.post_norm = true, post.post_norm = true;
  ScaleConfig post_dnp_v = scale_preset("magdir");
  post_dnp_v.hg = true, post_dnp_v.dnp = {Branch::V, Branch::Up}, post_dnp_v.post_norm = true;
  for (const Case& c :
       {Case{"unified keeping cancelled magnitudes", keep},
        Case{"hg + dp q,k + qk-norm + magdir", qk},
        Case{"unified + post-norm keeping cancelled magnitudes", post_keep},
        Case{"hg + dnp v,up + post-norm + magdir", post_dnp_v},
        Case{"unified", scale_preset("unified")}, Case{"unified + post-norm", post}}) {
    ModelConfig cfg = theory_config(c.sc);
    cfg.norm_eps = 1e-30;  // the cancellation is exact up to eps (eps vs mean(x²) ~ 1e-6 here)
    Transformer<double> m(cfg, 2);
    random_model_gradient(m, 3);
    double typical = 0;
    for (const auto& p : m.layout().params())
      if (p.role == Role::Scale && p.note.empty())
        for (size_t i = 0; i < p.numel; i++)
          typical = std::max(typical, std::abs(m.grads[p.offset + i]));
    int marked = 0;
    for (const auto& p : m.layout().params()) {
      if (p.role != Role::Scale) continue;
      double mx = 0;
      for (size_t i = 0; i < p.numel; i++) mx = std::max(mx, std::abs(m.grads[p.offset + i]));
      if (!p.note.empty()) {
        marked++;
        EXPECT_LE(mx, 1e-10 * typical) << c.what << ": " << p.name << " is marked zero-gradient";
      } else {
        EXPECT_GE(mx, 1e-6 * typical) << c.what << ": " << p.name << " has a vanishing gradient "
                                      << "but is not marked";
      }
    }
    fmt::print("  [zero-grad] {}: {} marked parameters\n", c.what, marked);
    if (std::string(c.what).starts_with("unified") && c.sc.skip_cancelled_magnitude) {
      EXPECT_EQ(marked, 0) << c.what << ": unified avoids cancelled magnitudes";
    } else {
      EXPECT_GT(marked, 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Invalid combinations are refused with a message that says why.

TEST(ScaleConfig, InvalidCombinationsAreRefused) {
  auto expect_refused = [](ScaleConfig s, const char* what) {
    ModelConfig c = theory_config(ScaleConfig{});
    c.sc = s;
    try {
      c.validate();
      ADD_FAILURE() << "accepted: " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  ScaleConfig a = scale_preset("dnp");
  a.qk_norm = true;
  expect_refused(a, "already is a QK-Norm");
  ScaleConfig b = scale_preset("dp");
  b.dnp = {Branch::V};
  expect_refused(b, "both DP and DNP");
  ScaleConfig c = scale_preset("none");
  c.hg = true;
  expect_refused(c, "no scale vectors to place");
  EXPECT_THROW(parse_branches("q,x"), Error);
  EXPECT_THROW(parse_branches("q,q"), Error);
  EXPECT_THROW(scale_preset("nonsense"), Error);
  EXPECT_EQ(branches_to_string(parse_branches("up,q,k")), "q,k,up");
}

// The configuration round-trips through JSON (it is what a checkpoint stores).
TEST(ScaleConfig, JsonRoundTrip) {
  for (const auto& combo : all_combinations()) {
    ModelConfig c = theory_config(with(std::get<0>(combo), std::get<1>(combo), std::get<2>(combo)));
    c.scale = std::get<0>(combo);
    EXPECT_EQ(ModelConfig::from_json(c.to_json()), c) << label(combo);
  }
}

// ---------------------------------------------------------------------------------------------
// The whole model against finite differences, for every preset and architecture switch.

class EveryConfiguration : public ::testing::TestWithParam<std::tuple<std::string, bool, bool>> {};

TEST_P(EveryConfiguration, GradcheckPasses) {
  const auto& [preset, qk, post] = GetParam();
  ModelConfig c;
  c.n_layer = 2, c.d_model = 32, c.n_head = 2, c.d_ff = 48, c.context = 16;
  c.set_scale(preset);
  c.sc.qk_norm = qk, c.sc.post_norm = post;
  Transformer<double> model(c, 2);
  ModelCheckOptions o;
  o.samples = 12;
  ErrorStats all(o.rtol, o.atol);
  for (const auto& t : gradcheck_model(model, o)) {
    EXPECT_TRUE(t.stats.ok()) << t.name << ": max rel err " << t.stats.max_rel;
    all.merge(t.stats);
  }
  fmt::print("  [gradcheck] {:<36} {:>4} entries, max rel err {:.2e}\n", label(GetParam()),
             all.count, all.max_rel);
  EXPECT_LE(all.max_rel, 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Presets, EveryConfiguration, ::testing::ValuesIn(all_combinations()),
                         [](const auto& param_info) {
                           std::string s = label(param_info.param);
                           for (char& ch : s)
                             if (ch == '-' || ch == '+') ch = '_';
                           return s;
                         });

// Custom combinations beyond the presets.
TEST(EveryConfiguration, CustomCombinations) {
  struct Custom {
    const char* what;
    ScaleConfig sc;
  };
  ScaleConfig a = scale_preset("hg");
  a.dp = {Branch::Q, Branch::Gate}, a.dnp = {Branch::V, Branch::Up};
  ScaleConfig b = scale_preset("magdir-normalized");
  b.hg = true, b.dnp = {Branch::Q, Branch::K}, b.dp = {Branch::V}, b.post_norm = true;
  ScaleConfig c = scale_preset("dp");
  c.qk_norm = true, c.param = ScaleParam::MagDir;
  for (const Custom& x : {Custom{"hg, dp q,gate, dnp v,up", a},
                          Custom{"magdir-normalized, hg, dnp q,k, dp v, post-norm", b},
                          Custom{"dp + qk-norm + magdir", c}}) {
    ModelConfig m;
    m.n_layer = 2, m.d_model = 32, m.n_head = 2, m.d_ff = 48, m.context = 16, m.scale = "custom";
    m.sc = x.sc;
    Transformer<double> model(m, 2);
    ModelCheckOptions o;
    o.samples = 12;
    for (const auto& t : gradcheck_model(model, o))
      EXPECT_TRUE(t.stats.ok()) << x.what << ": " << t.name << ": max rel err " << t.stats.max_rel;
  }
}

}  // namespace
}  // namespace scalevec
