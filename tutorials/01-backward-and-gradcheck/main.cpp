// Chapter 01: a hand-written backward and the finite-difference check that proves it.
//  1. the check on one op (RMSNorm), every entry, 2-point vs 4-point stencil, float vs double
//  2. the same check catching a plausible bug (treating 1/rms(x) as a constant)
//  3. the whole model, every parameter tensor
// Exit status 0 iff the correct backwards pass and the broken one is caught.
#include <cmath>
#include <cstdio>
#include <vector>

#include <CLI/CLI.hpp>

#include "ref/check/gradcheck.h"
#include "ref/check/model_gradcheck.h"
#include "ref/ops/rmsnorm.h"
#include "ref/rng.h"

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
  for (size_t i = 0; i < x.size(); i++) s.add(double(dx[i]), fd_derivative(&x[i], loss, h, four_point));
  // [end]
  return s;
}

int main(int argc, char** argv) {
  CLI::App app{"Chapter 01: hand-written backward and finite-difference checks"};
  int N = 6, C = 13;
  app.add_option("--rows", N, "rows of the RMSNorm input")->capture_default_str();
  app.add_option("--channels", C, "channels of the RMSNorm input")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  std::printf("1. RMSNorm backward vs finite differences, all %d entries of x (%dx%d)\n", N * C, N, C);
  std::printf("   %-8s %-8s %12s %12s\n", "h", "stencil", "double", "float");
  for (double h : {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6})
    for (bool four : {false, true}) {
      ErrorStats d = check_rmsnorm<double>(false, four, h, N, C, 1);
      ErrorStats f = check_rmsnorm<float>(false, four, h, N, C, 1);
      std::printf("   %-8.0e %-8s %12.2e %12.2e\n", h, four ? "4-point" : "2-point", d.max_rel, f.max_rel);
    }
  ErrorStats good = check_rmsnorm<double>(false, true, 1e-3, N, C, 1);
  std::printf("   chosen: double, 4-point, h = 1e-3: max rel err %.2e -> %s\n", good.max_rel,
              good.ok() ? "PASS" : "FAIL");
  ok &= good.ok();

  ErrorStats bad = check_rmsnorm<double>(true, true, 1e-3, N, C, 1);
  std::printf("\n2. the buggy backward (1/rms treated as constant): max rel err %.2e, %zu of %zu "
              "entries fail -> %s\n", bad.max_rel, bad.failures, bad.count,
              bad.ok() ? "NOT CAUGHT" : "caught");
  ok &= !bad.ok();

  std::printf("\n3. the whole model (2 layers, d_model 32), sampled entries of every tensor\n");
  ModelConfig cfg = model_preset("tiny");
  cfg.n_layer = 2, cfg.d_model = 32, cfg.n_head = 2, cfg.d_ff = 48, cfg.context = 16;
  Transformer<double> model(cfg, 2);
  ModelCheckOptions o;
  ErrorStats all(o.rtol, o.atol);
  for (const auto& t : gradcheck_model(model, o)) {
    std::printf("   %-28s %6zu entries  max rel err %.2e\n", t.name.c_str(), t.stats.count, t.stats.max_rel);
    all.merge(t.stats);
  }
  std::printf("   whole model: max rel err %.2e over %zu entries -> %s\n", all.max_rel, all.count,
              all.ok() ? "PASS" : "FAIL");
  ok &= all.ok();
  return ok ? 0 : 1;
}
