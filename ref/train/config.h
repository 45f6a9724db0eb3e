// Training configuration: everything `scalevec train` needs besides the model architecture.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "optim.h"

namespace scalevec {

struct TrainConfig {
  std::string data;             // training text file ("" = the default fortunes corpus)
  int batch = 16;               // B sequences per step, each of the model's context length
  int steps = 1000;             // total optimizer steps
  double lr = 2e-3;             // peak learning rate
  int warmup = 50;              // linear warmup steps
  double min_lr_frac = 0.1;     // cosine decays to lr * min_lr_frac
  double weight_decay = 0.1;
  std::string wd_policy = "none";  // scale vectors: none | all | iwd (see optim.h)
  bool wd_embed = false;        // decay the token embedding too
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;
  double grad_clip = 1.0;       // global-norm clipping (0 = off)
  uint64_t seed = 1337;
  int eval_every = 100;         // steps between validation evaluations (0 = only at the end)
  int eval_batches = 8;         // validation batches per evaluation (of `batch` windows each)
  int ckpt_every = 0;           // steps between checkpoints (0 = only at the end / on Ctrl-C)

  void validate() const;        // throws Error naming the offending field
  AdamWConfig adamw() const;
  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j);
};

// Training defaults that go with a model preset ("tiny": the README's default run).
TrainConfig train_preset(const std::string& name);

}  // namespace scalevec
