// Tests of the whole model (ref/model), composed forward -> backward (docs/VERIFICATION.md §1, §4,
// §5):
//   * finite differences of every parameter tensor of a tiny double model, for the scale
//     strategies "baseline" and "none", and the full Jacobian of a micro model;
//   * the FD check's resolution (a gradient off by 1e-5 relative is flagged);
//   * parameter layout and tags; "none" has no γ and equals "baseline" with γ = 1;
//   * determinism, loss at init, causality, float vs double;
//   * config validation: values finite in double but not usable in float32 are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ref/check/gradcheck.h"
#include "ref/check/model_gradcheck.h"
#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"
#include "ref/train/config.h"
#include "single_threaded.h"

namespace scalevec {
namespace {

// 2 layers, d_model 32, 2 heads, d_ff 48, context 16.
ModelConfig tiny(const std::string& scale) {
  ModelConfig c;
  c.n_layer = 2, c.d_model = 32, c.n_head = 2, c.d_ff = 48, c.context = 16;
  c.set_scale(scale);
  return c;
}
// 1 layer, d_model 8, 2 heads (hs 4), d_ff 8, context 4: small enough for the full Jacobian.
ModelConfig micro(const std::string& scale) {
  ModelConfig c;
  c.n_layer = 1, c.d_model = 8, c.n_head = 2, c.d_ff = 8, c.context = 4;
  c.set_scale(scale);
  return c;
}

std::vector<int32_t> random_tokens(Rng& rng, size_t n) {
  std::vector<int32_t> t(n);
  for (auto& x : t) x = int32_t(rng.below(256));
  return t;
}

void print_checks(const std::vector<TensorCheck>& checks) {
  for (const auto& c : checks)
    fmt::print("  [fd] {:<26} {:>5}/{:<5} entries  max rel err {:.2e}  max abs err {:.2e}{}\n",
               c.name, c.stats.count, c.numel, c.stats.max_rel, c.stats.max_abs,
               c.stats.ok() ? "" : "  << FAILS");
}

// ---------------------------------------------------------------------------------------------
// Finite differences of the whole model.

class ModelGradcheck : public ::testing::TestWithParam<std::string> {};

// Every tensor, 24 sampled entries each (half among nonzero gradients), random γ ∈ [0.5, 1.5],
// loss = mean cross-entropy of a random batch (2 x 16). Step and tolerances are set here, not
// taken from the defaults: h = 3e-4 keeps the stencil's truncation (≈ (h/|x|)⁴ relative, |x| ≈ 0.11
// for an embedding row at d_model 32) near 1e-10; the loss is ≈ 5.5, so round-off is
// ≈ 1.5·ε·5.5/h ≈ 6e-12, below the floor atol = 1e-10; rtol = 1e-6.
TEST_P(ModelGradcheck, EveryTensorTinyModel) {
  Transformer<double> model(tiny(GetParam()), 2);
  ModelCheckOptions o;
  o.batch = 2, o.seq = 16, o.samples = 24, o.seed = 1;
  o.h = 3e-4, o.rtol = 1e-6, o.atol = 1e-10;
  const auto checks = gradcheck_model(model, o);
  print_checks(checks);
  ASSERT_EQ(checks.size(), model.layout().params().size());
  for (const auto& c : checks) {
    EXPECT_TRUE(c.stats.ok()) << c.name << ": max rel err " << c.stats.max_rel;
    EXPECT_LE(c.stats.max_rel, 1e-6) << c.name;
    EXPECT_EQ(c.stats.count, std::min<size_t>(c.numel, o.samples)) << c.name;
  }
}

// The full Jacobian: every entry of every parameter (embedding rows of tokens that do not occur
// have gradient exactly 0 on both sides). Step: the embedding rows (std 0.02) have norm ≈ 0.06 at
// d_model 8, and N(x) varies on that scale, so the stencil's truncation error is
// ≈ (h/0.06)⁴: 1e-7 at the default h = 1e-3 (measured: 8e-6 relative on tok_emb), 1e-11 at
// h = 1e-4. The smaller step raises the round-off to ≈ 1.5·ε·5.5/h ≈ 2e-11, hence atol = 1e-10.
TEST_P(ModelGradcheck, FullJacobianMicroModel) {
  Transformer<double> model(micro(GetParam()), 2);
  ModelCheckOptions o;
  o.batch = 2, o.seq = 4, o.samples = std::numeric_limits<size_t>::max(), o.seed = 1;
  o.h = 1e-4, o.rtol = 1e-6, o.atol = 1e-10;
  const auto checks = gradcheck_model(model, o);
  print_checks(checks);
  size_t total = 0;
  for (const auto& c : checks) {
    EXPECT_TRUE(c.stats.ok()) << c.name << ": max rel err " << c.stats.max_rel;
    EXPECT_EQ(c.stats.count, c.numel) << c.name;
    total += c.stats.count;
  }
  EXPECT_EQ(total, model.layout().total());
}

INSTANTIATE_TEST_SUITE_P(Scale, ModelGradcheck, ::testing::Values("baseline", "none"));

// Negative control: the model-level check resolves a relative error of 1e-5 in an analytic
// gradient (here the final γ and the query weights, deliberately scaled by 1 + 1e-5).
TEST(ModelGradcheckControl, FlagsAGradientOffByOnePartIn1e5) {
  Transformer<double> model(micro("baseline"), 2);
  model.init(7);
  Rng rng(3);
  for (size_t i = 0; i < model.layout().get("final_norm.gamma").numel; i++)
    model.params[model.layout().get("final_norm.gamma").offset + i] = 0.5 + rng.uniform();
  const auto tokens = random_tokens(rng, 8), targets = random_tokens(rng, 8);
  auto loss = [&] { return model.forward(tokens.data(), targets.data(), 2, 4); };
  loss();
  model.zero_grad();
  model.backward();
  for (const char* name : {"final_norm.gamma", "layers.0.attn.wq"}) {
    const ParamInfo& p = model.layout().get(name);
    std::vector<double> wrong(model.grads.begin() + p.offset,
                              model.grads.begin() + p.offset + p.numel);
    for (auto& g : wrong) g *= 1 + 1e-5;
    std::vector<size_t> idx;
    for (size_t i = 0; i < p.numel; i++)
      if (std::abs(wrong[i]) > 1e-5) idx.push_back(i);  // above the floor atol/rtol
    ASSERT_FALSE(idx.empty());
    const ErrorStats s =
        check_entries(model.params.data() + p.offset, wrong.data(), idx, loss, 1e-3, 1e-6, 1e-11);
    fmt::print("  [fd] {} scaled by 1+1e-5 (control): {} of {} flagged, max rel err {:.2e}\n", name,
               s.failures, s.count, s.max_rel);
    EXPECT_EQ(s.failures, s.count) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// Parameter layout.

// Layout of the baseline: embedding, per layer (attn_norm γ, wq, wk, wv, wo, mlp_norm γ, w_gate,
// w_up, w_down), final_norm γ, head; contiguous; every scale tagged Scale/Input with a fold
// description naming the maps it folds into; counts per role add up to total().
TEST(ModelLayout, BaselineNamesTagsAndCounts) {
  const ModelConfig cfg = tiny("baseline");
  Transformer<float> model(cfg, 0);
  const ParamLayout& L = model.layout();
  std::vector<std::string> want = {"tok_emb"};
  for (int l = 0; l < cfg.n_layer; l++)
    for (const char* n : {"attn_norm.gamma", "attn.wq", "attn.wk", "attn.wv", "attn.wo",
                          "mlp_norm.gamma", "mlp.w_gate", "mlp.w_up", "mlp.w_down"})
      want.push_back(fmt::format("layers.{}.{}", l, n));
  want.push_back("final_norm.gamma");
  want.push_back("head");
  ASSERT_EQ(L.params().size(), want.size());
  size_t offset = 0, scales = 0;
  for (size_t i = 0; i < want.size(); i++) {
    const ParamInfo& p = L.params()[i];
    EXPECT_EQ(p.name, want[i]);
    EXPECT_EQ(p.offset, offset) << p.name << " is not contiguous with the previous tensor";
    offset += p.numel;
    if (p.role == Role::Scale) {
      scales++;
      EXPECT_EQ(p.scale_type, ScaleType::Input) << p.name;
      EXPECT_EQ(p.shape, std::vector<int>{cfg.d_model}) << p.name;
      EXPECT_EQ(p.init_value, 1.0) << p.name;
      EXPECT_EQ(p.fold.rfind("columns of ", 0), 0u) << p.name << ": fold '" << p.fold << "'";
      EXPECT_NE(p.name.find("_norm.gamma"), std::string::npos) << p.name;
    }
  }
  EXPECT_EQ(scales, 2u * cfg.n_layer + 1);
  EXPECT_EQ(L.get("layers.1.attn_norm.gamma").fold,
            "columns of layers.1.attn.wq layers.1.attn.wk layers.1.attn.wv");
  EXPECT_EQ(L.get("layers.0.mlp_norm.gamma").fold,
            "columns of layers.0.mlp.w_gate layers.0.mlp.w_up");
  EXPECT_EQ(L.get("final_norm.gamma").fold, "columns of head");
  EXPECT_EQ(L.get("tok_emb").role, Role::Embedding);
  EXPECT_EQ(L.get("head").role, Role::Head);
  EXPECT_EQ(L.get("layers.0.mlp.w_gate").shape, (std::vector<int>{cfg.d_ff, cfg.d_model}));
  EXPECT_EQ(L.get("layers.0.mlp.w_down").shape, (std::vector<int>{cfg.d_model, cfg.d_ff}));
  EXPECT_EQ(offset, L.total());
  EXPECT_EQ(L.count_role(Role::Embedding) + L.count_role(Role::Matrix) + L.count_role(Role::Head) +
                L.count_role(Role::Scale),
            L.total());
  EXPECT_EQ(L.count_role(Role::Scale), (2u * cfg.n_layer + 1) * cfg.d_model);
  EXPECT_EQ(L.count_role(Role::Matrix),
            (size_t)cfg.n_layer * (4 * cfg.d_model * cfg.d_model + 3 * cfg.d_model * cfg.d_ff));
}

// "none" declares no scale at all: the same tensors as the baseline minus every γ.
TEST(ModelLayout, NoneHasNoScaleTensors) {
  Transformer<float> base(tiny("baseline"), 0), none(tiny("none"), 0);
  const ParamLayout& L = none.layout();
  EXPECT_EQ(L.count_role(Role::Scale), 0u);
  for (const auto& p : L.params()) {
    EXPECT_NE(p.role, Role::Scale) << p.name;
    EXPECT_EQ(p.name.find("gamma"), std::string::npos) << p.name;
    ASSERT_NE(base.layout().find(p.name), nullptr) << p.name;
    EXPECT_EQ(base.layout().find(p.name)->shape, p.shape) << p.name;
  }
  EXPECT_EQ(L.params().size(), base.layout().params().size() - (2 * 2 + 1));
  EXPECT_EQ(L.total(), base.layout().total() - base.layout().count_role(Role::Scale));
  EXPECT_EQ(L.count_role(Role::Embedding) + L.count_role(Role::Matrix) + L.count_role(Role::Head),
            L.total());
}

// "none" is exactly "baseline" with γ = 1 (γ·n = n in floating point): same weights by name give
// bit-identical losses and gradients of every shared tensor.
TEST(ModelLayout, NoneEqualsBaselineWithUnitGamma) {
  Transformer<float> base(tiny("baseline"), 2), none(tiny("none"), 2);
  base.init(5);
  for (const auto& p : none.layout().params()) {
    const ParamInfo& q = base.layout().get(p.name);
    std::copy_n(base.params.begin() + q.offset, p.numel, none.params.begin() + p.offset);
  }
  Rng rng(6);
  const auto tokens = random_tokens(rng, 32), targets = random_tokens(rng, 32);
  const float lb = base.forward(tokens.data(), targets.data(), 2, 16);
  const float ln = none.forward(tokens.data(), targets.data(), 2, 16);
  EXPECT_EQ(lb, ln);
  base.zero_grad(), none.zero_grad();
  base.backward(), none.backward();
  for (const auto& p : none.layout().params()) {
    const ParamInfo& q = base.layout().get(p.name);
    EXPECT_EQ(0, std::memcmp(base.grads.data() + q.offset, none.grads.data() + p.offset,
                             p.numel * sizeof(float)))
        << p.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Whole-model properties.

// Same seed, two fresh models: bit-identical parameters, loss and gradients (float, as trained,
// with 2 threads as training uses them); a third model computed with 1 thread agrees too.
TEST(Model, DeterministicForTheSameSeed) {
  Rng rng(8);
  const auto tokens = random_tokens(rng, 32), targets = random_tokens(rng, 32);
  std::vector<float> loss(3);
  std::vector<std::vector<float>> params(3), grads(3);
  const int saved = num_threads();
  for (int r = 0; r < 3; r++) {
    set_num_threads(r < 2 ? 2 : 1);
    Transformer<float> m(tiny("baseline"), 2);
    m.init(derive_seed(1337, 0));
    loss[r] = m.forward(tokens.data(), targets.data(), 2, 16);
    m.zero_grad();
    m.backward();
    params[r] = m.params, grads[r] = m.grads;
  }
  set_num_threads(saved);
  for (int r = 1; r < 3; r++) {
    EXPECT_EQ(0, std::memcmp(&loss[0], &loss[r], sizeof(float))) << "run " << r;
    EXPECT_EQ(params[0], params[r]) << "run " << r;
    ASSERT_EQ(grads[0].size(), grads[r].size());
    EXPECT_EQ(0, std::memcmp(grads[0].data(), grads[r].data(), grads[0].size() * sizeof(float)))
        << "run " << r;
  }
  // The seed matters (the test above could fail).
  Transformer<float> other(tiny("baseline"), 2);
  other.init(derive_seed(1338, 0));
  EXPECT_NE(other.params, params[0]);
}

// At init the model knows nothing: loss ≈ ln 256. The head (std 0.02) reads a = N(x) with
// mean(a²) ≈ 1, so the logits are ≈ N(0, σ²) with σ² = 0.02²·d_model = 0.0128 and
// E[loss] ≈ ln 256 + σ²/2 = ln 256 + 0.0064. The per-row deviation has std ≈ σ = 0.11, so the
// mean over 4·16 = 64 rows deviates by ≈ 0.014: 0.05 is over 3 standard deviations, and still
// far below what a broken init (e.g. std 1 logits: +0.5) would give.
TEST(Model, LossAtInitIsLn256) {
  Transformer<double> m(tiny("baseline"), 4);
  m.init(derive_seed(1337, 0));
  Rng rng(9);
  const auto tokens = random_tokens(rng, 64), targets = random_tokens(rng, 64);
  const double loss = m.forward(tokens.data(), targets.data(), 4, 16);
  const double sigma2 = 0.02 * 0.02 * 32;
  fmt::print("  loss at init {:.5f}, ln 256 + sigma^2/2 = {:.5f}\n", loss,
             std::log(256.0) + sigma2 / 2);
  EXPECT_NEAR(loss, std::log(256.0) + sigma2 / 2, 0.05);
}

// A forward without targets (sampling) computes no loss, so there is nothing to differentiate:
// backward() must refuse instead of reusing the targets of an earlier batch.
TEST(Model, BackwardAfterForwardWithoutTargetsThrows) {
  Transformer<double> m(tiny("baseline"), 2);
  m.init(3);
  Rng rng(4);
  const auto tokens = random_tokens(rng, 32), targets = random_tokens(rng, 32);
  m.forward(tokens.data(), targets.data(), 2, 16);
  m.backward();  // fine: the last forward had targets
  m.forward(tokens.data(), nullptr, 2, 16);
  EXPECT_THROW(m.backward(), Error);
}

// Causality of the whole model: logits at position t do not depend on tokens after t (bit-
// identical), and do depend on tokens at or before t.
TEST(Model, LogitsAtPositionTDoNotDependOnLaterTokens) {
  Transformer<double> m(tiny("baseline"), 2);
  m.init(11);
  Rng rng(10);
  const int B = 2, T = 16, V = 256;
  const auto tokens = random_tokens(rng, B * T);
  m.forward(tokens.data(), nullptr, B, T);
  const std::vector<double> ref(m.logits(), m.logits() + (size_t)B * T * V);
  for (int t0 : {0, 6, 14}) {
    auto changed = tokens;
    for (int b = 0; b < B; b++)
      for (int t = t0 + 1; t < T; t++) changed[b * T + t] = (changed[b * T + t] + 1 + t) % V;
    m.forward(changed.data(), nullptr, B, T);
    bool later_differ = false;
    for (int b = 0; b < B; b++)
      for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) {
          const size_t i = ((size_t)b * T + t) * V + v;
          if (t <= t0) {
            ASSERT_EQ(m.logits()[i], ref[i]) << "t0=" << t0 << " position " << t;
          } else {
            later_differ |= m.logits()[i] != ref[i];
          }
        }
    EXPECT_TRUE(later_differ) << "t0=" << t0;
  }
  // And changing the token at t0 changes the logits at t0 and after.
  auto changed = tokens;
  changed[5] = (changed[5] + 1) % V;
  m.forward(changed.data(), nullptr, B, T);
  for (int t = 5; t < T; t++) EXPECT_NE(m.logits()[(size_t)t * V], ref[(size_t)t * V]) << t;
}

// The float model (training) and the double model (checks) compute the same function: same
// weights (rounded to float), same batch. Tolerances from the float unit round-off u = 6e-8:
// the loss and the gradients accumulate through ~10 layers of sums of ≤ 256 terms, so errors of
// ~1e-6 relative are expected; the gradient of each tensor is compared with its largest entry.
TEST(Model, FloatAgreesWithDouble) {
  for (const char* scale : {"baseline", "none"}) {
    Transformer<double> d(tiny(scale), 2);
    Transformer<float> f(tiny(scale), 2);
    d.init(12);
    Rng rng(13);
    for (const auto& p : d.layout().params())
      if (p.role == Role::Scale)
        for (size_t i = 0; i < p.numel; i++) d.params[p.offset + i] = 0.5 + rng.uniform();
    for (size_t i = 0; i < d.params.size(); i++)
      f.params[i] = float(d.params[i]), d.params[i] = double(f.params[i]);
    const auto tokens = random_tokens(rng, 32), targets = random_tokens(rng, 32);
    const double ld = d.forward(tokens.data(), targets.data(), 2, 16);
    const double lf = f.forward(tokens.data(), targets.data(), 2, 16);
    d.zero_grad(), f.zero_grad();
    d.backward(), f.backward();
    fmt::print("  {:<8} loss double {:.9f} float {:.9f} (rel diff {:.1e})\n", scale, ld, lf,
               std::abs(ld - lf) / ld);
    EXPECT_NEAR(lf, ld, 1e-5 * ld);
    double worst = 0;
    std::string worst_name;
    for (const auto& p : d.layout().params()) {
      double gmax = 0, err = 0;
      for (size_t i = p.offset; i < p.offset + p.numel; i++) {
        gmax = std::max(gmax, std::abs(d.grads[i]));
        err = std::max(err, std::abs(double(f.grads[i]) - d.grads[i]));
      }
      EXPECT_LE(err, 1e-4 * gmax) << scale << " " << p.name;
      if (err / gmax > worst) worst = err / gmax, worst_name = p.name;
    }
    fmt::print("  {:<8} grads: max |float - double| / max|grad| = {:.1e} ({})\n", scale, worst,
               worst_name);
  }
}

// ---------------------------------------------------------------------------------------------
// Config validation: a value finite in double but not usable in float32 (0, subnormal or inf
// there) is refused with one line naming the field and the value, by validate() and so by
// from_json (checkpoints) too; 0 stays valid where it means "off".

// The Error message of f(), or "" if it throws none.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigValidation, ModelRefusesFloatsFloat32CannotUse) {
  auto error = [](auto set) {
    ModelConfig c = tiny("baseline");
    set(c);
    const std::string v = error_of([&] { c.validate(); });
    if (v.find("finite") == std::string::npos) {  // JSON has no inf or nan: null is refused
      EXPECT_EQ(v, error_of([&] { ModelConfig::from_json(c.to_json()); })) << "from_json";
    }
    return v;
  };
  EXPECT_EQ(error([](ModelConfig&) {}), "");
  EXPECT_EQ(error([](ModelConfig& c) { c.norm_eps = 1.2e-38, c.rope_base = 3e38; }), "");
  EXPECT_EQ(error([](ModelConfig& c) { c.norm_eps = 1e-300; }),
            "norm_eps = 1e-300 is not usable in float32: it is 0 there (the smallest normal "
            "float32 is 1.1754944e-38)");
  EXPECT_EQ(error([](ModelConfig& c) { c.norm_eps = 1e-40; }),
            "norm_eps = 1e-40 is not usable in float32: it is subnormal there (the smallest "
            "normal float32 is 1.1754944e-38)");
  EXPECT_EQ(error([](ModelConfig& c) { c.rope_base = 1e39; }),
            "rope_base = 1e+39 is not usable in float32: it is inf there (the largest is "
            "3.4028235e+38)");
  EXPECT_EQ(error([](ModelConfig& c) { c.rope_base = 1 + 1e-9; }),
            "rope_base = 1.000000001 is not usable in float32: it is 1 there");
  EXPECT_EQ(error([](ModelConfig& c) { c.norm_eps = std::numeric_limits<double>::quiet_NaN(); }),
            "norm_eps = nan must be a finite number");
  EXPECT_EQ(error([](ModelConfig& c) { c.rope_base = std::numeric_limits<double>::infinity(); }),
            "rope_base = inf must be a finite number");
}

TEST(ConfigValidation, TrainingRefusesFloatsFloat32CannotUse) {
  auto error = [](auto set) {
    TrainConfig c;
    set(c);
    const std::string v = error_of([&] { c.validate(); });
    if (v.find("finite") == std::string::npos) {  // JSON has no inf or nan: null is refused
      EXPECT_EQ(v, error_of([&] { TrainConfig::from_json(c.to_json()); })) << "from_json";
    }
    return v;
  };
  EXPECT_EQ(error([](TrainConfig&) {}), "");
  EXPECT_EQ(error([](TrainConfig& c) {
              c.weight_decay = 0, c.grad_clip = 0, c.beta1 = 0, c.sgd_momentum = 0,
              c.min_lr_frac = 0, c.decay_frac = 0, c.adam_eps = 1.2e-38;
            }),
            "")
      << "0 means off, and the smallest normal float32 is usable";
  const std::string zero =
      " is not usable in float32: it is 0 there (the smallest normal float32 is 1.1754944e-38)";
  const std::string subnormal =
      " is not usable in float32: it is subnormal there (the smallest normal float32 is "
      "1.1754944e-38)";
  EXPECT_EQ(error([](TrainConfig& c) { c.lr = 1e-300; }), "lr = 1e-300" + zero);
  EXPECT_EQ(error([](TrainConfig& c) { c.adam_eps = 1e-50; }), "adam_eps = 1e-50" + zero);
  EXPECT_EQ(error([](TrainConfig& c) { c.weight_decay = 1e-45; }),
            "weight_decay = 1e-45" + subnormal);
  EXPECT_EQ(error([](TrainConfig& c) { c.min_lr_frac = 1e-39; }),
            "min_lr_frac = 1e-39" + subnormal);
  EXPECT_EQ(error([](TrainConfig& c) { c.muon_lr = 1e-300; }), "muon_lr = 1e-300" + zero);
  EXPECT_EQ(error([](TrainConfig& c) { c.grad_clip = 1e39; }),
            "grad_clip = 1e+39 is not usable in float32: it is inf there (the largest is "
            "3.4028235e+38)");
  for (auto [name, field] : {std::pair{"beta1", &TrainConfig::beta1},
                             {"beta2", &TrainConfig::beta2},
                             {"muon_momentum", &TrainConfig::muon_momentum},
                             {"sgd_momentum", &TrainConfig::sgd_momentum}}) {
    EXPECT_EQ(error([f = field](TrainConfig& c) { c.*f = 0.99999999; }),
              fmt::format("{} = 0.99999999 is not usable in float32: it is 1 there", name));
    EXPECT_EQ(error([f = field](TrainConfig& c) { c.*f = 1e-300; }),
              fmt::format("{} = 1e-300{}", name, zero));
  }
  EXPECT_EQ(error([](TrainConfig& c) { c.lr = std::numeric_limits<double>::infinity(); }),
            "lr = inf must be a finite number");
}

}  // namespace
}  // namespace scalevec
