#include "check.h"

#include <cmath>

#include "model.h"

namespace scalevec::gpu {

std::vector<GradCompare> compare_with_reference(const ModelConfig& cfg, const std::vector<double>& params,
                                                const std::vector<double>& grads,
                                                const std::vector<int32_t>& tokens,
                                                const std::vector<int32_t>& targets, int B, int T,
                                                double* loss_gpu) {
  GpuTransformer g(cfg, B);
  g.set_params(std::vector<float>(params.begin(), params.end()));
  g.zero_grad();
  *loss_gpu = g.forward(tokens.data(), targets.data(), B, T);
  g.backward();
  const std::vector<float> gg = g.get_grads();
  std::vector<GradCompare> out;
  for (const auto& p : g.layout().params()) {
    GradCompare c{p.name, p.numel, 0, 0};
    double ss = 0;
    for (size_t i = 0; i < p.numel; i++) ss += grads[p.offset + i] * grads[p.offset + i];
    const double rms = std::sqrt(ss / double(p.numel));
    for (size_t i = 0; i < p.numel; i++) {
      const double r = grads[p.offset + i], d = std::abs(double(gg[p.offset + i]) - r);
      c.max_abs = std::max(c.max_abs, d);
      c.max_rel = std::max(c.max_rel, std::isfinite(d) ? d / (std::abs(r) + rms + 1e-300) : INFINITY);
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace scalevec::gpu
