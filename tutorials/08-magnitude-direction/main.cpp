// Chapter 08: the magnitude-direction reparameterization γ = β α.
//  1. Theorem 3.2: one GD step moves γ by -lr (β² I + α αᵀ) ∇_γ L + O(lr²), not by -lr ∇_γ L
//  2. magdir-normalized (γ = β α / rms(α)): the direction's gradient has no radial part
//  3. where a magnitude cannot work: a later normalization (DNP on q, k) cancels the β of the
//     input-side magdir γ of q and k, whose gradient is then zero (inspect marks it; `unified`
//     uses plain γ there)
//  4. the experiment at a small size: baseline vs magdir vs magdir-normalized
// Exit status 0 iff the checks hold and every run finishes.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/common.h"
#include "ref/check/theory.h"

using namespace scalevec;

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 08: magnitude-direction reparameterization"};
  int steps = 300, seeds = 2;
  app.add_option("--steps", steps, "training steps per run")->capture_default_str();
  app.add_option("--seeds", seeds, "seeds per arm")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  std::printf("1. Theorem 3.2 on layer 0's attention-input γ = β α\n");
  std::printf("   %-8s %-30s %s\n", "lr", "|Δγ - predicted| / |pred.|",
              "|Δγ - (-lr ∇γ)| / |pred.|");
  const auto r = magdir_check({1e-1, 1e-2, 1e-3, 1e-4}, 3);
  for (const auto& x : r) std::printf("   %-8.0e %-30.3e %.3e\n", x.lr, x.rel_err, x.plain_rel_err);
  ok &= r[2].rel_err < 1e-4 && r[2].plain_rel_err > 0.1;

  std::printf("\n2. magdir-normalized: αᵀ ∂L/∂α over every direction α of a random model\n");
  ModelConfig cfg = theory_config(scale_preset("magdir-normalized"));
  Transformer<double> m(cfg, 2);
  random_model_gradient(m, 3);
  double worst = 0;
  for (const auto& p : m.layout().params()) {
    if (!p.name.ends_with(".alpha")) continue;
    double dot = 0, na = 0, ng = 0;
    for (size_t i = 0; i < p.numel; i++) {
      dot += m.params[p.offset + i] * m.grads[p.offset + i];
      na += m.params[p.offset + i] * m.params[p.offset + i],
          ng += m.grads[p.offset + i] * m.grads[p.offset + i];
    }
    worst = std::max(worst, std::abs(dot) / std::sqrt(na * ng));
  }
  std::printf("   max |cos(α, ∂L/∂α)| = %.2e  (the direction only rotates; β carries the size)\n",
              worst);
  ok &= worst < 1e-10;

  std::printf(
      "\n3. magnitudes cancelled by a later normalization (hg + dnp q,k + magdir, eps 1e-14)\n");
  // [snippet:cancelled]
  ScaleConfig sc = scale_preset("unified");
  sc.skip_cancelled_magnitude = false;  // keep β where DNP cancels it, to see its gradient
  ModelConfig cancel_cfg = theory_config(sc);
  cancel_cfg.norm_eps = 1e-14;  // the cancellation is exact up to eps
  Transformer<double> mc(cancel_cfg, 2);
  random_model_gradient(mc, 3);
  for (const auto& p : mc.layout().params()) {
    if (!p.name.ends_with(".beta") || p.name.find("layers.0.") != 0) continue;
    const double g = mc.grads[p.offset];
    std::printf("   %-32s dL/dβ = %+.3e  %s\n", p.name.c_str(), g,
                p.note.empty() ? "" : "(marked: cancelled)");
    if (!p.note.empty()) ok &= std::abs(g) < 1e-12;
  }
  // [end]
  // "Zero up to eps": with a post-norm at initialization the normalized signal is small (small
  // matrices make it), so eps is not negligible there. The cancelled β of γ_v (a post-norm after
  // the attention, which is linear in v) at the default eps and at eps 1e-14:
  std::printf(
      "   the cancelled β of γ_v under a post-norm (unified --post-norm "
      "--keep-cancelled-magnitude):\n");
  for (double eps : {1e-5, 1e-14}) {
    ScaleConfig ps = scale_preset("unified");
    ps.skip_cancelled_magnitude = false, ps.post_norm = true;
    ModelConfig pc = theory_config(ps);
    pc.norm_eps = eps;
    Transformer<double> mp(pc, 2);
    random_model_gradient(mp, 3);
    const ParamInfo& bv = mp.layout().get("layers.0.attn_norm.v.beta");
    double others = 0;  // the largest |dL/dβ| of a β that no normalization cancels
    for (const auto& p : mp.layout().params())
      if (p.name.ends_with(".beta") && p.note.empty())
        others = std::max(others, std::abs(mp.grads[p.offset]));
    std::printf("   eps %.0e: |dL/dβ_v| = %.2e, largest |dL/dβ| of an uncancelled β = %.2e\n", eps,
                std::abs(mp.grads[bv.offset]), others);
    if (eps < 1e-10) ok &= std::abs(mp.grads[bv.offset]) < 1e-6 * others;
  }

  std::printf("\n4. training: baseline vs magdir vs magdir-normalized\n");
  if (!chapter::experiment({{"baseline", chapter::model("baseline")},
                            {"magdir", chapter::model("magdir")},
                            {"magdir-normalized", chapter::model("magdir-normalized")}},
                           steps, seeds))
    return 2;
  return ok ? 0 : 1;
}
