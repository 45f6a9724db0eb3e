// Chapter 07: dual placement (DP) and dual placement with an intermediate norm (DNP).
//  1. Theorem 3.1 at u = 1, where the dual and the input-only model are the same function with
//     the same W: the dual model's first-order loss decrease is the input-only one plus ‖∂L/∂u‖²
//  2. away from u = 1 (same effective weights, W' = diag(u) W) the inequality is not guaranteed
//  3. the experiment at a small size: baseline vs dp vs dnp
// (What DNP does to a magnitude β in front of it is chapter 08's part 3.)
// Exit status 0 iff the checks of 1 hold and every run finishes.
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/common.h"
#include "ref/check/theory.h"

using namespace scalevec;

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 07: dual placement (DP) and DNP"};
  int steps = 300, seeds = 2;
  app.add_option("--steps", steps, "training steps per run")->capture_default_str();
  app.add_option("--seeds", seeds, "seeds per arm")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  std::printf("1. Theorem 3.1 at u = 1 (2-layer model, random γ, one GD step of lr 1e-3)\n");
  const DualResult r = dual_check(1e-3, 0.0, 3);
  std::printf("   losses                 input-only %.15f   dual %.15f\n", r.loss_input,
              r.loss_dual);
  std::printf("   |∇L|²                  input-only %.9e   dual %.9e\n", r.grad_sq_input,
              r.grad_sq_dual);
  std::printf("   |∂L/∂u|²               %.9e   (dual - input-only - this = %.1e)\n", r.grad_sq_u,
              r.grad_sq_dual - r.grad_sq_input - r.grad_sq_u);
  std::printf("   measured loss drop     input-only %.9e   dual %.9e\n", r.drop_input, r.drop_dual);
  ok &= std::abs(r.grad_sq_dual - r.grad_sq_input - r.grad_sq_u) <= 1e-12 * r.grad_sq_input;
  ok &= r.drop_dual > r.drop_input;

  std::printf(
      "\n2. the same comparison with u drawn from [1 - s, 1 + s] (input-only W' = diag(u) W)\n");
  std::printf("   %-6s %-16s %-16s %s\n", "s", "|∇L|² input-only", "|∇L|² dual",
              "dual at least as fast?");
  for (double s : {0.1, 0.3, 0.5}) {
    const DualResult x = dual_check(1e-3, s, 3);
    std::printf("   %-6.1f %-16.9e %-16.9e %s\n", s, x.grad_sq_input, x.grad_sq_dual,
                x.grad_sq_dual >= x.grad_sq_input ? "yes" : "no");
  }

  std::printf("\n3. training: baseline vs dp vs dnp\n");
  if (!chapter::experiment({{"baseline", chapter::model("baseline")},
                            {"dp", chapter::model("dp")},
                            {"dnp", chapter::model("dnp")}},
                           steps, seeds))
    return 2;
  return ok ? 0 : 1;
}
