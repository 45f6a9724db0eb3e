// Training configuration: everything `scalevec train` needs besides the model architecture.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "optim.h"
#include "schedule.h"

namespace scalevec {

struct TrainConfig {
  std::string data;  // training text file ("" = the default fortunes corpus)
  int batch = 16;    // B sequences per step, each of the model's context length
  int steps = 1000;  // total optimizer steps
  OptimizerKind optimizer = OptimizerKind::AdamW;  // adamw | muon | sgd (see optim.h)
  double lr = 2e-3;  // peak learning rate of AdamW, of SGD and of Muon's AdamW part
  ScheduleKind schedule = ScheduleKind::Cosine;  // cosine | constant | wsd (see schedule.h)
  int warmup = 50;                               // linear warmup steps
  double min_lr_frac = 0.1;                      // cosine and wsd decay to lr * min_lr_frac
  double decay_frac = 0.2;  // wsd: the last decay_frac of the steps decay linearly
  double weight_decay = 0.1;
  WdPolicy wd_policy = WdPolicy::None;  // scale vectors: none | all | iwd (see optim.h)
  bool wd_embed = false;                // decay the token embedding too
  double beta1 = 0.9, beta2 = 0.95, adam_eps = 1e-8;  // AdamW (also Muon's AdamW part)
  double muon_lr = 0.02;        // Muon: peak learning rate of the hidden matrices
  double muon_momentum = 0.95;  // Muon: momentum of the matrices (Nesterov)
  int ns_steps = 5;             // Muon: Newton–Schulz iterations
  double sgd_momentum = 0.9;    // SGD: heavy-ball momentum (0 = plain gradient descent)
  double grad_clip = 1.0;       // global-norm clipping (0 = off)
  uint64_t seed = 1337;
  int eval_every = 100;  // steps between validation evaluations (0 = only at the end)
  int eval_batches = 8;  // validation batches per evaluation (of `batch` windows each)
  int ckpt_every = 0;    // steps between checkpoints (0 = only at the end / on Ctrl-C)

  void validate() const;  // throws Error naming the offending field
  // The optimizers' and the schedule's configs, with base learning rates lr (AdamW, SGD, Muon's
  // AdamW part) and muon_lr (Muon's matrices).
  AdamWConfig adamw() const;
  MuonConfig muon() const;
  SgdConfig sgd() const;
  Schedule lr_schedule() const;  // base rate lr: at(step) is the AdamW/SGD learning rate
  nlohmann::json to_json() const;
  // Fields added after the first release (optimizer, schedule, muon_*, ns_steps, sgd_momentum,
  // decay_frac) may be missing (older checkpoints): they take their defaults.
  static TrainConfig from_json(const nlohmann::json& j);
};

// Training defaults that go with a model preset ("tiny": the README's default run).
TrainConfig train_preset(const std::string& name);

}  // namespace scalevec
