// Chapter 08: the magnitude-direction reparameterization γ = β α.
//  1. Theorem 3.2: one GD step moves γ by -lr (β² I + α αᵀ) ∇_γ L + O(lr²), not by -lr ∇_γ L
//  2. magdir-normalized (γ = β α / rms(α)): the direction's gradient has no radial part
//  3. the experiment at a small size: baseline vs magdir vs magdir-normalized
// Exit status 0 iff the checks hold and every run finishes.
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/check/theory.h"

using namespace scalevec;

int main(int argc, char** argv) {
  CLI::App app{"Chapter 08: magnitude-direction reparameterization"};
  int steps = 300, seeds = 2;
  app.add_option("--steps", steps, "training steps per run")->capture_default_str();
  app.add_option("--seeds", seeds, "seeds per arm")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  std::printf("1. Theorem 3.2 on layer 0's attention-input γ = β α\n");
  std::printf("   %-8s %-30s %s\n", "lr", "|Δγ - predicted| / |pred.|", "|Δγ - (-lr ∇γ)| / |pred.|");
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
      na += m.params[p.offset + i] * m.params[p.offset + i], ng += m.grads[p.offset + i] * m.grads[p.offset + i];
    }
    worst = std::max(worst, std::abs(dot) / std::sqrt(na * ng));
  }
  std::printf("   max |cos(α, ∂L/∂α)| = %.2e  (the direction only rotates; β carries the size)\n", worst);
  ok &= worst < 1e-10;

  std::printf("\n3. training: baseline vs magdir vs magdir-normalized\n");
  if (!chapter::experiment({{"baseline", chapter::model("baseline")}, {"magdir", chapter::model("magdir")},
                            {"magdir-normalized", chapter::model("magdir-normalized")}},
                           steps, seeds))
    return 2;
  return ok ? 0 : 1;
}
