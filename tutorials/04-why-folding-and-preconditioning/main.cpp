// Chapter 04: why scale vectors matter although they add no expressivity.
//  1. folding: every Input-type γ folds into its linear map (logits unchanged to round-off);
//     an Output-type γ (QK-Norm, post-norm) does not
//  2. Theorem 2.2: one GD step moves w̃_j = γ_j w_j by -lr (γ_j² I + w_j w_jᵀ) g_j + O(lr²)
//  3. γ_j² - Σ_f ‖w_{f,j}‖² is conserved by gradient flow; weight decay breaks it
// Exit status 0 iff every check holds.
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/common.h"
#include "ref/check/theory.h"
#include "ref/train/data.h"
#include "ref/train/optim.h"
#include "tools/plot_svg.h"

using namespace scalevec;

// [snippet:conserved]
// Q_j = γ_j² − Σ_f ‖w_{f,j}‖² for the attention-input γ of layer 0, f = q, k, v: channel j of
// the normalized input is scaled by γ_j and then read by column j of each of the three matrices.
static std::vector<double> conserved(const Transformer<float>& m) {
  const ParamLayout& L = m.layout();
  const ParamInfo& g = L.get("layers.0.attn_norm.gamma");
  std::vector<double> q(g.numel);
  for (size_t j = 0; j < g.numel; j++) q[j] = std::pow(double(m.params[g.offset + j]), 2);
  for (const char* w : {"layers.0.attn.wq", "layers.0.attn.wk", "layers.0.attn.wv"}) {
    const ParamInfo& W = L.get(w);  // (out, in): column j is entry j of every row
    for (int r = 0; r < W.shape[0]; r++)
      for (size_t j = 0; j < g.numel; j++)
        q[j] -= std::pow(double(m.params[W.offset + r * g.numel + j]), 2);
  }
  return q;
}
// [end]

// A real training run of the chapter model on the fortunes corpus, recording Q_j every `every`
// steps: rows of (step, Q_0 .. Q_{C-1}).
struct Tracked {
  std::string name, title;
  std::vector<int> steps;
  std::vector<std::vector<double>> q, gamma2;  // per record: per channel
  double shrink = 1;  // decoupled weight decay multiplies every parameter by this each step
};
static Tracked track(const TextData& data, const std::string& name, const std::string& title,
                     const std::string& optimizer, double lr, double wd, int steps, int every) {
  const ModelConfig cfg = chapter::model("baseline");
  TrainConfig tc = chapter::training(steps, 1);
  tc.optimizer = parse_optimizer(optimizer), tc.lr = lr, tc.weight_decay = wd, tc.sgd_momentum = 0;
  tc.wd_policy = WdPolicy::All, tc.schedule = ScheduleKind::Constant, tc.warmup = 0,
  tc.grad_clip = 0;
  Transformer<float> m(cfg, tc.batch);
  m.init(tc.seed);
  auto opt = make_optimizer<float>(m.layout(), tc);
  Rng rng(tc.seed);
  Batch b;
  Tracked t{name, title, {}, {}, {}, 1 - lr * wd};
  const ParamInfo& g = m.layout().get("layers.0.attn_norm.gamma");
  auto record = [&](int step) {
    t.steps.push_back(step);
    t.q.push_back(conserved(m));
    std::vector<double> g2(g.numel);
    for (size_t j = 0; j < g.numel; j++) g2[j] = std::pow(double(m.params[g.offset + j]), 2);
    t.gamma2.push_back(g2);
  };
  record(0);
  for (int s = 1; s <= steps; s++) {
    sample_batch(b, data.train, tc.batch, cfg.context, rng);
    m.forward(b.inputs.data(), b.targets.data(), tc.batch, cfg.context);
    m.zero_grad();
    m.backward();
    opt->step(m.params.data(), m.grads.data(), 1.0);
    if (s % every == 0) record(s);
  }
  return t;
}

