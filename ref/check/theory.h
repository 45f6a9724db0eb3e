// The exact, deterministic checks of docs/SCALE_VECTORS.md §6, run on the real model (double
// precision). Each returns numbers; tests assert on them and the chapters print them.
//
//  1. folding         every Input-type scale folds into its linear map (logits unchanged to
//                     round-off); folding an Output-type scale the same way changes the logits
//  2. preconditioner  one plain-GD step on (W, γ) moves w̃_j = γ_j w_j by
//                     -lr (γ_j² g_j + w_j Σ_f w_{f,j}ᵀ g_{f,j}) + O(lr²)   (Theorem 2.2; the sum
//                     couples the branches that share γ)
//  3. conservation    γ_j² - Σ_f ‖w_{f,j}‖² is constant under gradient flow without weight decay
//  4. Theorem 3.1     at the same effective weights, dual placement decreases the loss at least as
//                     fast (first order) as input-only placement
//  5. Theorem 3.2     with γ = β α one GD step moves γ by -lr (β² I + α αᵀ) ∇_γ L + O(lr²)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../model/transformer.h"

namespace scalevec {

// A small model and batch for the checks: 2 layers, d_model 16, 2 heads, d_ff 32, context 8,
// batch 2, with the given scale configuration.
ModelConfig theory_config(const ScaleConfig& sc);

// Sets every scale parameter to a random value (γ, α, u in [0.5, 1.5], β in [0.5, 1.5]) so that
// no check passes because a scale happens to be 1.
void randomize_scales(Transformer<double>& m, uint64_t seed);

// A model of theory_config(sc) with the given norm eps: initialised from `seed`, random scales,
// and the gradient of a random batch (2 x 8 tokens) in m.grads. Returns the loss.
double random_model_gradient(Transformer<double>& m, uint64_t seed);

// ---- 1. folding
struct FoldResult {
  std::string site;  // e.g. "layers.0.attn_norm"
  ScaleType type;
  std::string targets;  // the maps folded into
  double change;        // max |Δ logits| / max |logits| after the fold
};
std::vector<FoldResult> fold_check(const ScaleConfig& sc, uint64_t seed);

// ---- 2. preconditioner (Theorem 2.2)
struct PrecondResult {
  double lr;
  double rel_err;   // ‖Δw̃ - predicted‖ / ‖predicted‖ over the site's branches: O(lr)
  double coupling;  // share of the predicted step that comes from the other branches' terms
};
// On the attention-input site of layer 0 (shared γ for q, k, v, or HG's γ_f when sc.hg) of a
// fresh model with random scales ...
std::vector<PrecondResult> precond_check(const ScaleConfig& sc, const std::vector<double>& lrs,
                                         uint64_t seed);
// ... or of a given model (plain-γ scales; e.g. a trained one) on a given batch of B x T tokens.
std::vector<PrecondResult> precond_check(Transformer<double>& m, const std::vector<int32_t>& tokens,
                                         const std::vector<int32_t>& targets, int B, int T,
                                         const std::vector<double>& lrs);

// ---- 3. conservation
struct ConservationResult {
  double lr;
  int steps;
  double drift;         // max_j |Q_j(end) - Q_j(0)| for Q_j = γ_j² - Σ_f ‖w_{f,j}‖²
  double drift_gamma2;  // the same for γ_j² alone (which does move): the yardstick
};
// Plain GD for `time` units of gradient-flow time (steps = time / lr) with weight decay wd.
ConservationResult conservation_check(const ScaleConfig& sc, double lr, double time, double wd,
                                      uint64_t seed);

// ---- 4. Theorem 3.1
struct DualResult {
  double grad_sq_input;          // ‖∇L‖² of the input-only model (all parameters)
  double grad_sq_dual;           // ‖∇L‖² of the dual model at the same effective weights
  double grad_sq_u;              // ‖∂L/∂u‖²: the dual model's extra term
  double loss_input, loss_dual;  // equal: same function
  double drop_input, drop_dual;  // measured L(θ) - L(θ - lr ∇L), lr = `lr`
};
// u_scale = 1: u = 1 (initialization; W of both models equal). Otherwise u is random in
// [1 - u_spread, 1 + u_spread] and the input-only model gets W' = diag(u) W (same effective map).
DualResult dual_check(double lr, double u_spread, uint64_t seed);

// ---- 5. Theorem 3.2
struct MagDirResult {
  double lr;
  double rel_err;        // ‖Δγ - predicted‖ / ‖predicted‖: O(lr)
  double plain_rel_err;  // the same against the plain-γ prediction -lr ∇_γ L: O(1)
};
std::vector<MagDirResult> magdir_check(const std::vector<double>& lrs, uint64_t seed);

}  // namespace scalevec
