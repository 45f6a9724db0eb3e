// The `scalevec` subcommands. Each registers its flags on the app and returns the action to run
// after parsing; actions return the process exit code and report bad input by throwing Error.
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "flags.h"
#include "ref/common.h"
#include "ref/model/config.h"
#include "ref/train/config.h"
#include "ref/train/trainer.h"

namespace scalevec {

using Action = std::function<int()>;

Action add_train(CLI::App& app);
Action add_sample(CLI::App& app);
Action add_eval(CLI::App& app);
Action add_gradcheck(CLI::App& app);
Action add_inspect(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_trace(CLI::App& app);
Action add_diagram(CLI::App& app);
// `argv` is the whole command line, which ablate records with its results.
Action add_ablate(CLI::App& app, std::vector<std::string> argv);

// Architecture flags shared by train, gradcheck, inspect (--layers, --d-model, ..., --scale).
FlagSet<ModelConfig> model_flags(CLI::App& app);
// Training flags (--batch, --steps, --lr, ..., --wd-policy).
FlagSet<TrainConfig> train_flags(CLI::App& app);
// Where training runs: --device cpu|cuda and --precision fp32|tf32|bf16 (the GPU's matrix
// products; the reference is fp32 only), and the engine they name (throws Error with the reason
// when CUDA is not built in, no GPU is usable, or the pair makes no sense).
struct DeviceChoice {
  std::string device = "cpu", precision = "fp32";
  void validate() const {
    require(device == "cuda" || precision == "fp32",
            "--precision {} needs --device cuda (tf32 and bf16 are GPU precisions)", precision);
  }
  // The engine steps the host model itself (so it needs activations), or a copy on the device.
  bool steps_host_model() const { return device == "cpu"; }
};
inline const std::vector<std::string>& device_list() {
  static const std::vector<std::string> names{"cpu", "cuda"};
  return names;
}
// --device and --precision; `device_help`/`precision_help` replace the default texts when given.
void add_device_options(CLI::App* cmd, DeviceChoice& choice, const std::string& device_help = "",
                        const std::string& precision_help = "");
EngineFactory make_engine(const DeviceChoice& choice, const TrainConfig& tcfg);
// For the header lines: "2 threads", or "device cuda (<card>), bf16 matrix products".
std::string engine_description(const DeviceChoice& choice);

// Ctrl-C for the commands that train: the first sets the flag the training loop polls (it saves a
// checkpoint and stops), a second ends the process at once.
void install_interrupt_handler();
const std::atomic<bool>* interrupt_flag();

// A word as a POSIX shell needs it written: unchanged when plain, else in single quotes.
std::string shell_quote(const std::string& w);

// The busy-machine check of train, ablate and bench (ref/common.h, busy_machine_warning): started
// in the background when the command starts (it measures 0.1 s of /proc/stat while the command
// sets up), printed to stderr by report() before the first step. Nothing on --device cuda.
class BusyMachineCheck {
 public:
  BusyMachineCheck(const DeviceChoice& where, int threads);
  void report();

 private:
  std::future<std::string> warning_;
};

// Settings a scale preset implies for training, applied unless the user set them: `unified`
// implies --wd-policy iwd. `given` are the training flags given (FlagSet::given()).
void apply_implied_settings(const ModelConfig& m, TrainConfig& t,
                            const std::vector<std::string>& given);

}  // namespace scalevec
