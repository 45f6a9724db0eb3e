#include "check.h"

#include <cmath>

#include "model.h"
#include "ops.h"

namespace scalevec::gpu {

std::vector<GradCompare> compare_with_reference(const ModelConfig& cfg, const std::vector<double>& params,
                                                const std::vector<double>& grads,
                                                const std::vector<int32_t>& tokens,
                                                const std::vector<int32_t>& targets, int B, int T,
                                                Precision precision, double* loss_gpu) {
  struct Restore {  // the caller's precision again on the way out
    Precision before = matmul_precision();
    ~Restore() { set_matmul_precision(before); }
  } restore;
  set_matmul_precision(precision);
  GpuTransformer g(cfg, B);
  g.set_params(std::vector<float>(params.begin(), params.end()));
  g.zero_grad();
  *loss_gpu = g.forward(tokens.data(), targets.data(), B, T);
  g.backward();
  const std::vector<float> gg = g.get_grads();
  double ss_all = 0;
  for (double x : grads) ss_all += x * x;
  const double rms_all = std::sqrt(ss_all / double(grads.size()));
  std::vector<GradCompare> out;
  for (const auto& p : g.layout().params()) {
    GradCompare c{p.name, p.numel};
    double dd = 0, rr = 0;
    for (size_t i = 0; i < p.numel; i++) {
      const double r = grads[p.offset + i], d = double(gg[p.offset + i]) - r;
      dd += d * d, rr += r * r;
      c.max_abs = std::max(c.max_abs, std::isfinite(d) ? std::abs(d) : INFINITY);
    }
    c.diff = std::isfinite(c.max_abs) ? std::sqrt(dd) : INFINITY;
    c.norm_rel = c.diff / (std::sqrt(rr) + 1e-300);
    c.scale = std::sqrt(rr) + rms_all * std::sqrt(double(p.numel)) + 1e-300;
    out.push_back(c);
  }
  return out;
}

}  // namespace scalevec::gpu
