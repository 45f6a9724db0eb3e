// Chapter 09: the unified strategy (HG + DNP + magnitude-direction + IWD).
//  1. what it places where, with types and weight decay, and its parameter overhead
//  2. its cost per training step against the baseline (tiny preset, measured here)
//  3. the experiment at a small size: baseline vs unified
// Exit status 0 iff every run finishes; the timing (one thread unless --threads) is reported,
// never asserted.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/common.h"
#include "ref/rng.h"
#include "ref/train/optim.h"

using namespace scalevec;

// Median seconds of one training step (forward, backward, AdamW) over `steps` steps.
static double step_seconds(const ModelConfig& mc, int B, int steps) {
  Transformer<float> m(mc, B);
  m.init(1);
  TrainConfig tc = train_preset("tiny");
  auto opt = make_optimizer<float>(m.layout(), tc);
  Rng rng(2);
  std::vector<int32_t> tok((size_t)B * mc.context), tgt(tok.size());
  for (size_t i = 0; i < tok.size(); i++)
    tok[i] = int32_t(rng.below(256)), tgt[i] = int32_t(rng.below(256));
  std::vector<double> t;
  for (int s = 0; s < steps + 1; s++) {
    const auto t0 = std::chrono::steady_clock::now();
    m.forward(tok.data(), tgt.data(), B, mc.context);
    m.zero_grad();
    m.backward();
    opt->step(m.params.data(), m.grads.data(), 1.0);
    if (s > 0)
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 09: the unified scale-vector strategy"};
  int steps = 300, seeds = 2, timing_steps = 10, threads = 1;
  app.add_option("--steps", steps, "training steps per run")->capture_default_str();
  app.add_option("--seeds", seeds, "seeds per arm")->capture_default_str();
  app.add_option("--timing-steps", timing_steps, "steps timed per model and round (0 = skip)")
      ->capture_default_str();
  app.add_option("--threads", threads, "CPU threads of the timing (0 = OpenMP default)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  ModelConfig base = model_preset("tiny"), uni = model_preset("tiny");
  uni.set_scale("unified");
  const Transformer<float> mb(base, 0), mu(uni, 0);
  std::printf("1. unified on the tiny preset: the scale vectors of one layer\n");
  std::printf("   %-30s %-6s %-6s %-7s %s\n", "tensor", "numel", "type", "iwd",
              "folds into / why not");
  DecayRule iwd;
  iwd.scale_policy = WdPolicy::Iwd;
  for (const auto& p : mu.layout().params())
    if (p.role == Role::Scale && (p.name.starts_with("layers.0.") || p.name.starts_with("final")))
      std::printf("   %-30s %-6zu %-6s %-7s %s\n", p.name.c_str(), p.numel,
                  scale_type_name(p.scale_type), iwd.decays(p) ? "decay" : "-", p.fold.c_str());
  const size_t sb = mb.layout().count_role(Role::Scale), su = mu.layout().count_role(Role::Scale);
  std::printf(
      "   scale parameters: baseline %zu (%.3f%%), unified %zu (%.3f%%); total %zu -> %zu "
      "(x%.4f)\n",
      sb, 100.0 * sb / mb.layout().total(), su, 100.0 * su / mu.layout().total(),
      mb.layout().total(), mu.layout().total(), double(mu.layout().total()) / mb.layout().total());

  if (timing_steps > 0) {
    const int before = num_threads();
    set_num_threads(threads);
    std::printf(
        "\n2. time per training step, tiny preset, batch 16, %d thread%s (median, 3 alternating "
        "rounds)\n",
        num_threads(), num_threads() == 1 ? "" : "s");
    std::vector<double> tb, tu;
    for (int round = 0; round < 3; round++) {
      tb.push_back(step_seconds(base, 16, timing_steps));
      tu.push_back(step_seconds(uni, 16, timing_steps));
    }
    std::sort(tb.begin(), tb.end()), std::sort(tu.begin(), tu.end());
    std::printf(
        "   baseline %.1f ms, unified %.1f ms: unified / baseline = %.3f (the paper: ~1.04 at "
        "1B)\n",
        1e3 * tb[1], 1e3 * tu[1], tu[1] / tb[1]);
    set_num_threads(before);
  }

  std::printf("\n3. training: baseline (no decay on gains) vs unified (with iwd)\n");
  return chapter::experiment({{"baseline", chapter::model("baseline"), "none"},
                              {"unified", chapter::model("unified"), "iwd"}},
                             steps, seeds)
             ? 0
             : 2;
}
