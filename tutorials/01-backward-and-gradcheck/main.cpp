// Chapter 01: a hand-written backward and the finite-difference check that proves it.
//  1. the check on one op (RMSNorm), every entry, 2-point vs 4-point stencil, float vs double
//  2. the same check catching a plausible bug (treating 1/rms(x) as a constant)
//  3. the whole model, every parameter tensor
// Exit status 0 iff the correct backwards pass and the broken one is caught.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "ref/common.h"
#include "ref/check/gradcheck.h"
#include "ref/check/model_gradcheck.h"
#include "ref/ops/rmsnorm.h"
#include "ref/rng.h"
#include "tools/plot_svg.h"

using namespace scalevec;

// [snippet:buggy_backward]
// A plausible bug: differentiate n = x·r as if r did not depend on x. It forgets the term that
// removes the component of dn along n.
template <class T>
void rmsnorm_backward_buggy(T* dx, const T* dn, const T*, const T* rstd, int N, int C) {
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++) dx[(size_t)i * C + c] += dn[(size_t)i * C + c] * rstd[i];
}
// [end]

// Checks the RMSNorm backward (correct or buggy) on every input entry with loss = Σ n ⊙ dn.
template <class T>
ErrorStats check_rmsnorm(bool buggy, bool four_point, double h, int N, int C, uint64_t seed) {
  Rng rng(seed);
  std::vector<T> x((size_t)N * C), n(x.size()), dn(x.size()), dx(x.size(), T(0)), rstd(N);
  for (auto& v : x) v = T(rng.normal() + 0.5);
  for (auto& v : dn) v = T(rng.normal());
  const T eps = T(1e-5);
  // [snippet:check_one_op]
  // loss(x) = Σ N(x) ⊙ dn has gradient exactly "rmsnorm_backward applied to dn".
  auto loss = [&] {
    rmsnorm_forward(n.data(), rstd.data(), x.data(), N, C, C, eps);
    double s = 0;
    for (size_t i = 0; i < n.size(); i++) s += double(n[i]) * double(dn[i]);
    return s;
  };
  loss();
  if (buggy)
    rmsnorm_backward_buggy(dx.data(), dn.data(), n.data(), rstd.data(), N, C);
  else
    rmsnorm_backward(dx.data(), dn.data(), n.data(), rstd.data(), N, C, C);
  ErrorStats s(1e-6, 1e-12);
  for (size_t i = 0; i < x.size(); i++)
    s.add(double(dx[i]), fd_derivative(&x[i], loss, h, four_point));
  // [end]
  return s;
}

