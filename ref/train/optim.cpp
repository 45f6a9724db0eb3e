#include "optim.h"

#include <cmath>

#include "../common.h"

namespace scalevec {

const char* wd_policy_name(WdPolicy p) {
  switch (p) {
    case WdPolicy::None: return "none";
    case WdPolicy::All: return "all";
    case WdPolicy::Iwd: return "iwd";
  }
  return "?";
}

WdPolicy parse_wd_policy(const std::string& s) {
  if (s == "none") return WdPolicy::None;
  if (s == "all") return WdPolicy::All;
  if (s == "iwd") return WdPolicy::Iwd;
  throw Error(fmt::format("unknown weight-decay policy '{}' (expected none, all or iwd)", s));
}

template <class T>
AdamW<T>::AdamW(const ParamLayout& layout, const AdamWConfig& cfg)
    : m(layout.total(), T(0)), v(layout.total(), T(0)), cfg_(cfg) {
  // One group per run of adjacent tensors with the same decay decision (fewer parallel loops).
  for (const auto& p : layout.params()) {
    const bool d = cfg.decay.decays(p);
    if (!groups_.empty() && groups_.back().decay == d &&
        groups_.back().offset + groups_.back().numel == p.offset)
      groups_.back().numel += p.numel;
    else
      groups_.push_back({p.offset, p.numel, d});
  }
}

// [snippet:adamw_step]
template <class T>
void AdamW<T>::step(T* params, const T* grads, double lr) {
  t++;
  const double b1 = cfg_.beta1, b2 = cfg_.beta2;
  const T bc1 = T(1 - std::pow(b1, double(t))), bc2_sqrt = T(std::sqrt(1 - std::pow(b2, double(t))));
  const T step_size = T(lr) / bc1;
  for (const Group& g : groups_) {
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
template double clip_grad_norm<float>(float*, size_t, double);
template double clip_grad_norm<double>(double*, size_t, double);

}  // namespace scalevec
