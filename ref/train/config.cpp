#include "config.h"

#include <algorithm>
#include <cmath>

#include "../common.h"

namespace scalevec {

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
  for (auto [name, v] : {std::pair{"lr", lr}, {"min_lr_frac", min_lr_frac},
                         {"decay_frac", decay_frac}, {"weight_decay", weight_decay},
                         {"beta1", beta1}, {"beta2", beta2}, {"adam_eps", adam_eps},
                         {"muon_lr", muon_lr}, {"muon_momentum", muon_momentum},
                         {"sgd_momentum", sgd_momentum}, {"grad_clip", grad_clip}})
    require(std::isfinite(v), "{} = {} must be a finite number", name, v);
  require(batch >= 1 && batch <= 4096, "batch = {} is out of range [1, 4096]", batch);
  require(steps >= 1, "steps = {} must be >= 1", steps);
  require(lr > 0 && lr < 10, "lr = {} is out of range (0, 10)", lr);
  require(warmup >= 0, "warmup = {} must be >= 0", warmup);
  require(warmup <= steps, "warmup = {} exceeds steps = {}: pass --warmup N with N <= {}", warmup,
          steps, steps);
  require(min_lr_frac >= 0 && min_lr_frac <= 1, "min_lr_frac = {} is out of range [0, 1]", min_lr_frac);
  require(decay_frac >= 0 && decay_frac <= 1, "decay_frac = {} is out of range [0, 1]", decay_frac);
  require(weight_decay >= 0 && weight_decay < 10, "weight_decay = {} is out of range [0, 10)", weight_decay);
  require(beta1 >= 0 && beta1 < 1, "beta1 = {} is out of range [0, 1)", beta1);
  require(beta2 >= 0 && beta2 < 1, "beta2 = {} is out of range [0, 1)", beta2);
  require(adam_eps > 0, "adam_eps = {} must be > 0", adam_eps);
  require(muon_lr > 0 && muon_lr < 10, "muon_lr = {} is out of range (0, 10)", muon_lr);
  require(muon_momentum >= 0 && muon_momentum < 1, "muon_momentum = {} is out of range [0, 1)",
          muon_momentum);
  require(ns_steps >= 1 && ns_steps <= 100, "ns_steps = {} is out of range [1, 100]", ns_steps);
  require(sgd_momentum >= 0 && sgd_momentum < 1, "sgd_momentum = {} is out of range [0, 1)",
          sgd_momentum);
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
  return {{"data", data},             {"batch", batch},           {"steps", steps},
          {"optimizer", optimizer_name(optimizer)}, {"lr", lr}, {"schedule", schedule_name(schedule)},
          {"warmup", warmup},         {"min_lr_frac", min_lr_frac}, {"decay_frac", decay_frac},
          {"weight_decay", weight_decay},
          {"wd_policy", wd_policy_name(wd_policy)}, {"wd_embed", wd_embed},
          {"beta1", beta1},           {"beta2", beta2},
          {"adam_eps", adam_eps},     {"muon_lr", muon_lr},
          {"muon_momentum", muon_momentum}, {"ns_steps", ns_steps},
          {"sgd_momentum", sgd_momentum}, {"grad_clip", grad_clip},
          {"seed", seed},             {"eval_every", eval_every},
          {"eval_batches", eval_batches}, {"ckpt_every", ckpt_every}};
}

TrainConfig TrainConfig::from_json(const nlohmann::json& j) {
  TrainConfig t;
  try {
    t.data = j.at("data").get<std::string>();
    t.batch = j.at("batch"), t.steps = j.at("steps"), t.lr = j.at("lr"), t.warmup = j.at("warmup");
    t.min_lr_frac = j.at("min_lr_frac"), t.weight_decay = j.at("weight_decay");
    t.wd_policy = parse_wd_policy(j.at("wd_policy").get<std::string>()), t.wd_embed = j.at("wd_embed");
    t.beta1 = j.at("beta1"), t.beta2 = j.at("beta2"), t.adam_eps = j.at("adam_eps");
    t.grad_clip = j.at("grad_clip"), t.seed = j.at("seed"), t.eval_every = j.at("eval_every");
    t.eval_batches = j.at("eval_batches"), t.ckpt_every = j.at("ckpt_every");
    // Added with the optimizer and schedule choices: absent in older files, so optional here.
    t.optimizer = parse_optimizer(j.value("optimizer", std::string(optimizer_name(t.optimizer))));
    t.schedule = parse_schedule(j.value("schedule", std::string(schedule_name(t.schedule))));
    t.decay_frac = j.value("decay_frac", t.decay_frac), t.muon_lr = j.value("muon_lr", t.muon_lr);
    t.muon_momentum = j.value("muon_momentum", t.muon_momentum);
    t.ns_steps = j.value("ns_steps", t.ns_steps);
    t.sgd_momentum = j.value("sgd_momentum", t.sgd_momentum);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("bad training config: {}", e.what()));
  } catch (const Error& e) {  // a name that is not an optimizer, schedule or policy
    throw Error(fmt::format("bad training config: {}", e.what()));
  }
  t.validate();
  return t;
}

}  // namespace scalevec