// The error of part 1 against the step h, on log-log axes: where truncation (falling with h) and
// round-off (rising as h shrinks) meet, for both stencils in double and in float.
static std::string h_sweep_svg(int N, int C) {
  LinePlot p;
  p.title = "Finite differences: error against step size";
  p.subtitle = fmt::format(
      "RMSNorm backward vs central differences, max relative error over all {} "
      "entries of a {}x{} input; the flat line: the project's bar, 1e-6",
      N * C, N, C);
  p.xlabel = "step h";
  p.ylabel = "max relative error";
  p.legend_title = "stencil, precision";
  p.xlog = p.ylog = true;
  for (bool four : {false, true})
    for (bool dbl : {true, false}) {
      PlotSeries s;
      s.label = fmt::format("{}, {}", four ? "4-point" : "2-point", dbl ? "double" : "float");
      s.emphasize = four && dbl;
      for (int k = 2; k <= 28; k++) {  // h = 10^(-k/4): 10^-0.5 .. 10^-7
        const double h = std::pow(10.0, -k / 4.0);
        const double e = dbl ? check_rmsnorm<double>(false, four, h, N, C, 1).max_rel
                             : check_rmsnorm<float>(false, four, h, N, C, 1).max_rel;
        s.x.push_back(h), s.y.push_back(std::max(e, 1e-16));
      }
      p.series.push_back(std::move(s));
    }
  PlotSeries bar;
  bar.label = "rtol 1e-6";
  bar.x = {1e-7, 1e0}, bar.y = {1e-6, 1e-6};
  p.series.push_back(bar);
  p.xmin = 1e-7, p.xmax = 1, p.ymin = 1e-12, p.ymax = 10;
  return render_svg(p);
}

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 01: hand-written backward and finite-difference checks"};
  int N = 6, C = 13;
  std::string figure;
  app.add_option("--rows", N, "rows of the RMSNorm input")->capture_default_str();
  app.add_option("--channels", C, "channels of the RMSNorm input")->capture_default_str();
  app.add_option("--figure", figure,
                 "also write the error-against-h curve of part 1 as an SVG file");
  CLI11_PARSE(app, argc, argv);
  bool ok = true;
  if (!figure.empty()) {
    std::FILE* f = std::fopen(figure.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "error: cannot write '%s'\n", figure.c_str());
      return 2;
    }
    const std::string svg = h_sweep_svg(N, C);
    std::fwrite(svg.data(), 1, svg.size(), f);
    std::fclose(f);
  }

  std::printf("1. RMSNorm backward vs finite differences, all %d entries of x (%dx%d)\n", N * C, N,
              C);
  std::printf("   %-8s %-8s %12s %12s\n", "h", "stencil", "double", "float");
  for (double h : {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6})
    for (bool four : {false, true}) {
      ErrorStats d = check_rmsnorm<double>(false, four, h, N, C, 1);
      ErrorStats f = check_rmsnorm<float>(false, four, h, N, C, 1);
      std::printf("   %-8.0e %-8s %12.2e %12.2e\n", h, four ? "4-point" : "2-point", d.max_rel,
                  f.max_rel);
    }
  ErrorStats good = check_rmsnorm<double>(false, true, 1e-3, N, C, 1);
  std::printf("   chosen: double, 4-point, h = 1e-3: max rel err %.2e -> %s\n", good.max_rel,
              good.ok() ? "PASS" : "FAIL");
  ok &= good.ok();

  ErrorStats bad = check_rmsnorm<double>(true, true, 1e-3, N, C, 1);
  std::printf(
      "\n2. the buggy backward (1/rms treated as constant): max rel err %.2e, %zu of %zu "
      "entries fail -> %s\n",
      bad.max_rel, bad.failures, bad.count, bad.ok() ? "NOT CAUGHT" : "caught");
  ok &= !bad.ok();

  std::printf("\n3. the whole model (2 layers, d_model 32), sampled entries of every tensor\n");
  ModelConfig cfg = model_preset("tiny");
  cfg.n_layer = 2, cfg.d_model = 32, cfg.n_head = 2, cfg.d_ff = 48, cfg.context = 16;
  Transformer<double> model(cfg, 2);
  ModelCheckOptions o;
  ErrorStats all(o.rtol, o.atol);
  for (const auto& t : gradcheck_model(model, o)) {
    std::printf("   %-28s %6zu entries  max rel err %.2e\n", t.name.c_str(), t.stats.count,
                t.stats.max_rel);
    all.merge(t.stats);
  }
  std::printf("   whole model: max rel err %.2e over %zu entries -> %s\n", all.max_rel, all.count,
              all.ok() ? "PASS" : "FAIL");
  ok &= all.ok();

  // 4. The whole model's best step is smaller than one op's: RMSNorm amplifies the tiny embedding
  //    rows (entries ~0.02), so the loss curves sharply in their coordinates and a large h costs
  //    truncation; a small h costs round-off. The worst relative error over every tensor and
  //    seeds 1-3 at each width and step:
  std::printf(
      "\n4. choosing h for the whole model: worst max rel err over all tensors, seeds 1-3\n");
  std::printf("   %-8s %12s %12s %12s\n", "d_model", "h = 1e-3", "h = 3e-4", "h = 1e-4");
  for (int width : {8, 16, 32, 64}) {
    std::printf("   %-8d", width);
    for (double h : {1e-3, 3e-4, 1e-4}) {
      ModelConfig c = cfg;
      c.d_model = width, c.d_ff = width * 3 / 2;
      double worst = 0;
      for (uint64_t seed : {1, 2, 3}) {
        Transformer<double> m(c, 2);
        ModelCheckOptions mo;
        mo.h = h, mo.seed = seed;
        for (const auto& t : gradcheck_model(m, mo)) worst = std::max(worst, t.stats.max_rel);
      }
      std::printf(" %12.2e", worst);
      if (h == ModelCheckOptions{}.h)
        ok &= worst <= ModelCheckOptions{}.rtol;  // the default passes
    }
    std::printf("\n");
  }
  return ok ? 0 : 1;
}
