// Finite-difference gradient checking (docs/VERIFICATION.md §1).
//
// An analytic gradient a is compared with a numerical derivative b by the rule
//     |a - b| <= rtol · max(|a|, |b|, floor),     floor = atol / rtol,
// i.e. a relative error with an absolute floor: gradients that are zero by construction (up to
// eps) are judged on an absolute scale, all others relatively. ErrorStats keeps the worst case.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

namespace scalevec {

struct ErrorStats {
  double rtol = 1e-6, atol = 1e-12;
  double max_rel = 0, max_abs = 0;  // worst relative (with floor) and absolute error seen
  size_t count = 0, failures = 0;

  ErrorStats() = default;
  ErrorStats(double rtol_, double atol_) : rtol(rtol_), atol(atol_) {}

  double floor() const { return atol / rtol; }
  // Records one comparison; returns true when it passes.
  bool add(double analytic, double numeric) {
    const double err = std::abs(analytic - numeric);
    const double rel = err / std::max({std::abs(analytic), std::abs(numeric), floor()});
    max_abs = std::max(max_abs, err);
    max_rel = std::max(max_rel, rel);
    count++;
    const bool ok = rel <= rtol;
    failures += ok ? 0 : 1;
    return ok;
  }
  void merge(const ErrorStats& o) {
    max_rel = std::max(max_rel, o.max_rel), max_abs = std::max(max_abs, o.max_abs);
    count += o.count, failures += o.failures;
  }
  bool ok() const { return failures == 0; }
};

// [snippet:fd_derivative]
// Numerical d loss / d x at the current value of *x, by central differences. The 4-point stencil
//     f'(x) ≈ (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h        (error O(h⁴))
// lets h be large enough that round-off in f stays far below the tolerance. *x is restored.
template <class T, class Loss>
double fd_derivative(T* x, Loss&& loss, double h, bool four_point = true) {
  const T x0 = *x;
  auto f = [&](double dx) {
    *x = T(double(x0) + dx);
    return double(loss());
  };
  double d = four_point ? (-f(2 * h) + 8 * f(h) - 8 * f(-h) + f(-2 * h)) / (12 * h)
                        : (f(h) - f(-h)) / (2 * h);
  *x = x0;
  return d;
}
// [end]

// Checks d loss / d x[i] for every i in `indices` against analytic[i]; loss() must recompute the
// scalar from the current contents of x.
template <class T, class Loss>
ErrorStats check_entries(T* x, const T* analytic, const std::vector<size_t>& indices, Loss&& loss,
                         double h, double rtol, double atol) {
  ErrorStats s(rtol, atol);
  for (size_t i : indices) s.add(double(analytic[i]), fd_derivative(x + i, loss, h));
  return s;
}

inline std::vector<size_t> all_indices(size_t n) {
  std::vector<size_t> v(n);
  for (size_t i = 0; i < n; i++) v[i] = i;
  return v;
}

}  // namespace scalevec