// max_j |X_j(end) − X_j(0)|
static double drift(const std::vector<std::vector<double>>& x) {
  double d = 0;
  for (size_t j = 0; j < x.front().size(); j++)
    d = std::max(d, std::abs(x.back()[j] - x.front()[j]));
  return d;
}

// One figure per run: Q_j against the step for the first `channels` channels, on a shared y range.
static void draw(const std::vector<Tracked>& runs, const std::string& dir, int channels) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& t : runs)
    for (const auto& row : t.q)
      for (int j = 0; j < channels; j++) lo = std::min(lo, row[j]), hi = std::max(hi, row[j]);
  for (const auto& t : runs) {
    LinePlot p;
    p.title = t.title;
    p.subtitle = fmt::format(
        "γ_j² − Σ_f ‖w_f,j‖² of layer 0's attention-input γ, f = q, k, v, for {} "
        "of its {} channels j; 2-layer width-64 model, fortunes, batch 8",
        channels, t.q.front().size());
    p.xlabel = "training step";
    p.ylabel = "γ_j² − Σ_f ‖w_f,j‖²";
    p.legend_title = "channel j: change over the run";
    for (int j = 0; j < channels; j++) {
      PlotSeries s;
      for (size_t k = 0; k < t.steps.size(); k++)
        s.x.push_back(t.steps[k]), s.y.push_back(t.q[k][j]);
      s.label = fmt::format("j = {}: {:+.1e}", j, t.q.back()[j] - t.q.front()[j]);
      p.series.push_back(std::move(s));
    }
    if (t.shrink < 1) {  // the law with decay: Q_j(t) = Q_j(0) (1 − lr λ)^{2t}, drawn for j = 0
      PlotSeries law;
      for (size_t k = 0; k < t.steps.size(); k++)
        law.x.push_back(t.steps[k]),
            law.y.push_back(t.q[0][0] * std::pow(t.shrink, 2.0 * t.steps[k]));
      law.label = "j = 0 predicted: Q_0(0) (1 − lr λ)^2t";
      law.emphasize = true;
      p.series.push_back(std::move(law));
    }
    const double pad = 0.05 * (hi - lo);
    p.xmin = 0, p.xmax = t.steps.back(), p.ymin = lo - pad, p.ymax = hi + pad;
    const std::string path = dir + "/conservation-" + t.name + ".svg";
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw Error(fmt::format("cannot write '{}'", path));
    const std::string svg = render_svg(p);
    std::fwrite(svg.data(), 1, svg.size(), f);
    std::fclose(f);
  }
}

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 04: folding and the self-amplifying preconditioner"};
  uint64_t seed = 5;
  int train_steps = 200;
  std::string figures;
  app.add_option("--seed", seed, "seed of the random model")->capture_default_str();
  app.add_option("--train-steps", train_steps,
                 "steps of each training run of part 4 (0 = skip part 4)")
      ->capture_default_str();
  app.add_option("--figures", figures,
                 "write part 4's figures (conservation-*.svg) into this directory");
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  ScaleConfig arch;  // baseline scales plus both Output-Norm switches
  arch.qk_norm = true, arch.post_norm = true;
  std::printf(
      "1. folding every scale of a baseline model with QK-Norm and post-norms (2 layers)\n");
  std::printf("   %-26s %-7s %-48s %s\n", "scale", "type", "folded into",
              "max |Δlogits| / max |logits|");
  for (const auto& r : fold_check(arch, seed)) {
    const bool input = r.type == ScaleType::Input;
    const bool pass = input ? r.change <= 1e-13 : r.change >= 1e-8;
    ok &= pass;
    std::printf("   %-26s %-7s %-48s %.2e  %s\n", r.site.c_str(), scale_type_name(r.type),
                r.targets.c_str(), r.change, pass ? (input ? "folds" : "cannot fold") : "FAIL");
  }

  std::printf("\n2. Theorem 2.2 on layer 0's attention-input γ (shared by q, k, v)\n");
  std::printf("   %-8s %-26s %s\n", "lr", "|Δw̃ - predicted| / |pred.|",
              "share of the step from the other branches");
  const auto pc = precond_check(ScaleConfig{}, {1e-1, 1e-2, 1e-3, 1e-4}, seed);
  for (const auto& r : pc) std::printf("   %-8.0e %-26.3e %.2e\n", r.lr, r.rel_err, r.coupling);
  ok &= pc[2].rel_err < 1e-4 && pc[1].rel_err / pc[2].rel_err > 8 &&
        pc[1].rel_err / pc[2].rel_err < 12;

  std::printf("\n3. conservation of γ_j² - Σ_f ‖w_{f,j}‖² over 2 time units of gradient descent\n");
  std::printf("   %-8s %-6s %-7s %-12s %s\n", "lr", "steps", "wd", "drift", "drift of γ_j² alone");
  for (double wd : {0.0, 0.1})
    for (double lr : {1e-1, 1e-2}) {
      const auto c = conservation_check(ScaleConfig{}, lr, 2.0, wd, seed);
      std::printf("   %-8.0e %-6d %-7.1f %-12.3e %.3e\n", lr, c.steps, wd, c.drift, c.drift_gamma2);
      if (wd == 0 && lr == 1e-2) ok &= c.drift < 1e-2 * c.drift_gamma2;
      if (wd > 0 && lr == 1e-2) ok &= c.drift > 0.1 * c.drift_gamma2;
    }
  if (train_steps > 0) {
    std::printf(
        "\n4. the same quantity over real training runs (%d steps, fortunes, every parameter "
        "decayed where wd > 0)\n",
        train_steps);
    std::printf("   %-22s %-8s %-6s %-24s %s\n", "optimizer", "lr", "wd", "max_j drift of Q_j",
                "max_j drift of γ_j² alone");
    try {
      const TextData data = load_data("", chapter::model("baseline").context);
      const int every = std::max(1, train_steps / 100);
      std::vector<Tracked> runs;
      runs.push_back(track(data, "sgd", "SGD (plain gradient steps), no weight decay", "sgd", 0.02,
                           0.0, train_steps, every));
      runs.push_back(
          track(data, "sgd-wd", "SGD with weight decay 0.1", "sgd", 0.02, 0.1, train_steps, every));
      runs.push_back(
          track(data, "adamw", "AdamW, no weight decay", "adamw", 3e-3, 0.0, train_steps, every));
      const double lrs[] = {0.02, 0.02, 3e-3}, wds[] = {0, 0.1, 0};
      for (size_t i = 0; i < runs.size(); i++)
        std::printf("   %-22s %-8.0e %-6.1f %-24.3e %.3e\n", runs[i].name.c_str(), lrs[i], wds[i],
                    drift(runs[i].q), drift(runs[i].gamma2));
      // With decay the law predicts Q_j(T) = Q_j(0) (1 − lr λ)^{2T}: how far the run is from it.
      const Tracked& w = runs[1];
      double off = 0;
      for (size_t j = 0; j < w.q.front().size(); j++)
        off = std::max(off, std::abs(w.q.back()[j] -
                                     w.q.front()[j] * std::pow(w.shrink, 2.0 * w.steps.back())));
      std::printf(
          "   sgd-wd against Q_j(0) (1 - lr wd)^(2t): max_j |Q_j(end) - predicted| = %.3e\n", off);
      ok &= off < 0.1 * drift(w.q);
      // Plain gradient steps conserve Q to O(lr²) per step, whatever the batch: far less drift
      // than γ² itself shows. Weight decay and AdamW's per-entry scaling both break the law.
      ok &= drift(runs[0].q) < 0.2 * drift(runs[0].gamma2);  // the chapter: "at least five times"
      ok &= drift(runs[1].q) > drift(runs[0].q) && drift(runs[2].q) > drift(runs[2].gamma2);
      if (!figures.empty()) draw(runs, figures, 8);
    } catch (const Error& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      return 2;
    }
  }
  std::printf("\n%s\n", ok ? "all checks hold" : "A CHECK FAILED");
  return ok ? 0 : 1;
}
