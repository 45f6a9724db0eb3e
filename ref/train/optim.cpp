#include "optim.h"

#include <algorithm>
#include <cmath>

#include "../common.h"
#include "../ops/blas.h"
#include "config.h"

namespace scalevec {

const char* wd_policy_name(WdPolicy p) {
  switch (p) {
    case WdPolicy::None:
      return "none";
    case WdPolicy::All:
      return "all";
    case WdPolicy::Iwd:
      return "iwd";
  }
  return "?";
}

const std::vector<std::string>& wd_policy_list() {
  static const std::vector<std::string> names{"none", "all", "iwd"};
  return names;
}

const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::AdamW:
      return "adamw";
    case OptimizerKind::Muon:
      return "muon";
    case OptimizerKind::Sgd:
      return "sgd";
  }
  return "?";
}

const std::vector<std::string>& optimizer_list() {
  static const std::vector<std::string> names{"adamw", "muon", "sgd"};
  return names;
}

OptimizerKind parse_optimizer(const std::string& s) {
  for (OptimizerKind k : {OptimizerKind::AdamW, OptimizerKind::Muon, OptimizerKind::Sgd})
    if (s == optimizer_name(k)) return k;
  throw Error(fmt::format("unknown optimizer '{}' (expected one of: {})", s,
                          fmt::join(optimizer_list(), ", ")));
}

WdPolicy parse_wd_policy(const std::string& s) {
  if (s == "none") return WdPolicy::None;
  if (s == "all") return WdPolicy::All;
  if (s == "iwd") return WdPolicy::Iwd;
  throw Error(fmt::format("unknown weight-decay policy '{}' (expected one of: {})", s,
                          fmt::join(wd_policy_list(), ", ")));
}

std::vector<ParamGroup> param_groups(const ParamLayout& layout, const DecayRule& rule,
                                     const ParamFilter& only) {
  std::vector<ParamGroup> groups;
  for (const auto& p : layout.params()) {
    if (only && !only(p)) continue;
    const bool d = rule.decays(p);
    if (!groups.empty() && groups.back().decay == d &&
        groups.back().offset + groups.back().numel == p.offset)
      groups.back().numel += p.numel;
    else
      groups.push_back({p.offset, p.numel, d});
  }
  return groups;
}

// ---------------------------------------------------------------------------------------------
// AdamW.

template <class T>
AdamW<T>::AdamW(const ParamLayout& layout, const AdamWConfig& cfg, const ParamFilter& only)
    : m(layout.total(), T(0)),
      v(layout.total(), T(0)),
      cfg_(cfg),
      groups_(param_groups(layout, cfg.decay, only)) {}

// [snippet:adamw_step]
template <class T>
void AdamW<T>::step(T* params, const T* grads, double lr_factor) {
  this->t++;
  const double lr = cfg_.lr * lr_factor, b1 = cfg_.beta1, b2 = cfg_.beta2;
  const double bc1_d = 1 - std::pow(b1, double(this->t)), bc2_d = 1 - std::pow(b2, double(this->t));
  const T bc1 = T(bc1_d), bc2_sqrt = T(std::sqrt(bc2_d));
  const T step_size = T(lr) / bc1;
  for (const ParamGroup& g : groups_) {
    const T shrink = g.decay ? T(1 - lr * cfg_.decay.weight_decay) : T(1);
#pragma omp parallel for schedule(static)
    for (size_t i = g.offset; i < g.offset + g.numel; i++) {
      params[i] *= shrink;
      m[i] = T(b1) * m[i] + T(1 - b1) * grads[i];
      v[i] = T(b2) * v[i] + T(1 - b2) * grads[i] * grads[i];
      params[i] -= step_size * m[i] / (std::sqrt(v[i]) / bc2_sqrt + T(cfg_.eps));
    }
  }
}
// [end]

// ---------------------------------------------------------------------------------------------
// Newton–Schulz and Muon.

size_t newton_schulz_work(int R, int C) {
  const size_t m = (size_t)std::min(R, C), n = (size_t)std::max(R, C);
  return 2 * m * n + 2 * m * m;  // X and its successor (m × n), A and B (m × m)
}

// [snippet:newton_schulz]
template <class T>
void newton_schulz(const T* G, T* out, int R, int C, int steps, T* work) {
  const bool tall = R > C;
  const int m = tall ? C : R, n = tall ? R : C;  // X is m × n with m ≤ n
  T* X = work;
  T* Y = X + (size_t)m * n;
  T* A = Y + (size_t)m * n;
  T* B = A + (size_t)m * m;
  // X = G / (‖G‖_F + 1e-7), transposed when tall: the spectral norm is ≤ the Frobenius norm, so
  // every singular value starts in [0, 1], where the iteration below is designed to act.
  double ss = 0;
  for (size_t i = 0; i < (size_t)R * C; i++) ss += double(G[i]) * double(G[i]);
  const double denom = std::sqrt(ss) + 1e-7;
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      const T x = T(double(G[(size_t)i * C + j]) / denom);
      if (tall)
        X[(size_t)j * R + i] = x;
      else
        X[(size_t)i * C + j] = x;
    }
  const T a = T(kNsA), b = T(kNsB), c = T(kNsC);
  for (int k = 0; k < steps; k++) {
    // X = U S Vᵀ  →  A = U S² Uᵀ,  B = U (b S² + c S⁴) Uᵀ,  a X + B X = U (a S + b S³ + c S⁵) Vᵀ.
    gemm<T>(false, true, m, m, n, T(1), X, n, X, n, T(0), A, m);  // A = X Xᵀ
    std::copy(A, A + (size_t)m * m, B);
    gemm<T>(false, false, m, m, m, c, A, m, A, m, b, B, m);  // B = b A + c A A
    std::copy(X, X + (size_t)m * n, Y);
    gemm<T>(false, false, m, n, m, T(1), B, m, X, n, a, Y, n);  // Y = a X + B X
    std::swap(X, Y);
  }
  for (int i = 0; i < R; i++)  // transpose back
    for (int j = 0; j < C; j++)
      out[(size_t)i * C + j] = tall ? X[(size_t)j * R + i] : X[(size_t)i * C + j];
}
// [end]

