// Chapter 04: why scale vectors matter although they add no expressivity.
//  1. folding: every Input-type γ folds into its linear map (logits unchanged to round-off);
//     an Output-type γ (QK-Norm, post-norm) does not
//  2. Theorem 2.2: one GD step moves w̃_j = γ_j w_j by -lr (γ_j² I + w_j w_jᵀ) g_j + O(lr²)
//  3. γ_j² - Σ_f ‖w_{f,j}‖² is conserved by gradient flow; weight decay breaks it
// Exit status 0 iff every check holds.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "ref/check/theory.h"

using namespace scalevec;

int main(int argc, char** argv) {
  CLI::App app{"Chapter 04: folding and the self-amplifying preconditioner"};
  uint64_t seed = 5;
  app.add_option("--seed", seed, "seed of the random model")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  ScaleConfig arch;  // baseline scales plus both Output-Norm switches
  arch.qk_norm = true, arch.post_norm = true;
  std::printf("1. folding every scale of a baseline model with QK-Norm and post-norms (2 layers)\n");
  std::printf("   %-26s %-7s %-48s %s\n", "scale", "type", "folded into", "max |Δlogits| / max |logits|");
  for (const auto& r : fold_check(arch, seed)) {
    const bool input = r.type == ScaleType::Input;
    const bool pass = input ? r.change <= 1e-13 : r.change >= 1e-8;
    ok &= pass;
    std::printf("   %-26s %-7s %-48s %.2e  %s\n", r.site.c_str(), scale_type_name(r.type),
                r.targets.c_str(), r.change, pass ? (input ? "folds" : "cannot fold") : "FAIL");
  }

  std::printf("\n2. Theorem 2.2 on layer 0's attention-input γ (shared by q, k, v)\n");
  std::printf("   %-8s %-26s %s\n", "lr", "|Δw̃ - predicted| / |pred.|", "share of the step from the other branches");
  const auto pc = precond_check(ScaleConfig{}, {1e-1, 1e-2, 1e-3, 1e-4}, seed);
  for (const auto& r : pc) std::printf("   %-8.0e %-26.3e %.2e\n", r.lr, r.rel_err, r.coupling);
  ok &= pc[2].rel_err < 1e-4 && pc[1].rel_err / pc[2].rel_err > 8 && pc[1].rel_err / pc[2].rel_err < 12;

  std::printf("\n3. conservation of γ_j² - Σ_f ‖w_{f,j}‖² over 2 time units of gradient descent\n");
  std::printf("   %-8s %-6s %-7s %-12s %s\n", "lr", "steps", "wd", "drift", "drift of γ_j² alone");
  for (double wd : {0.0, 0.1})
    for (double lr : {1e-1, 1e-2}) {
      const auto c = conservation_check(ScaleConfig{}, lr, 2.0, wd, seed);
      std::printf("   %-8.0e %-6d %-7.1f %-12.3e %.3e\n", lr, c.steps, wd, c.drift, c.drift_gamma2);
      if (wd == 0 && lr == 1e-2) ok &= c.drift < 1e-2 * c.drift_gamma2;
      if (wd > 0 && lr == 1e-2) ok &= c.drift > 0.1 * c.drift_gamma2;
    }
  std::printf("\n%s\n", ok ? "all checks hold" : "A CHECK FAILED");
  return ok ? 0 : 1;
}
