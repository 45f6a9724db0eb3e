// Chapter 06: branch-specific scale vectors (HG).
//  1. exact: with one γ shared by q, k and v, the step of w̃_q depends on the k and v branches'
//     gradients (Theorem 2.2's sum over branches); with HG it does not. Measured at init and on a
//     model trained for a while, where the coupling term w_j w_jᵀ has grown
//  2. the experiment at a small size: baseline vs hg
// Exit status 0 iff the checks hold and every run finishes.
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/common.h"
#include "ref/check/theory.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"

using namespace scalevec;

// Trains a chapter model for `steps` (files in a temporary run directory), then loads it in
// double precision and measures Theorem 2.2 on layer 0's attention input.
static PrecondResult measure(const std::string& preset, int steps, const TextData& data) {
  const ModelConfig mc = chapter::model(preset);
  const auto dir = std::filesystem::temp_directory_path() / ("scalevec-ch06-" + preset);
  std::filesystem::remove_all(dir);
  TrainOptions o;
  o.out_dir = dir.string(), o.progress = false, o.sample.length = 0;
  train(mc, chapter::training(steps, 1), data, o);
  Transformer<double> m(mc, 2);
  load_model(model_path(o.out_dir), m);
  std::filesystem::remove_all(dir);
  Batch b;
  Rng rng(3);
  sample_batch(b, data.val, 2, mc.context, rng);
  return precond_check(m, b.inputs, b.targets, 2, mc.context, {1e-4})[0];
}

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 06: branch-specific scale vectors (HG)"};
  int steps = 300, seeds = 2, coupling_steps = 300;
  app.add_option("--steps", steps, "training steps per run")->capture_default_str();
  app.add_option("--seeds", seeds, "seeds per arm")->capture_default_str();
  app.add_option("--coupling-steps", coupling_steps, "training before the coupling is measured")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;
  try {
    const TextData data = load_data("", chapter::model("baseline").context);
    std::printf("1. Theorem 2.2 with one shared γ vs branch-specific γ_f (layer 0, lr 1e-4)\n");
    std::printf("   %-34s %-28s %s\n", "model", "|Δw̃ - predicted| / |pred.|",
                "share from the other branches");
    ScaleConfig shared, hg;
    hg.hg = true;
    const auto a = precond_check(shared, {1e-4}, 5)[0], b = precond_check(hg, {1e-4}, 5)[0];
    std::printf("   %-34s %-28.2e %.2e\n", "shared γ, random init", a.rel_err, a.coupling);
    std::printf("   %-34s %-28.2e %.2e\n", "HG, random init", b.rel_err, b.coupling);
    const auto c = measure("baseline", coupling_steps, data),
               d = measure("hg", coupling_steps, data);
    std::printf("   %-34s %-28.2e %.2e\n",
                fmt::format("shared γ, after {} steps", coupling_steps).c_str(), c.rel_err,
                c.coupling);
    std::printf("   %-34s %-28.2e %.2e\n",
                fmt::format("HG, after {} steps", coupling_steps).c_str(), d.rel_err, d.coupling);
    ok &= a.rel_err < 1e-5 && b.rel_err < 1e-5 && c.rel_err < 1e-3 && d.rel_err < 1e-3;
    ok &= b.coupling < 1e-12 && d.coupling < 1e-12 && a.coupling > 0 && c.coupling > 0;

    std::printf("\n2. training: shared γ vs HG\n");
    chapter::compare(
        {{"baseline (shared γ)", chapter::model("baseline")}, {"hg", chapter::model("hg")}}, data,
        steps, seeds);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return ok ? 0 : 1;
}