template <class T>
Muon<T>::Muon(const ParamLayout& layout, const MuonConfig& cfg)
    : momentum(layout.total(), T(0)),
      cfg_(cfg),
      adam_(layout, cfg.adamw, [](const ParamInfo& p) { return p.role != Role::Matrix; }) {
  size_t most = 0, most_work = 0;
  for (const auto& p : layout.params()) {
    if (p.role != Role::Matrix) continue;
    // A matrix of more than two dimensions is read as shape[0] rows of all the rest.
    require(!p.shape.empty() && p.shape[0] > 0, "Muon: matrix '{}' has no rows", p.name);
    const int rows = p.shape[0], cols = int(p.numel / size_t(rows));
    matrices_.push_back({p.offset, rows, cols, cfg.adamw.decay.decays(p)});
    most = std::max(most, p.numel);
    most_work = std::max(most_work, newton_schulz_work(rows, cols));
  }
  update_.resize(most);
  work_.resize(most_work);
}

// [snippet:muon_step]
template <class T>
void Muon<T>::step(T* params, const T* grads, double lr_factor) {
  this->t++;
  adam_.t = this->t - 1;  // the AdamW part counts Muon's steps: one counter, saved once
  adam_.step(params, grads, lr_factor);  // embeddings, head, vectors (its base lr: cfg.adamw.lr)
  const double lr = cfg_.lr * lr_factor, mu = cfg_.momentum;
  for (const Matrix& w : matrices_) {
    const size_t n = (size_t)w.rows * w.cols;
    T* buf = momentum.data() + w.offset;
    const T* g = grads + w.offset;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
      buf[i] = T(mu) * buf[i] + g[i];                               // buf ← μ buf + g
      update_[i] = cfg_.nesterov ? g[i] + T(mu) * buf[i] : buf[i];  // g' (Nesterov)
    }
    newton_schulz(update_.data(), update_.data(), w.rows, w.cols, cfg_.ns_steps, work_.data());
    const T shrink = w.decay ? T(1 - lr * cfg_.adamw.decay.weight_decay) : T(1);
    const T scale = T(lr * std::sqrt(std::max(1.0, double(w.rows) / double(w.cols))));
    T* p = params + w.offset;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) p[i] = p[i] * shrink - scale * update_[i];
  }
}
// [end]

// ---------------------------------------------------------------------------------------------
// SGD with momentum.

template <class T>
Sgd<T>::Sgd(const ParamLayout& layout, const SgdConfig& cfg)
    : momentum(layout.total(), T(0)), cfg_(cfg), groups_(param_groups(layout, cfg.decay)) {}

template <class T>
void Sgd<T>::step(T* params, const T* grads, double lr_factor) {
  this->t++;
  const double lr = cfg_.lr * lr_factor;
  const T mu = T(cfg_.momentum);
  for (const ParamGroup& g : groups_) {
    const T shrink = g.decay ? T(1 - lr * cfg_.decay.weight_decay) : T(1);
#pragma omp parallel for schedule(static)
    for (size_t i = g.offset; i < g.offset + g.numel; i++) {
      momentum[i] = mu * momentum[i] + grads[i];
      params[i] = params[i] * shrink - T(lr) * momentum[i];
    }
  }
}

// ---------------------------------------------------------------------------------------------

template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const ParamLayout& layout, const TrainConfig& cfg) {
  switch (cfg.optimizer) {
    case OptimizerKind::AdamW:
      return std::make_unique<AdamW<T>>(layout, cfg.adamw());
    case OptimizerKind::Muon:
      return std::make_unique<Muon<T>>(layout, cfg.muon());
    case OptimizerKind::Sgd:
      return std::make_unique<Sgd<T>>(layout, cfg.sgd());
  }
  throw Error("unknown optimizer kind");
}

template <class T>
double clip_grad_norm(T* grads, size_t n, double max_norm) {
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += double(grads[i]) * double(grads[i]);
  const double norm = std::sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    const T s = T(max_norm / (norm + 1e-6));
    for (size_t i = 0; i < n; i++) grads[i] *= s;
  }
  return norm;
}

template class AdamW<float>;
template class AdamW<double>;
template class Muon<float>;
template class Muon<double>;
template class Sgd<float>;
template class Sgd<double>;
template void newton_schulz<float>(const float*, float*, int, int, int, float*);
template void newton_schulz<double>(const double*, double*, int, int, int, double*);
template std::unique_ptr<Optimizer<float>> make_optimizer<float>(const ParamLayout&,
                                                                 const TrainConfig&);
template std::unique_ptr<Optimizer<double>> make_optimizer<double>(const ParamLayout&,
                                                                   const TrainConfig&);
template double clip_grad_norm<float>(float*, size_t, double);
template double clip_grad_norm<double>(double*, size_t, double);

}  // namespace scalevec
