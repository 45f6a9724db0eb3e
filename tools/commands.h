// The `scalevec` subcommands. Each registers its flags on the app and returns the action to run
// after parsing; actions return the process exit code and report bad input by throwing Error.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

#include "flags.h"
#include "ref/model/config.h"
#include "ref/train/config.h"

namespace scalevec {

using Action = std::function<int()>;

Action add_train(CLI::App& app);
Action add_sample(CLI::App& app);
Action add_gradcheck(CLI::App& app);
Action add_inspect(CLI::App& app);
Action add_bench(CLI::App& app);

// Architecture flags shared by train, gradcheck, inspect (--layers, --d-model, ..., --scale).
FlagSet<ModelConfig> model_flags(CLI::App& app);
// Training flags (--batch, --steps, --lr, ..., --wd-policy).
FlagSet<TrainConfig> train_flags(CLI::App& app);

}  // namespace scalevec
