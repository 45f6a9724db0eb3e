// Small shared pieces of the chapter programs: the models they train and a short, file-less
// training run through the same train() that `scalevec train` uses.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ref/model/config.h"
#include "ref/train/trainer.h"

namespace scalevec::chapter {

// 2 layers, width 64, 2 heads, SwiGLU 192, context 64: seconds per hundred steps on a laptop.
inline ModelConfig model(const std::string& scale_preset) {
  ModelConfig c = model_preset("tiny");
  c.n_layer = 2, c.d_model = 64, c.n_head = 2, c.d_ff = 192, c.context = 64;
  c.set_scale(scale_preset);
  return c;
}

inline TrainConfig training(int steps, uint64_t seed) {
  TrainConfig t = train_preset("tiny");
  t.batch = 8, t.steps = steps, t.warmup = std::max(1, steps / 10), t.lr = 3e-3, t.seed = seed;
  t.eval_every = 0, t.eval_batches = 4;
  return t;
}

// Final validation loss of a short run (no files, no progress line).
inline double run(const ModelConfig& m, const TrainConfig& t, const TextData& data) {
  TrainOptions o;
  o.progress = false;
  o.sample.length = 0;
  const TrainResult r = train(m, t, data, o);
  return r.val.back().second;
}

// Mean and sample standard deviation.
inline std::pair<double, double> mean_std(const std::vector<double>& v) {
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return {m, v.size() > 1 ? std::sqrt(s / double(v.size() - 1)) : 0.0};
}

// Runs each arm (a model config and a weight-decay policy) for every seed and prints final
// validation losses, their mean ± std and the paired difference to the first arm.
struct Arm {
  std::string name;
  ModelConfig model;
  std::string wd_policy = "none";
};
inline void compare(const std::vector<Arm>& arms, const TextData& data, int steps, int seeds) {
  std::vector<std::vector<double>> val(arms.size());
  for (size_t a = 0; a < arms.size(); a++)
    for (int s = 1; s <= seeds; s++) {
      TrainConfig t = training(steps, (uint64_t)s);
      t.wd_policy = parse_wd_policy(arms[a].wd_policy);
      val[a].push_back(run(arms[a].model, t, data));
    }
  std::printf("   %-22s %-20s %s\n", "arm", "val loss (mean ± std)",
              "paired diff to the first arm");
  for (size_t a = 0; a < arms.size(); a++) {
    const auto [m, sd] = mean_std(val[a]);
    std::vector<double> d;
    for (size_t s = 0; s < val[a].size(); s++) d.push_back(val[a][s] - val[0][s]);
    const auto [dm, dsd] = mean_std(d);
    const std::string diff = a == 0 ? "-" : fmt::format("{:+.4f} ± {:.4f}", dm, dsd);
    std::printf("   %-22s %.4f ± %.4f      %s\n", arms[a].name.c_str(), m, sd, diff.c_str());
  }
  std::printf(
      "   (%d steps x %d seeds, 2-layer width-64 model; tiny runs like these are noisy: the\n"
      "    chapter's measured result comes from `scalevec ablate`, see docs/REPLICATION.md)\n",
      steps, seeds);
}

// compare() on the fortunes corpus; false (after a one-line error) if the corpus is missing.
inline bool experiment(const std::vector<Arm>& arms, int steps, int seeds) {
  try {
    compare(arms, load_data("", arms.at(0).model.context), steps, seeds);
    return true;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return false;
  }
}

}  // namespace scalevec::chapter
