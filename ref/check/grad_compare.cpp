#include "grad_compare.h"

#include <algorithm>
#include <cmath>

#include "../common.h"

namespace scalevec {

std::vector<GradCompare> compare_gradients(const ParamLayout& layout,
                                           const std::vector<double>& ref,
                                           const std::vector<float>& got) {
  require(ref.size() == layout.total() && got.size() == layout.total(),
          "compare_gradients: {} and {} values for a layout of {}", ref.size(), got.size(),
          layout.total());
  double ss_all = 0;
  for (double x : ref) ss_all += x * x;
  const double rms_all = std::sqrt(ss_all / double(std::max<size_t>(1, ref.size())));
  std::vector<GradCompare> out;
  for (const auto& p : layout.params()) {
    GradCompare c{p.name, p.numel};
    double dd = 0, rr = 0;
    for (size_t i = 0; i < p.numel; i++) {
      const double r = ref[p.offset + i], d = double(got[p.offset + i]) - r;
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

}  // namespace scalevec
