// scalevec train: train a model on a text file (default: Debian's fortunes), with progress,
// periodic validation, metrics as JSON lines, checkpoints, exact resume and a sample at the end.
#include <algorithm>
#include <filesystem>

#include "commands.h"
#include "ref/common.h"
#include "ref/train/checkpoint.h"
#include "ref/train/safetensors.h"
#include "ref/train/trainer.h"

namespace scalevec {

Action add_train(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("train", "Train a model (default: tiny preset on fortunes)");
  struct Args {
    std::string preset = "tiny", out, prompt = "\n";
    DeviceChoice device;
    bool resume = false, force = false, quiet = false;
    int threads = 0, stop_at = 0, keep = 2;
    SampleOptions sample;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset,
                  "model and training preset: tiny, small, or gpt2 (~113M parameters, context "
                  "1024: a GPU size)")
      ->check(CLI::IsMember(model_preset_list()))
      ->capture_default_str();
  auto mf = std::make_shared<FlagSet<ModelConfig>>(model_flags(*cmd));
  auto tf = std::make_shared<FlagSet<TrainConfig>>(train_flags(*cmd));
  cmd->add_option("--out", a->out,
                  "run directory for checkpoints, metrics.jsonl, sample.txt "
                  "[default: runs/<preset>]");
  cmd->add_flag("--resume", a->resume, "continue the run in --out from its checkpoint");
  cmd->add_flag("--force", a->force,
                "start over even if --out already holds a checkpoint (its checkpoints and metrics "
                "are deleted)");
  cmd->add_option("--keep-checkpoints", a->keep,
                  "complete checkpoints kept in --out/checkpoints (the newest; >= 1)")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--stop-at", a->stop_at, "stop after this step with a checkpoint (resumable)")
      ->check(at_least(1));
  cmd->add_option("--threads", a->threads, threads_help())->check(thread_count());
  add_device_options(cmd, a->device);
  cmd->add_flag("--quiet", a->quiet, "no progress line");
  cmd->add_option("--sample-len", a->sample.length, "bytes of text to sample at the end (0 = none)")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--temperature", a->sample.temperature,
                  "sampling temperature of the sample at the end: finite and > 0 (a normal "
                  "float32)")
      ->capture_default_str()
      ->check(temperature());
  cmd->add_option("--prompt", a->prompt, "text the sample starts from");

  return [=]() -> int {
    set_num_threads(a->threads);
    BusyMachineCheck busy(a->device, num_threads());
    const std::string out = a->out.empty() ? "runs/" + a->preset : a->out;
    require(!(a->resume && a->force),
            "--resume continues the run in '{}' and --force deletes it: pass one of them", out);
    const bool has_ckpt = std::filesystem::exists(model_path(out));
    ModelConfig mcfg = model_preset(a->preset);
    TrainConfig tcfg = train_preset(a->preset);
    if (a->resume) {
      require(has_ckpt, "nothing to resume: '{}' does not exist", model_path(out));
      // The checkpoint's configs are the base; flags given now override (and are checked).
      mcfg = read_model_config(model_path(out));
      tcfg = read_train_config(state_path(out));
    } else {
      require(!has_ckpt || a->force,
              "'{}' already holds a checkpoint: pass --resume to continue it, --force to start "
              "over, or another --out",
              out);
    }
    mf->apply(mcfg);
    tf->apply(tcfg);
    if (!a->resume) apply_implied_settings(mcfg, tcfg, tf->given());  // unified: --wd-policy iwd
    mcfg.validate();
    tcfg.validate();
    require(a->sample.temperature > 0, "--temperature {} must be > 0", a->sample.temperature);
    require(a->sample.length >= 0, "--sample-len {} must be >= 0", a->sample.length);
    const TextData data = load_data(tcfg.data, mcfg.context);

    TrainOptions opts;
    opts.out_dir = out, opts.resume = a->resume, opts.stop_at = a->stop_at;
    opts.keep_checkpoints = a->keep;
    opts.progress = !a->quiet, opts.sample = a->sample, opts.prompt = a->prompt;
    opts.interrupt = interrupt_flag();
    opts.engine = make_engine(a->device, tcfg);
    install_interrupt_handler();
    const Transformer<float> probe_model(mcfg, 0);  // parameters only, to report the size
    fmt::print(stderr,
               "scalevec train: {} parameters ({} scale), scale={}, wd-policy={}, data {}: {} "
               "train / {} val bytes, {}, out {}\n",
               probe_model.layout().total(), probe_model.layout().count_role(Role::Scale),
               mcfg.scale, wd_policy_name(tcfg.wd_policy), data.source, data.train.size(),
               data.val.size(), engine_description(a->device), out);
    busy.report();
    TrainResult r = train(mcfg, tcfg, data, opts);
    if (!r.finished) {
      const bool interrupted = interrupt_flag()->load();
      fmt::print(stderr,
                 "\n{} at step {}; checkpoint saved in {}\nresume with: scalevec train --out {} "
                 "--resume\n",
                 interrupted ? "interrupted" : "stopped (--stop-at)", r.last_step, out, out);
      return interrupted ? 130 : 0;
    }
    fmt::print(stderr, "done: {} steps in {:.1f}s ({:.0f} tok/s); final val loss {:.4f}\n",
               r.last_step, r.seconds, r.tokens_per_second, r.val.back().second);
    if (!r.sample.empty())
      fmt::print("--- sample ---\n{}{}\n--------------\n", a->prompt, r.sample);
    return 0;
  };
}

}  // namespace scalevec
