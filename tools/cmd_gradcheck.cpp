// scalevec gradcheck: finite differences in double precision on the chosen model config; prints
// the worst relative error per parameter tensor and fails (exit 1) if any exceeds --rtol.
#include <algorithm>
#include <cmath>

#include "commands.h"
#include "ref/check/model_gradcheck.h"
#include "ref/common.h"
#ifdef SCALEVEC_HAVE_CUDA
#include "gpu/check.h"
#include "gpu/device.h"
#endif

namespace scalevec {

Action add_gradcheck(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "gradcheck", "Check every parameter gradient of a model against finite differences (double)");
  struct Args {
    std::string preset = "tiny", device = "cpu";
    ModelCheckOptions o;
    int threads = 0;
    double gpu_rtol = 2e-4;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "base architecture: tiny or small")
      ->check(CLI::IsMember({"tiny", "small"}))->capture_default_str();
  auto mf = std::make_shared<FlagSet<ModelConfig>>(model_flags(*cmd));
  cmd->add_option("--batch", a->o.batch, "sequences in the check batch")->capture_default_str()->check(at_least(1));
  cmd->add_option("--seq", a->o.seq, "sequence length of the check batch")->capture_default_str()->check(at_least(1));
  cmd->add_option("--samples", a->o.samples, "entries checked per tensor (all if fewer)")->capture_default_str()->check(at_least(1));
  cmd->add_option("--h", a->o.h, "finite-difference step (4-point stencil)")->capture_default_str()->check(positive());
  cmd->add_option("--rtol", a->o.rtol, "allowed relative error")->capture_default_str()->check(positive());
  cmd->add_option("--atol", a->o.atol, "absolute floor: errors below it always pass")->capture_default_str()->check(at_least(0));
  cmd->add_option("--seed", a->o.seed, "seed for init, batch and sampled entries")->capture_default_str();
  cmd->add_option("--threads", a->threads, "CPU threads (0 = OpenMP default)")->check(at_least(0));
  cmd->add_option("--device", a->device,
                  "cuda: also compare the GPU's fp32 gradient of every tensor with the checked "
                  "double gradient, |gpu - ref| <= --gpu-rtol * (|ref| + rms(ref tensor))")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  cmd->add_option("--gpu-rtol", a->gpu_rtol, "tolerance of the GPU comparison (fp32 against double)")
      ->capture_default_str()->check(positive());
  return [=]() -> int {
    set_num_threads(a->threads);
    ModelConfig cfg = model_preset(a->preset);
    mf->apply(cfg);
    cfg.validate();
    require(a->o.seq <= cfg.context, "--seq {} exceeds the context {}", a->o.seq, cfg.context);
    if (a->device == "cuda") {
#ifdef SCALEVEC_HAVE_CUDA
      std::string why;
      require(gpu::available(&why), "--device cuda: {}", why);
#else
      throw Error("--device cuda: this scalevec was built without CUDA (no nvcc found at configure time)");
#endif
    }
    Transformer<double> model(cfg, a->o.batch);
    fmt::print("gradcheck: scale={} layers={} d_model={} heads={} d_ff={}, batch {}x{}, "
               "h={:g}, pass if |a-b| <= rtol*max(|a|,|b|,atol/rtol) with rtol={:g} atol={:g}\n",
               cfg.scale, cfg.n_layer, cfg.d_model, cfg.n_head, cfg.d_ff, a->o.batch, a->o.seq,
               a->o.h, a->o.rtol, a->o.atol);
    ModelCheckBatch used;
    auto checks = gradcheck_model(model, a->o, &used);
    fmt::print("{:<32} {:>10} {:>8} {:>12} {:>12}  result\n", "tensor", "numel", "checked",
               "max rel err", "max abs err");
    ErrorStats all(a->o.rtol, a->o.atol);
    for (const auto& t : checks) {
      fmt::print("{:<32} {:>10} {:>8} {:>12.3e} {:>12.3e}  {}\n", t.name, t.numel, t.stats.count,
                 t.stats.max_rel, t.stats.max_abs, t.stats.ok() ? "ok" : "FAIL");
      all.merge(t.stats);
    }
    fmt::print("{} tensors, {} entries, max rel err {:.3e}: {}\n", checks.size(), all.count,
               all.max_rel, all.ok() ? "PASS" : "FAIL");
    bool gpu_ok = true;
#ifdef SCALEVEC_HAVE_CUDA
    if (a->device == "cuda") {
      double loss_gpu = 0;
      const double loss_ref = model.forward(used.tokens.data(), used.targets.data(), a->o.batch, a->o.seq);
      const auto rows = gpu::compare_with_reference(cfg, used.params, used.grads, used.tokens, used.targets,
                                                    a->o.batch, a->o.seq, &loss_gpu);
      fmt::print("\nGPU ({}) fp32 gradient against the checked double gradient, pass if "
                 "|gpu - ref| <= {:g} * (|ref| + rms(ref tensor)); loss {:.8f} vs {:.8f}\n",
                 gpu::describe(), a->gpu_rtol, loss_gpu, loss_ref);
      fmt::print("{:<32} {:>10} {:>12} {:>12}  result\n", "tensor", "numel", "max rel err", "max abs err");
      double worst = 0;
      for (const auto& r : rows) {
        const bool ok = r.max_rel <= a->gpu_rtol;
        gpu_ok = gpu_ok && ok;
        worst = std::max(worst, r.max_rel);
        fmt::print("{:<32} {:>10} {:>12.3e} {:>12.3e}  {}\n", r.name, r.numel, r.max_rel, r.max_abs, ok ? "ok" : "FAIL");
      }
      const bool loss_ok = std::abs(loss_gpu - loss_ref) <= a->gpu_rtol * std::abs(loss_ref);
      gpu_ok = gpu_ok && loss_ok;
      fmt::print("GPU: {} tensors, max rel err {:.3e}, loss {}: {}\n", rows.size(), worst,
                 loss_ok ? "ok" : "FAIL", gpu_ok ? "PASS" : "FAIL");
    }
#endif
    return all.ok() && gpu_ok ? 0 : 1;
  };
}

}  // namespace scalevec
