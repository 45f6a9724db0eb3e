// Chapter 02: RMSNorm and its scale vector, measured.
//  1. N(x) has unit RMS, and N(s·x) = N(x): the normalization forgets the magnitude of x
//  2. the backward of N: dx scales by 1/s, and dx ⟂ x (the gradient has no radial component)
//  3. dγ is a sum over all rows: it equals Σ_rows dy ⊙ N(x), and grows with the number of rows
// Exit status 0 iff every property holds to the stated tolerance.
#include <cmath>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "ref/common.h"
#include "ref/ops/rmsnorm.h"
#include "ref/ops/scale.h"
#include "ref/rng.h"

using namespace scalevec;
using Vec = std::vector<double>;

static double max_abs_diff(const Vec& a, const Vec& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 02: RMSNorm and its scale vector"};
  int N = 64, C = 48;
  app.add_option("--rows", N, "rows (B*T)")->capture_default_str();
  app.add_option("--channels", C, "channels C")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;
  auto verdict = [&](bool pass) {
    ok &= pass;
    return pass ? "ok" : "FAIL";
  };
  Rng rng(3);
  Vec x((size_t)N * C), n(x.size()), rstd(N), dn(x.size());
  for (auto& v : x) v = 3.0 * rng.normal() + 1.0;
  for (auto& v : dn) v = rng.normal();
  const double eps = 1e-5;

  // 1. unit RMS and scale invariance
  rmsnorm_forward(n.data(), rstd.data(), x.data(), N, C, C, eps);
  double worst_rms = 0;
  for (int i = 0; i < N; i++) {
    double ss = 0;
    for (int c = 0; c < C; c++) ss += n[(size_t)i * C + c] * n[(size_t)i * C + c];
    worst_rms = std::max(worst_rms, std::abs(std::sqrt(ss / C) - 1.0));
  }
  std::printf("1. max |rms(N(x)) - 1| = %.2e  (eps makes it slightly below 1) %s\n", worst_rms,
              verdict(worst_rms < 1e-5));
  // With eps = 0 the invariance is exact (up to round-off); eps > 0 breaks it by a relative
  // amount of about eps / (2 mean(x²)), which is why N(x) stays finite at x = 0.
  const double s = 7.5;
  Vec xs(x.size()), ns(x.size()), rstds(N), n0(x.size()), r0(N);
  for (size_t i = 0; i < x.size(); i++) xs[i] = s * x[i];
  Vec ns0(x.size()), rs0(N);
  rmsnorm_forward(ns0.data(), rs0.data(), xs.data(), N, C, C, 0.0);
  rmsnorm_forward(n0.data(), r0.data(), x.data(), N, C, C, 0.0);
  const double inv0 = max_abs_diff(n0, ns0);
  std::printf("   eps = 0:    max |N(%.1f x) - N(x)| = %.2e  %s\n", s, inv0, verdict(inv0 < 1e-12));
  rmsnorm_forward(ns.data(), rstds.data(), xs.data(), N, C, C, eps);
  double bound = 0;  // first-order size of the eps effect, row by row
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++)
      bound = std::max(bound, std::abs(n[(size_t)i * C + c]) * eps * rstd[i] * rstd[i] / 2);
  const double inv = max_abs_diff(n, ns);
  std::printf("   eps = %.0e: max |N(%.1f x) - N(x)| = %.2e <= |n| eps / (2 mean(x²)) = %.2e  %s\n",
              eps, s, inv, bound, verdict(inv <= bound * 1.01));

  // 2. the backward: 1/s scaling and no radial component (eps = 0, where both are exact)
  Vec dx(x.size(), 0.0), dxs(x.size(), 0.0);
  rmsnorm_backward(dx.data(), dn.data(), n0.data(), r0.data(), N, C, C);
  rmsnorm_backward(dxs.data(), dn.data(), ns0.data(), rs0.data(), N, C, C);
  double scale_err = 0, radial = 0;
  for (size_t i = 0; i < x.size(); i++)
    scale_err = std::max(scale_err, std::abs(s * dxs[i] - dx[i]));
  for (int i = 0; i < N; i++) {
    double dot = 0, nx = 0, nd = 0;
    for (int c = 0; c < C; c++) {
      const size_t k = (size_t)i * C + c;
      dot += dx[k] * x[k], nx += x[k] * x[k], nd += dx[k] * dx[k];
    }
    radial = std::max(radial, std::abs(dot) / std::sqrt(nx * nd));
  }
  std::printf("2. max |s·dx(s x) - dx(x)| = %.2e  %s\n", scale_err, verdict(scale_err < 1e-12));
  std::printf("   max |cos(dx, x)| = %.2e: a gradient step never changes |x| to first order  %s\n",
              radial, verdict(radial < 1e-12));

  // 3. dγ as a sum over rows, computed by the op and independently
  Vec gamma(C), y(x.size()), dy(x.size()), dgamma(C, 0.0), dn2(x.size(), 0.0), expect(C, 0.0);
  for (auto& g : gamma) g = 0.5 + rng.uniform();
  for (auto& v : dy) v = rng.normal();
  scale_forward(y.data(), n.data(), gamma.data(), N, C);
  scale_backward(dn2.data(), dgamma.data(), dy.data(), n.data(), gamma.data(), N, C);
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++) expect[c] += dy[(size_t)i * C + c] * n[(size_t)i * C + c];
  const double dg_err = max_abs_diff(dgamma, expect);
  std::printf("3. max |dγ - Σ_rows dy ⊙ N(x)| = %.2e  %s\n", dg_err, verdict(dg_err < 1e-10));
  std::printf("   how dγ grows with the rows it sums (dy with a shared bias 0.1 plus noise):\n");
  std::printf("   %8s %14s %14s\n", "rows", "mean |dγ_c|", "per row");
  for (int rows : {1, 4, 16, 64, 256, 1024}) {
    Vec xr((size_t)rows * C), nr(xr.size()), rr(rows), dyr(xr.size()), dg(C, 0.0),
        dxr(xr.size(), 0.0);
    for (auto& v : xr) v = rng.normal() + 1.0;  // channels share a positive mean: N(x) too
    for (auto& v : dyr) v = 0.1 + rng.normal();
    rmsnorm_forward(nr.data(), rr.data(), xr.data(), rows, C, C, eps);
    scale_backward(dxr.data(), dg.data(), dyr.data(), nr.data(), gamma.data(), rows, C);
    double m = 0;
    for (double g : dg) m += std::abs(g) / C;
    std::printf("   %8d %14.4f %14.4f\n", rows, m, m / rows);
  }
  return ok ? 0 : 1;
}
