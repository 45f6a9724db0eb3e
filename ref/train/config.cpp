#include "config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../common.h"
#include "../json.h"

namespace scalevec {

namespace {

// A momentum-like field in [0, 1) (beta1, beta2, muon_momentum, sgd_momentum) that float32 code
// multiplies by: 0.99999999 is 1 in float32, a running average that never forgets.
void require_below_one(const char* name, double v) {
  require(v >= 0 && v < 1, "{} = {} is out of range [0, 1)", name, v);
  require(float(v) < 1.0f, "{} = {} is not usable in float32: it is 1 there", name, v);
}

}  // namespace

TrainConfig train_preset(const std::string& name) {
  TrainConfig t;
  if (name == "tiny") {
    t.batch = 16, t.steps = 1000, t.lr = 2e-3, t.warmup = 50;
  } else if (name == "small") {
    t.batch = 8, t.steps = 2000, t.lr = 1e-3, t.warmup = 100;
  } else if (name == "gpt2") {
    t.batch = 8, t.steps = 5000, t.lr = 6e-4, t.warmup = 200;
  } else {
    throw Error(fmt::format("unknown preset '{}'", name));
  }
  return t;
}

void TrainConfig::validate() const {
  for (auto [name, v] : {std::pair{"lr", lr},
                         {"min_lr_frac", min_lr_frac},
                         {"decay_frac", decay_frac},
                         {"weight_decay", weight_decay},
                         {"beta1", beta1},
                         {"beta2", beta2},
                         {"adam_eps", adam_eps},
                         {"muon_lr", muon_lr},
                         {"muon_momentum", muon_momentum},
                         {"sgd_momentum", sgd_momentum},
                         {"grad_clip", grad_clip}})
    require_float32(name, v);
  require(batch >= 1 && batch <= 4096, "batch = {} is out of range [1, 4096]", batch);
  require(steps >= 1, "steps = {} must be >= 1", steps);
  require(lr > 0 && lr < 10, "lr = {} is out of range (0, 10)", lr);
  require(warmup >= 0, "warmup = {} must be >= 0", warmup);
  require(warmup <= steps, "warmup = {} exceeds steps = {}: pass --warmup N with N <= {}", warmup,
          steps, steps);
  require(min_lr_frac >= 0 && min_lr_frac <= 1, "min_lr_frac = {} is out of range [0, 1]",
          min_lr_frac);
  require(decay_frac >= 0 && decay_frac <= 1, "decay_frac = {} is out of range [0, 1]", decay_frac);
  require(weight_decay >= 0 && weight_decay < 10, "weight_decay = {} is out of range [0, 10)",
          weight_decay);
  require_below_one("beta1", beta1);
  require_below_one("beta2", beta2);
  require(adam_eps > 0, "adam_eps = {} must be > 0", adam_eps);
  require(muon_lr > 0 && muon_lr < 10, "muon_lr = {} is out of range (0, 10)", muon_lr);
  require_below_one("muon_momentum", muon_momentum);
  require(ns_steps >= 1 && ns_steps <= 100, "ns_steps = {} is out of range [1, 100]", ns_steps);
  require_below_one("sgd_momentum", sgd_momentum);
  require(grad_clip >= 0, "grad_clip = {} must be >= 0", grad_clip);
  require(eval_every >= 0, "eval_every = {} must be >= 0", eval_every);
  require(eval_batches >= 1, "eval_batches = {} must be >= 1", eval_batches);
  require(ckpt_every >= 0, "ckpt_every = {} must be >= 0", ckpt_every);
}

static DecayRule decay_rule(const TrainConfig& t) {
  DecayRule d;
  d.weight_decay = t.weight_decay;
  d.scale_policy = t.wd_policy;
  d.decay_embeddings = t.wd_embed;
  return d;
}

AdamWConfig TrainConfig::adamw() const {
  AdamWConfig a;
  a.lr = lr, a.beta1 = beta1, a.beta2 = beta2, a.eps = adam_eps;
  a.decay = decay_rule(*this);
  return a;
}

MuonConfig TrainConfig::muon() const {
  MuonConfig m;
  m.lr = muon_lr, m.momentum = muon_momentum, m.ns_steps = ns_steps;
  m.adamw = adamw();
  return m;
}

SgdConfig TrainConfig::sgd() const {
  SgdConfig s;
  s.lr = lr, s.momentum = sgd_momentum;
  s.decay = decay_rule(*this);
  return s;
}

Schedule TrainConfig::lr_schedule() const {
  Schedule s;
  s.lr = lr, s.warmup = warmup, s.total = steps, s.min_lr_frac = min_lr_frac;
  s.kind = schedule, s.decay_frac = decay_frac;
  return s;
}

nlohmann::json TrainConfig::to_json() const {
  return {{"data", data},
          {"batch", batch},
          {"steps", steps},
          {"optimizer", optimizer_name(optimizer)},
          {"lr", lr},
          {"schedule", schedule_name(schedule)},
          {"warmup", warmup},
          {"min_lr_frac", min_lr_frac},
          {"decay_frac", decay_frac},
          {"weight_decay", weight_decay},
          {"wd_policy", wd_policy_name(wd_policy)},
          {"wd_embed", wd_embed},
          {"beta1", beta1},
          {"beta2", beta2},
          {"adam_eps", adam_eps},
          {"muon_lr", muon_lr},
          {"muon_momentum", muon_momentum},
          {"ns_steps", ns_steps},
          {"sgd_momentum", sgd_momentum},
          {"grad_clip", grad_clip},
          {"seed", seed},
          {"eval_every", eval_every},
          {"eval_batches", eval_batches},
          {"ckpt_every", ckpt_every}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig t;
  // Strict reads (ref/json.h): the type, the integer range, finiteness; validate() then checks
  // the values as it checks the flags.
  const int64_t big = std::numeric_limits<int>::max();
  auto integer = [&](const char* k) { return (int)json_int(j, k, 0, big); };
  try {
    t.data = json_string(j, "data");
    t.batch = integer("batch"), t.steps = integer("steps"), t.warmup = integer("warmup");
    t.lr = json_double(j, "lr"), t.min_lr_frac = json_double(j, "min_lr_frac");
    t.weight_decay = json_double(j, "weight_decay");
    t.wd_policy = parse_wd_policy(json_string(j, "wd_policy"));
    t.wd_embed = json_bool(j, "wd_embed");
    t.beta1 = json_double(j, "beta1"), t.beta2 = json_double(j, "beta2");
    t.adam_eps = json_double(j, "adam_eps"), t.grad_clip = json_double(j, "grad_clip");
    t.seed = json_uint64(j, "seed");
    t.eval_every = integer("eval_every"), t.eval_batches = integer("eval_batches");
    t.ckpt_every = integer("ckpt_every");
    // Added with the optimizer and schedule choices: absent in older files, so optional here.
    auto has = [&](const char* k) { return j.contains(k); };
    if (has("optimizer")) t.optimizer = parse_optimizer(json_string(j, "optimizer"));
    if (has("schedule")) t.schedule = parse_schedule(json_string(j, "schedule"));
    if (has("decay_frac")) t.decay_frac = json_double(j, "decay_frac");
    if (has("muon_lr")) t.muon_lr = json_double(j, "muon_lr");
    if (has("muon_momentum")) t.muon_momentum = json_double(j, "muon_momentum");
    if (has("ns_steps")) t.ns_steps = integer("ns_steps");
    if (has("sgd_momentum")) t.sgd_momentum = json_double(j, "sgd_momentum");
  } catch (const Error& e) {  // a wrong type or range, or a name that is not an optimizer, ...
    throw Error(fmt::format("bad training config: {}", e.what()));
  }
  t.validate();
  return t;
}

}  // namespace scalevec
