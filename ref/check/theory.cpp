#include "theory.h"

#include <cmath>
#include <map>

#include "../common.h"
#include "../rng.h"
#include "../scale/fold.h"

namespace scalevec {

namespace {

constexpr int kB = 2, kT = 8;

// A fixed random batch for a model with vocabulary V.
struct Batch2 {
  std::vector<int32_t> tokens, targets;
  explicit Batch2(uint64_t seed) : tokens(kB * kT), targets(kB * kT) {
    Rng r(seed);
    for (int i = 0; i < kB * kT; i++)
      tokens[i] = int32_t(r.below(256)), targets[i] = int32_t(r.below(256));
  }
};

double loss_and_grad(Transformer<double>& m, const Batch2& b) {
  const double loss = m.forward(b.tokens.data(), b.targets.data(), kB, kT);
  m.zero_grad();
  m.backward();
  return loss;
}

double loss_only(Transformer<double>& m, const Batch2& b) {
  return m.forward(b.tokens.data(), b.targets.data(), kB, kT);
}

double* param(Transformer<double>& m, const std::string& name) {
  return m.params.data() + m.layout().get(name).offset;
}
double* grad(Transformer<double>& m, const std::string& name) {
  return m.grads.data() + m.layout().get(name).offset;
}

// A model of the theory configuration, initialised and with random scales.
struct TheoryModel {
  Transformer<double> m;
  TheoryModel(const ScaleConfig& sc, uint64_t seed) : m(theory_config(sc), kB) {
    m.init(seed);
    randomize_scales(m, seed + 1);
  }
};

double sq(double x) { return x * x; }

}  // namespace

ModelConfig theory_config(const ScaleConfig& sc) {
  ModelConfig c;
  c.n_layer = 2, c.d_model = 16, c.n_head = 2, c.d_ff = 32, c.context = kT;
  c.scale = "custom", c.sc = sc;
  c.validate();
  return c;
}

void randomize_scales(Transformer<double>& m, uint64_t seed) {
  Rng rng(seed);
  for (const auto& p : m.layout().params())
    if (p.role == Role::Scale)
      for (size_t i = 0; i < p.numel; i++) m.params[p.offset + i] = 0.5 + rng.uniform();
}

double random_model_gradient(Transformer<double>& m, uint64_t seed) {
  m.init(seed);
  randomize_scales(m, seed + 1);
  return loss_and_grad(m, Batch2(seed + 2));
}

// ---------------------------------------------------------------------------------------------
// 1. Folding.

std::vector<FoldResult> fold_check(const ScaleConfig& sc, uint64_t seed) {
  TheoryModel t(sc, seed);
  Transformer<double>& m = t.m;
  const Batch2 b(seed + 2);
  const size_t nlogits = (size_t)kB * kT * m.config().vocab_size;
  m.forward(b.tokens.data(), nullptr, kB, kT);
  const std::vector<double> ref(m.logits(), m.logits() + nlogits);
  double scale = 0;
  for (double v : ref) scale = std::max(scale, std::abs(v));
  std::map<size_t, std::string> name_at;  // offset -> parameter name
  for (const auto& p : m.layout().params()) name_at[p.offset] = p.name;

  std::vector<FoldResult> out;
  auto sites = m.scale_sites();
  for (auto& site : sites) {
    const std::vector<double> saved = m.params;
    // [snippet:fold_check]
    fold_scale(site, m.params.data());  // W ← W diag(γ) (or diag(γ) W), then γ ← 1
    m.forward(b.tokens.data(), nullptr, kB, kT);
    double change = 0;
    for (size_t i = 0; i < nlogits; i++)
      change = std::max(change, std::abs(m.logits()[i] - ref[i]));
    // [end]
    std::string targets;
    for (const auto& tg : site.targets) {
      if (!targets.empty()) targets += ", ";
      targets += tg.columns ? "columns of " : "rows of ";
      targets += name_at[tg.offset];
    }
    out.push_back({site.name, site.type, targets, change / scale});
    m.params = saved;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 2. The preconditioner of Theorem 2.2.

std::vector<PrecondResult> precond_check(const ScaleConfig& sc, const std::vector<double>& lrs,
                                         uint64_t seed) {
  TheoryModel t(sc, seed);
  const Batch2 b(seed + 2);
  return precond_check(t.m, b.tokens, b.targets, kB, kT, lrs);
}

std::vector<PrecondResult> precond_check(Transformer<double>& m, const std::vector<int32_t>& tokens,
                                         const std::vector<int32_t>& targets, int B, int T,
                                         const std::vector<double>& lrs) {
  const ScaleConfig& sc = m.config().sc;
  require(sc.param == ScaleParam::Gamma, "precond_check needs plain gamma scales");
  const int C = m.config().d_model;
  const char* branches[3] = {"q", "k", "v"};
  auto W = [&](int f) { return std::string("layers.0.attn.w") + branches[f]; };
  auto gamma = [&](int f) {
    return sc.hg ? std::string("layers.0.attn_norm.") + branches[f] + ".gamma"
                 : std::string("layers.0.attn_norm.gamma");
  };
  m.forward(tokens.data(), targets.data(), B, T);
  m.zero_grad();
  m.backward();
  const std::vector<double> theta = m.params, g = m.grads;
  auto at = [&](const std::vector<double>& v, const std::string& name) {
    return v.data() + m.layout().get(name).offset;
  };

  std::vector<PrecondResult> out;
  for (double lr : lrs) {
    for (size_t i = 0; i < theta.size(); i++) m.params[i] = theta[i] - lr * g[i];  // plain GD
    double err2 = 0, pred2 = 0, cross2 = 0;
    for (int f = 0; f < 3; f++) {
      const double *w0 = at(theta, W(f)), *w1 = at(m.params, W(f)), *gw = at(g, W(f));
      const double *c0 = at(theta, gamma(f)), *c1 = at(m.params, gamma(f)), *gc = at(g, gamma(f));
      for (int j = 0; j < C; j++) {
        // ∂L/∂γ_j = Σ_f w_{f,j}ᵀ g̃_{f,j} over the branches sharing γ (g̃ = ∇_{w̃} L = ∇_w L / γ).
        double own = 0;  // this branch's part w_{f,j}ᵀ g̃_{f,j}
        for (int r = 0; r < C; r++) own += w0[r * C + j] * gw[r * C + j] / c0[j];
        for (int r = 0; r < C; r++) {
          const size_t k = (size_t)r * C + j;
          // [snippet:precond]
          // w̃_j = γ_j w_j; predicted: Δw̃_j = -lr (γ_j² g̃_j + w_j (∂L/∂γ_j)),  γ_j g̃_j = ∇_{w_j} L
          const double actual = c1[j] * w1[k] - c0[j] * w0[k];
          const double predicted = -lr * (c0[j] * gw[k] + w0[k] * gc[j]);
          // [end]
          const double cross = -lr * w0[k] * (gc[j] - own);  // from the other branches' terms
          err2 += sq(actual - predicted), pred2 += sq(predicted), cross2 += sq(cross);
        }
      }
    }
    out.push_back({lr, std::sqrt(err2 / pred2), std::sqrt(cross2 / pred2)});
  }
  m.params = theta;
  return out;
}

// ---------------------------------------------------------------------------------------------
// 3. Conservation of γ_j² - Σ_f ‖w_{f,j}‖².

ConservationResult conservation_check(const ScaleConfig& sc, double lr, double time, double wd,
                                      uint64_t seed) {
  require(sc.param == ScaleParam::Gamma, "conservation_check needs plain gamma scales");
  TheoryModel t(sc, seed);
  Transformer<double>& m = t.m;
  const Batch2 b(seed + 2);
  const int C = m.config().d_model;
  const char* branches[3] = {"q", "k", "v"};
  // One quantity per (γ, column): Q = γ_j² - Σ_{f fed by γ} ‖w_{f,j}‖².
  auto quantities = [&](std::vector<double>& Q, std::vector<double>& G2) {
    Q.clear(), G2.clear();
    const int groups = sc.hg ? 3 : 1;
    for (int g = 0; g < groups; g++) {
      const std::string gname = sc.hg ? std::string("layers.0.attn_norm.") + branches[g] + ".gamma"
                                      : "layers.0.attn_norm.gamma";
      const double* gam = param(m, gname);
      for (int j = 0; j < C; j++) {
        double q = gam[j] * gam[j];
        for (int f = 0; f < 3; f++) {
          if (sc.hg && f != g) continue;
          const double* w = param(m, std::string("layers.0.attn.w") + branches[f]);
          for (int r = 0; r < C; r++) q -= w[r * C + j] * w[r * C + j];
        }
        Q.push_back(q), G2.push_back(gam[j] * gam[j]);
      }
    }
  };
  std::vector<double> Q0, G0, Q1, G1;
  quantities(Q0, G0);
  const int steps = (int)std::lround(time / lr);
  for (int s = 0; s < steps; s++) {
    loss_and_grad(m, b);
    for (size_t i = 0; i < m.params.size(); i++)
      m.params[i] -= lr * (m.grads[i] + wd * m.params[i]);  // GD, weight decay on everything
  }
  quantities(Q1, G1);
  ConservationResult r{lr, steps, 0, 0};
  for (size_t i = 0; i < Q0.size(); i++) {
    r.drift = std::max(r.drift, std::abs(Q1[i] - Q0[i]));
    r.drift_gamma2 = std::max(r.drift_gamma2, std::abs(G1[i] - G0[i]));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// 4. Theorem 3.1: dual placement vs input-only placement at the same effective weights.

DualResult dual_check(double lr, double u_spread, uint64_t seed) {
  ScaleConfig dual_sc;
  dual_sc.dp = {Branch::Q, Branch::K, Branch::V, Branch::Gate, Branch::Up};
  TheoryModel dual(dual_sc, seed);
  Transformer<double> input(theory_config(ScaleConfig{}), kB);  // baseline: input side only
  Rng rng(seed + 7);
  // u = 1 (as initialised) or random; the input-only model gets every other tensor by name and
  // W' = diag(u) W for each DP branch, so both compute the same function.
  for (const auto& p : dual.m.layout().params())
    if (p.name.ends_with("_dp.u"))
      for (size_t i = 0; i < p.numel; i++)
        dual.m.params[p.offset + i] =
            u_spread == 0 ? 1.0 : 1.0 + u_spread * (2 * rng.uniform() - 1);
  for (const auto& p : input.layout().params())
    std::copy_n(param(dual.m, p.name), p.numel, param(input, p.name));
  std::map<size_t, std::string> name_at;  // offset -> parameter name in the dual model
  for (const auto& p : dual.m.layout().params()) name_at[p.offset] = p.name;
  for (auto& site : dual.m.scale_sites()) {
    if (!site.name.ends_with("_dp")) continue;
    const double* u = site.scale->forward(dual.m.params.data());
    const FoldTarget& t = site.targets.at(0);  // the rows of the branch's W
    double* w = param(input, name_at.at(t.offset));
    for (int r = 0; r < t.rows; r++)
      for (int c = 0; c < t.cols; c++) w[(size_t)r * t.cols + c] *= u[r];
  }
  const Batch2 b(seed + 2);
  DualResult r{};
  r.loss_input = loss_and_grad(input, b);
  r.loss_dual = loss_and_grad(dual.m, b);
  for (double g : input.grads) r.grad_sq_input += g * g;
  for (double g : dual.m.grads) r.grad_sq_dual += g * g;
  for (const auto& p : dual.m.layout().params())
    if (p.name.ends_with("_dp.u"))
      for (size_t i = 0; i < p.numel; i++) r.grad_sq_u += sq(dual.m.grads[p.offset + i]);
  auto drop = [&](Transformer<double>& m, double l0) {
    const std::vector<double> theta = m.params;
    for (size_t i = 0; i < theta.size(); i++) m.params[i] -= lr * m.grads[i];
    const double l1 = loss_only(m, b);
    m.params = theta;
    return l0 - l1;
  };
  r.drop_input = drop(input, r.loss_input);
  r.drop_dual = drop(dual.m, r.loss_dual);
  return r;
}

// ---------------------------------------------------------------------------------------------
// 5. Theorem 3.2: the magnitude-direction preconditioner.

std::vector<MagDirResult> magdir_check(const std::vector<double>& lrs, uint64_t seed) {
  ScaleConfig md;
  md.param = ScaleParam::MagDir;
  TheoryModel t(md, seed);
  Transformer<double>& m = t.m;
  // The same function with plain γ = β α: its γ gradient is ∇_γ L.
  Transformer<double> plain(theory_config(ScaleConfig{}), kB);
  for (const auto& p : plain.layout().params()) {
    if (p.role != Role::Scale) {
      std::copy_n(param(m, p.name), p.numel, param(plain, p.name));
      continue;
    }
    const std::string base = p.name.substr(0, p.name.size() - 6);  // strip ".gamma"
    const double beta = *param(m, base + ".beta");
    const double* alpha = param(m, base + ".alpha");
    for (size_t i = 0; i < p.numel; i++) plain.params[p.offset + i] = beta * alpha[i];
  }
  const Batch2 b(seed + 2);
  loss_and_grad(plain, b);
  loss_and_grad(m, b);
  const std::string site = "layers.0.attn_norm";
  const int C = m.config().d_model;
  const double* g = grad(plain, site + ".gamma");  // ∇_γ L
  const std::vector<double> theta = m.params, gm = m.grads;
  const double beta0 = *param(m, site + ".beta");
  const std::vector<double> alpha0(param(m, site + ".alpha"), param(m, site + ".alpha") + C);
  double ag = 0;
  for (int c = 0; c < C; c++) ag += alpha0[c] * g[c];
  std::vector<MagDirResult> out;
  for (double lr : lrs) {
    for (size_t i = 0; i < theta.size(); i++) m.params[i] = theta[i] - lr * gm[i];
    const double beta1 = *param(m, site + ".beta");
    const double* alpha1 = param(m, site + ".alpha");
    double err2 = 0, pred2 = 0, plain2 = 0;
    for (int c = 0; c < C; c++) {
      // [snippet:magdir_precond]
      // γ = β α:  Δγ = -lr (β² g + α (αᵀ g)) + O(lr²),  g = ∇_γ L
      const double actual = beta1 * alpha1[c] - beta0 * alpha0[c];
      const double predicted = -lr * (beta0 * beta0 * g[c] + alpha0[c] * ag);
      // [end]
      err2 += sq(actual - predicted), pred2 += sq(predicted), plain2 += sq(actual + lr * g[c]);
    }
    out.push_back({lr, std::sqrt(err2 / pred2), std::sqrt(plain2 / pred2)});
    m.params = theta;
  }
  return out;
}

}  // namespace scalevec
