// scalevec eval: the loss of a checkpoint on any text, in nats per byte and bits per byte.
#include <cmath>
#include <filesystem>

#include "commands.h"
#include "ref/common.h"
#include "ref/train/checkpoint.h"
#include "ref/train/data.h"
#include "ref/train/trainer.h"

namespace scalevec {

Action add_eval(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "eval", "The loss of a checkpoint on a text file (nats and bits per byte)");
  struct Args {
    std::string ckpt, data;
    int batch = 8, windows = 0, threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("ckpt,--ckpt", a->ckpt, "run directory or model.safetensors file")->required();
  cmd->add_option("--data", a->data,
                  "text file to evaluate on: all of it, cut into non-overlapping windows of the "
                  "model's context (each predicting its next bytes)")
      ->required();
  cmd->add_option("--windows", a->windows, "evaluate only the first N windows (0 = all)")
      ->check(at_least(0));
  cmd->add_option("--batch", a->batch, "windows per forward pass")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--threads", a->threads, threads_help())->check(thread_count());
  return [=]() -> int {
    set_num_threads(a->threads);
    const std::string path = std::filesystem::is_directory(a->ckpt) ? model_path(a->ckpt) : a->ckpt;
    const ModelConfig cfg = read_model_config(path);
    Transformer<float> model(cfg, a->batch);
    const int64_t step = load_model(path, model);
    const std::string text = read_text_file(a->data);
    const std::vector<uint8_t> bytes(text.begin(), text.end());
    const size_t all = window_count(bytes, cfg.context);
    require(all > 0, "'{}' has {} bytes: it needs at least context + 1 = {}", a->data, text.size(),
            cfg.context + 1);
    const size_t n = a->windows > 0 ? std::min<size_t>(all, a->windows) : all;
    const int batches = int((n + a->batch - 1) / a->batch);
    // evaluate() takes whole batches of `batch` windows; the last may be partial.
    const double nats = evaluate(model, bytes, a->batch, batches);
    const size_t used = std::min(all, (size_t)batches * a->batch);
    fmt::print("{}: {} windows of {} bytes ({} bytes predicted), {} at step {}\n", a->data, used,
               cfg.context, used * cfg.context, path, step);
    fmt::print("loss {:.4f} nats per byte, {:.4f} bits per byte\n", nats, nats / std::log(2.0));
    return 0;
  };
}

}  // namespace scalevec
