// Chapter 05: weight decay on Input-Norms vs Output-Norms.
//  1. the classification, derived from the structure, on a model with QK-Norm and post-norms, and
//     what each weight-decay policy (none / all / iwd) decays
//  2. exact: the types agree with what folding shows (Input folds, Output does not)
//  3. why an Output γ is expressive: with QK-Norm, |attention logit| <= sqrt(hs)·|γ_q|·|γ_k|,
//     so shrinking γ (what weight decay does) caps how sharp attention can be
//  4. the experiment at a small size: QK-Norm model with --wd-policy none / iwd / all
// Exit status 0 iff the checks hold and every run finishes.
#include <cmath>
#include <cstdio>
#include <map>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/common.h"
#include "ref/check/theory.h"
#include "ref/ops/attention.h"
#include "ref/ops/rmsnorm.h"
#include "ref/rng.h"
#include "ref/train/optim.h"

using namespace scalevec;

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 05: weight decay on Input-Norm vs Output-Norm scale vectors"};
  int steps = 300, seeds = 2;
  app.add_option("--steps", steps, "training steps per run")->capture_default_str();
  app.add_option("--seeds", seeds, "seeds per arm")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  ScaleConfig sc;
  sc.qk_norm = true, sc.post_norm = true;
  const Transformer<float> m(theory_config(sc), 0);
  std::printf("1. scale vectors of a 2-layer model with QK-Norm and post-norms\n");
  std::printf("   %-30s %-7s %-6s %-6s %-6s  %s\n", "tensor", "type", "none", "all", "iwd",
              "folds into / why not");
  std::map<std::string, ScaleType> type_of;
  for (const auto& p : m.layout().params()) {
    if (p.role != Role::Scale) continue;
    auto decays = [&](WdPolicy w) {
      DecayRule r;
      r.scale_policy = w;
      return r.decays(p) ? "decay" : "-";
    };
    std::printf("   %-30s %-7s %-6s %-6s %-6s  %s\n", p.name.c_str(), scale_type_name(p.scale_type),
                decays(WdPolicy::None), decays(WdPolicy::All), decays(WdPolicy::Iwd),
                p.fold.c_str());
    type_of[p.name.substr(0, p.name.rfind('.'))] = p.scale_type;
  }

  std::printf("\n2. the types agree with folding\n");
  for (const auto& r : fold_check(sc, 5)) {
    const bool agrees =
        (r.type == ScaleType::Input) == (r.change <= 1e-13) && type_of.at(r.site) == r.type;
    ok &= agrees;
    std::printf("   %-30s %-7s fold changes logits by %.1e  %s\n", r.site.c_str(),
                scale_type_name(r.type), r.change, agrees ? "agrees" : "DISAGREES");
  }

  // [snippet:qk_bound]
  // With QK-Norm, q = γ_q ⊙ N(q_raw) per head, and |N(·)| = sqrt(hs), so by Cauchy-Schwarz
  //     |q·k| / sqrt(hs) <= max|γ_q| max|γ_k| · hs / sqrt(hs) = sqrt(hs) · max|γ_q| max|γ_k|.
  // The γ of an Output-Norm sets the largest attention logit: decay it and attention flattens.
  const int hs = 32, T = 64;
  Rng rng(9);
  std::printf("\n3. largest attention logit with QK-Norm (head size %d, %d random tokens)\n", hs,
              T);
  std::printf("   %-8s %-12s %-12s %s\n", "|γ|", "max logit", "bound", "max attention weight");
  for (double g : {1.0, 0.5, 0.25}) {
    std::vector<double> q(T * hs), k(T * hs), n(T * hs), r(T), y(T * hs), att(T * T);
    for (auto& v : q) v = rng.normal();
    for (auto& v : k) v = rng.normal();
    for (int i = 0; i < T * hs; i++) k[i] += 2.0 * q[i];  // keys aligned with their queries
    rmsnorm_forward(n.data(), r.data(), q.data(), T, hs, hs, 0.0);
    for (int i = 0; i < T * hs; i++) q[i] = g * n[i];
    rmsnorm_forward(n.data(), r.data(), k.data(), T, hs, hs, 0.0);
    for (int i = 0; i < T * hs; i++) k[i] = g * n[i];
    double max_logit = 0;
    for (int i = 0; i < T; i++)
      for (int j = 0; j <= i; j++) {
        double s = 0;
        for (int c = 0; c < hs; c++) s += q[i * hs + c] * k[j * hs + c];
        max_logit = std::max(max_logit, std::abs(s) / std::sqrt(double(hs)));
      }
    attention_forward(y.data(), att.data(), q.data(), k.data(), k.data(), hs, 1, T, 1, hs);
    double max_w = 0;
    for (int i = 1; i < T; i++)  // row 0 attends to itself only
      for (int j = 0; j <= i; j++) max_w = std::max(max_w, att[i * T + j]);
    const double bound = std::sqrt(double(hs)) * g * g;
    ok &= max_logit <= bound * (1 + 1e-12);
    std::printf("   %-8.2f %-12.3f %-12.3f %.3f\n", g, max_logit, bound, max_w);
  }
  // [end]

  std::printf("\n4. training a QK-Norm model: weight decay on no gain / Input gains / all gains\n");
  ModelConfig qk = chapter::model("baseline");
  qk.sc.qk_norm = true;
  if (!chapter::experiment({{"qk-norm, wd none", qk, "none"},
                            {"qk-norm, wd iwd", qk, "iwd"},
                            {"qk-norm, wd all", qk, "all"}},
                           steps, seeds))
    return 2;
  return ok ? 0 : 1;
}
