// scalevec sample: generate text from a checkpoint.
#include <filesystem>

#include "commands.h"
#include "ref/common.h"
#include "ref/train/checkpoint.h"
#include "ref/train/sample.h"

namespace scalevec {

// A run directory or a model .safetensors file.
static std::string resolve_model_file(const std::string& p) {
  return std::filesystem::is_directory(p) ? model_path(p) : p;
}

Action add_sample(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("sample", "Generate text from a trained checkpoint");
  struct Args {
    std::string ckpt, prompt = "\n";
    SampleOptions o;
    uint64_t seed = 1;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("ckpt,--ckpt", a->ckpt, "run directory or model.safetensors file")->required();
  cmd->add_option("--prompt", a->prompt, "text to continue");
  cmd->add_option("--length", a->o.length, "bytes to generate")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--temperature", a->o.temperature,
                  "sampling temperature: finite and > 0 (a normal float32, >= 1.2e-38); low is "
                  "greedier, 1 samples the model's own distribution")
      ->capture_default_str()
      ->check(temperature());
  cmd->add_option("--top-k", a->o.top_k, "sample among the k most likely bytes (0 = all)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  cmd->add_option("--seed", a->seed, "random seed (a whole number in [0, 2^64 - 1])")
      ->capture_default_str()
      ->check(seed());
  cmd->add_option("--threads", a->threads, threads_help())->check(thread_count());
  return [=]() -> int {
    set_num_threads(a->threads);
    const std::string path = resolve_model_file(a->ckpt);
    Transformer<float> model(read_model_config(path), 1);
    load_model(path, model);
    Rng rng(a->seed);
    fmt::print("{}{}\n", a->prompt, generate(model, a->prompt, a->o, rng));
    return 0;
  };
}

}  // namespace scalevec
