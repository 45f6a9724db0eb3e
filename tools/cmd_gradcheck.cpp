// scalevec gradcheck: finite differences in double precision on the chosen model config; prints
// the worst relative error per parameter tensor and fails (exit 1) if any exceeds --rtol. Then the
// float32 gradient of the chosen device (the CPU reference, or the GPU mirror with --device cuda),
// computed by its training engine, against the checked double gradient, tensor by tensor.
#include <algorithm>
#include <cmath>

#include "commands.h"
#include "gpu/precision.h"  // header-only: the precisions' roundoffs, in any build
#include "ref/check/grad_compare.h"
#include "ref/check/model_gradcheck.h"
#include "ref/common.h"
#include "ref/train/engine.h"

namespace scalevec {

Action add_gradcheck(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "gradcheck", "Check every parameter gradient of a model against finite differences (double)");
  struct Args {
    std::string preset = "tiny";
    DeviceChoice where;
    ModelCheckOptions o;
    int threads = 0;
    double gpu_rtol = 0;  // 0: by precision
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "base architecture: " + std::string(model_preset_names()))
      ->check(CLI::IsMember(model_preset_list()))
      ->capture_default_str();
  auto mf = std::make_shared<FlagSet<ModelConfig>>(model_flags(*cmd));
  cmd->add_option("--batch", a->o.batch, "sequences in the check batch")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_option("--seq", a->o.seq, "sequence length of the check batch")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_option("--samples", a->o.samples, "entries checked per tensor (all if fewer)")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_option("--h", a->o.h, "finite-difference step (4-point stencil), finite and > 0")
      ->capture_default_str()
      ->check(finite_positive());
  cmd->add_option("--rtol", a->o.rtol,
                  "allowed relative error, in (0, 1) (at 1 or more a gradient of all zeros "
                  "passes)")
      ->capture_default_str()
      ->check(relative_tolerance());
  cmd->add_option("--atol", a->o.atol,
                  "absolute floor: errors below it always pass; finite and >= 0")
      ->capture_default_str()
      ->check(absolute_tolerance());
  cmd->add_option("--seed", a->o.seed,
                  "seed for init, batch and sampled entries (a whole number in [0, 2^64 - 1])")
      ->capture_default_str()
      ->check(seed());
  cmd->add_option("--threads", a->threads, threads_help())->check(thread_count());
  add_device_options(
      cmd, a->where,
      "whose float32 gradient to compare with the checked double gradient, tensor by "
      "tensor: cpu (the reference) or cuda (the GPU mirror); pass if ||got - ref|| <= "
      "--device-rtol * (||ref|| + rms * sqrt(numel)), rms over all gradients (the GPU "
      "test suite's rule)",
      "matrix products of the GPU model: fp32, tf32 or bf16 (with --device cuda)");
  cmd->add_option("--device-rtol,--gpu-rtol", a->gpu_rtol,
                  "tolerance of the float32 comparison (default by precision: fp32 2e-4, tf32 "
                  "1.6e-2 = 16 * 2^-10, bf16 6.25e-2 = 16 * 2^-8; see tests/gpu/test_gpu.cpp), in "
                  "(0, 1)")
      ->check(relative_tolerance());
  return [=]() -> int {
    set_num_threads(a->threads);
    ModelConfig cfg = model_preset(a->preset);
    mf->apply(cfg);
    cfg.validate();
    require(a->o.seq <= cfg.context, "--seq {} exceeds the context {}", a->o.seq, cfg.context);
    TrainConfig tcfg = train_preset(a->preset);  // the engine's optimizer (it takes no step)
    tcfg.batch = a->o.batch;
    const EngineFactory make = make_engine(a->where, tcfg);  // refuses a device it cannot use
    Transformer<double> model(cfg, a->o.batch);
    fmt::print(
        "gradcheck: scale={} layers={} d_model={} heads={} d_ff={}, batch {}x{}, "
        "h={:g}, pass if |a-b| <= rtol*max(|a|,|b|,atol/rtol) with rtol={:g} atol={:g}\n",
        cfg.scale, cfg.n_layer, cfg.d_model, cfg.n_head, cfg.d_ff, a->o.batch, a->o.seq, a->o.h,
        a->o.rtol, a->o.atol);
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
    // The same gradient in float32, by the chosen device's training engine.
    const gpu::Precision precision = gpu::parse_precision(a->where.precision);
    const double rtol = a->gpu_rtol > 0 ? a->gpu_rtol
                        : precision == gpu::Precision::fp32
                            ? 2e-4
                            : 16 * gpu::tolerance_roundoff(precision);
    Transformer<float> host(cfg, a->where.steps_host_model() ? a->o.batch : 0);
    host.params.assign(used.params.begin(), used.params.end());
    const auto opt = make_optimizer<float>(host.layout(), tcfg);
    const std::unique_ptr<StepEngine> engine = make(host, *opt);
    const Batch batch{a->o.batch, a->o.seq, used.tokens, used.targets};
    std::vector<float> got;
    const double loss_got = engine->gradient(batch, &got);
    const double loss_ref =
        model.forward(used.tokens.data(), used.targets.data(), a->o.batch, a->o.seq);
    fmt::print(
        "\nfloat32 gradient of {} against the checked double gradient, pass if "
        "||got - ref|| <= {:g} * (||ref|| + rms * sqrt(numel)); loss {:.8f} vs {:.8f}\n",
        engine->name(), rtol, loss_got, loss_ref);
    fmt::print("{:<32} {:>10} {:>12} {:>12} {:>9}  result\n", "tensor", "numel", "norm rel err",
               "max abs err", "share");
    bool device_ok = true;
    double worst = 0;
    for (const auto& r : compare_gradients(model.layout(), used.grads, got)) {
      const bool ok = r.share(rtol) <= 1;
      device_ok = device_ok && ok;
      worst = std::max(worst, r.share(rtol));
      fmt::print("{:<32} {:>10} {:>12.3e} {:>12.3e} {:>8.1f}%  {}\n", r.name, r.numel, r.norm_rel,
                 r.max_abs, 100 * r.share(rtol), ok ? "ok" : "FAIL");
    }
    const bool loss_ok = std::abs(loss_got - loss_ref) <= rtol * std::abs(loss_ref);
    device_ok = device_ok && loss_ok;
    fmt::print("float32 ({}): {} tensors, worst share {:.1f}% of the threshold, loss {}: {}\n",
               a->where.device, model.layout().params().size(), 100 * worst,
               loss_ok ? "ok" : "FAIL", device_ok ? "PASS" : "FAIL");
    return all.ok() && device_ok ? 0 : 1;
  };
}

}  // namespace scalevec
