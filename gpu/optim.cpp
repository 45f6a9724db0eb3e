#include "optim.h"

#include <algorithm>
#include <cmath>

#include "ops.h"

namespace scalevec::gpu {

namespace {
DecayRule decay_of(const TrainConfig& c) { return c.adamw().decay; }
}  // namespace

GpuOptimizer::GpuOptimizer(const ParamLayout& layout, const TrainConfig& cfg)
    : name_(optimizer_name(cfg.optimizer)), cfg_(cfg) {
  const size_t n = layout.total();
  auto add_state = [&](const std::string& s) {
    state_.emplace_back(s, DeviceArray<float>(n));
    state_.back().second.zero();
  };
  const DecayRule rule = decay_of(cfg);
  if (name_ == "adamw") {
    groups_ = param_groups(layout, rule);
    add_state("adam.m"), add_state("adam.v");
  } else if (name_ == "muon") {
    groups_ = param_groups(layout, rule, [](const ParamInfo& p) { return p.role != Role::Matrix; });
    add_state("adam.m"), add_state("adam.v"), add_state("muon.momentum");
    size_t most = 0, most_work = 0;
    for (const auto& p : layout.params()) {
      if (p.role != Role::Matrix) continue;
      const int rows = p.shape[0], cols = int(p.numel / size_t(rows));
      matrices_.push_back({p.offset, rows, cols, rule.decays(p)});
      most = std::max(most, p.numel);
      most_work = std::max(most_work, newton_schulz_work_size(rows, cols));
    }
    update_.resize(most), work_.resize(most_work);
  } else if (name_ == "sgd") {
    groups_ = param_groups(layout, rule);
    add_state("sgd.momentum");
  } else {
    throw Error(fmt::format("unknown optimizer '{}' (expected adamw, muon or sgd)", name_));
  }
}

// ref AdamW<T>::step, with its float rounding of the bias corrections.
void GpuOptimizer::adamw_step(float* p, const float* g, double lr_factor, int64_t step) {
  const double lr = cfg_.lr * lr_factor, b1 = cfg_.beta1, b2 = cfg_.beta2;
  const double bc1_d = 1 - std::pow(b1, double(step)), bc2_d = 1 - std::pow(b2, double(step));
  float* m = state_[0].second.data();
  float* v = state_[1].second.data();
  for (const ParamGroup& gr : groups_) {
    const float shrink = gr.decay ? float(1 - lr * cfg_.weight_decay) : 1.f;
    adamw_update(p + gr.offset, m + gr.offset, v + gr.offset, g + gr.offset, gr.numel, float(lr),
                 b1, b2, float(bc1_d), float(std::sqrt(bc2_d)), float(cfg_.adam_eps), shrink);
  }
}

void GpuOptimizer::step(float* p, const float* g, double lr_factor) {
  t++;
  if (name_ == "adamw") return adamw_step(p, g, lr_factor, t);
  if (name_ == "sgd") {
    const double lr = cfg_.lr * lr_factor;
    float* buf = state_[0].second.data();
    for (const ParamGroup& gr : groups_) {
      const float shrink = gr.decay ? float(1 - lr * cfg_.weight_decay) : 1.f;
      sgd_update(p + gr.offset, buf + gr.offset, g + gr.offset, gr.numel, float(lr),
                 float(cfg_.sgd_momentum), shrink);
    }
    return;
  }
  // muon: the AdamW part on every non-matrix tensor, then each matrix (ref Muon<T>::step).
  adamw_step(p, g, lr_factor, t);
  const double lr = cfg_.muon_lr * lr_factor;
  float* mom = state_[2].second.data();
  for (const Matrix& w : matrices_) {
    const size_t n = (size_t)w.rows * w.cols;
    muon_momentum(mom + w.offset, update_.data(), g + w.offset, n, float(cfg_.muon_momentum), true);
    newton_schulz(update_.data(), update_.data(), w.rows, w.cols, cfg_.ns_steps, work_.data());
    const float shrink = w.decay ? float(1 - lr * cfg_.weight_decay) : 1.f;
    const float scale = float(lr * std::sqrt(std::max(1.0, double(w.rows) / double(w.cols))));
    muon_apply(p + w.offset, update_.data(), n, shrink, scale);
  }
}

std::vector<std::pair<std::string, std::vector<float>>> GpuOptimizer::download_state() const {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  for (const auto& [n, a] : state_) out.emplace_back(n, a.to_host());
  return out;
}

void GpuOptimizer::upload_state(const std::string& name, const std::vector<float>& host) {
  for (auto& [n, a] : state_)
    if (n == name) {
      require(host.size() == a.size(), "optimizer state '{}' has {} values, expected {}", name,
              host.size(), a.size());
      a.upload(host.data(), host.size());
      return;
    }
  throw Error(fmt::format("optimizer '{}' has no state '{}'", name_, name));
}

double clip_grad_norm(float* grads, size_t n, double max_norm, DeviceArray<float>& partial) {
  if (partial.size() < sum_of_squares_partial_size(n))
    partial.resize(sum_of_squares_partial_size(n));
  const double norm = std::sqrt(sum_of_squares(grads, n, partial.data()));
  if (max_norm > 0 && norm > max_norm) scale_inplace(grads, float(max_norm / (norm + 1e-6)), n);
  return norm;
}

}  // namespace scalevec::gpu
