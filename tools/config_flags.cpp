// The flags that map onto ModelConfig and TrainConfig fields; help texts show preset defaults.
#include <algorithm>

#include "commands.h"

namespace scalevec {

FlagSet<ModelConfig> model_flags(CLI::App& app) {
  FlagSet<ModelConfig> f({{"tiny", model_preset("tiny")},
                          {"small", model_preset("small")},
                          {"gpt2", model_preset("gpt2")}});
  f.add(app, "--layers", &ModelConfig::n_layer, "number of transformer blocks");
  f.add(app, "--d-model", &ModelConfig::d_model, "model width C");
  f.add(app, "--heads", &ModelConfig::n_head, "attention heads (d_model/heads must be even)");
  f.add(app, "--d-ff", &ModelConfig::d_ff, "SwiGLU hidden width F");
  f.add(app, "--context", &ModelConfig::context, "context length T in bytes");
  f.add(app, "--norm-eps", &ModelConfig::norm_eps, "RMSNorm epsilon");
  f.add(app, "--rope-base", &ModelConfig::rope_base, "RoPE base frequency");
  // The scale strategy: a preset first, then any component flag refines it (the strategy is then
  // recorded as "custom"; the checkpoint stores every component).
  f.template add_custom<std::string>(
       app, "--scale",
       "scale-vector strategy preset [default: baseline]: baseline (one shared gamma per norm), "
       "none (no scale vectors), hg (branch-specific gammas for q,k,v and gate,up), dp (dual "
       "placement u*W(gamma*n) on q,k,v,gate,up), dnp (DNP on q,k: u*N_head(W a); DP on "
       "v,gate,up), magdir (gamma = beta*alpha everywhere), magdir-normalized (gamma = "
       "beta*alpha/rms(alpha)), unified (hg + dnp + magdir, and --wd-policy iwd unless given). "
       "See docs/SCALE_VECTORS.md: hg/dp/magdir/unified are the paper's; the DNP form, the DP set "
       "and "
       "magdir-normalized are this project's choices",
       [](ModelConfig& c, const std::string& v) { c.set_scale(v); })
      ->check(CLI::IsMember(scale_strategy_names()));
  auto custom = [](ModelConfig& c) { c.scale = "custom"; };
  f.template add_custom<std::string>(
       app, "--scale-param", "parameterization of every scale vector: " + scale_param_help(),
       [=](ModelConfig& c, const std::string& v) { c.sc.param = parse_scale_param(v), custom(c); })
      ->check(CLI::IsMember(scale_param_list()));
  f.template add_custom<bool>(app, "--hg,!--no-hg",
                              "HG: one gamma per branch (q,k,v and gate,up) over the shared N(x)",
                              [=](ModelConfig& c, const bool& v) { c.sc.hg = v, custom(c); });
  f.template add_custom<std::string>(
      app, "--dp", "DP: output-side scale u on these branches, e.g. q,k,v,gate,up (or none)",
      [=](ModelConfig& c, const std::string& v) { c.sc.dp = parse_branches(v), custom(c); });
  f.template add_custom<std::string>(
      app, "--dnp", "DNP: u * N(W a) on these branches (N per head for q,k), e.g. q,k (or none)",
      [=](ModelConfig& c, const std::string& v) { c.sc.dnp = parse_branches(v), custom(c); });
  f.template add_custom<bool>(
      app, "--skip-cancelled-magnitude,!--keep-cancelled-magnitude",
      "use plain gamma where a later normalization would cancel a magdir magnitude (unified: on)",
      [=](ModelConfig& c, const bool& v) { c.sc.skip_cancelled_magnitude = v, custom(c); });
  f.template add_custom<bool>(
      app, "--qk-norm,!--no-qk-norm",
      "architecture: QK-Norm (per-head RMSNorm with its own gamma on q, k): "
      "creates Output-Norms",
      [](ModelConfig& c, const bool& v) { c.sc.qk_norm = v; });
  f.template add_custom<bool>(app, "--post-norm,!--no-post-norm",
                              "architecture: post-sublayer norms (gamma * N(sublayer output) "
                              "before the residual add, Gemma style): creates Output-Norms",
                              [](ModelConfig& c, const bool& v) { c.sc.post_norm = v; });
  return f;
}

FlagSet<TrainConfig> train_flags(CLI::App& app) {
  FlagSet<TrainConfig> f({{"tiny", train_preset("tiny")},
                          {"small", train_preset("small")},
                          {"gpt2", train_preset("gpt2")}});
  f.add(app, "--data", &TrainConfig::data,
        "training text file [default: the fortunes corpus; on --resume: the run's own data]",
        false);
  f.add(app, "--batch", &TrainConfig::batch, "sequences per step");
  f.add(app, "--steps", &TrainConfig::steps, "total optimizer steps");
  f.template add_custom<std::string>(
       app, "--optimizer",
       "adamw (every tensor), muon (Newton-Schulz orthogonalized momentum on the hidden matrices, "
       "AdamW on embedding, head and scale vectors) or sgd (momentum SGD, for the theory "
       "chapters); all with decoupled weight decay",
       [](TrainConfig& t, const std::string& v) { t.optimizer = parse_optimizer(v); })
      ->check(CLI::IsMember(optimizer_list()));
  f.add(app, "--lr", &TrainConfig::lr,
        "peak learning rate of AdamW, of SGD, and of Muon's AdamW part (embedding, head, scale "
        "vectors)");
  f.template add_custom<std::string>(
       app, "--schedule",
       "learning-rate schedule after the warmup: cosine (decay to --min-lr-frac), constant, or "
       "wsd (warmup-stable-decay: constant, then a linear decay to --min-lr-frac over the last "
       "--decay-frac of the steps)",
       [](TrainConfig& t, const std::string& v) { t.schedule = parse_schedule(v); })
      ->check(CLI::IsMember(schedule_list()));
  f.add(app, "--warmup", &TrainConfig::warmup, "linear warmup steps, then the --schedule");
  f.add(app, "--min-lr-frac", &TrainConfig::min_lr_frac,
        "final learning rate of cosine and wsd as a fraction of the peak");
  f.add(app, "--decay-frac", &TrainConfig::decay_frac,
        "wsd: share of the steps spent in the final linear decay, in [0, 1]");
  f.add(app, "--weight-decay", &TrainConfig::weight_decay,
        "decoupled weight decay (each optimizer shrinks by its own learning rate times this)");
  f.template add_custom<std::string>(
       app, "--wd-policy",
       "weight decay on scale vectors: none (common practice), all, or iwd (Input-type scales "
       "only: the paper's rule)",
       [](TrainConfig& t, const std::string& v) { t.wd_policy = parse_wd_policy(v); })
      ->check(CLI::IsMember(wd_policy_list()));
  f.add(app, "--wd-embed", &TrainConfig::wd_embed, "also decay the token embedding");
  f.add(app, "--beta1", &TrainConfig::beta1, "AdamW beta1 (also Muon's AdamW part)");
  f.add(app, "--beta2", &TrainConfig::beta2, "AdamW beta2 (also Muon's AdamW part)");
  f.add(app, "--adam-eps", &TrainConfig::adam_eps, "AdamW epsilon (also Muon's AdamW part)");
  f.add(app, "--muon-lr", &TrainConfig::muon_lr,
        "Muon: peak learning rate of the hidden matrices (a step changes their entries by about "
        "this / sqrt(fan-in) in RMS: not comparable to --lr)");
  f.add(app, "--muon-momentum", &TrainConfig::muon_momentum,
        "Muon: momentum of the hidden matrices, used Nesterov style, in [0, 1)");
  f.add(app, "--ns-steps", &TrainConfig::ns_steps,
        "Muon: Newton-Schulz iterations that orthogonalize each matrix's update");
  f.add(app, "--sgd-momentum", &TrainConfig::sgd_momentum,
        "SGD: heavy-ball momentum in [0, 1) (0 = plain gradient descent)");
  f.add(app, "--grad-clip", &TrainConfig::grad_clip, "clip the global gradient norm (0 = off)");
  // A uint64_t field: FlagSet checks it with whole_number<uint64_t>(), which is seed().
  f.add(app, "--seed", &TrainConfig::seed,
        "random seed (init, data order, sample): a whole number in [0, 2^64 - 1]");
  f.add(app, "--eval-every", &TrainConfig::eval_every,
        "steps between validation losses (0 = end only)");
  f.add(app, "--eval-batches", &TrainConfig::eval_batches, "validation batches per evaluation");
  f.add(app, "--ckpt-every", &TrainConfig::ckpt_every, "steps between checkpoints (0 = end only)");
  return f;
}

void apply_implied_settings(const ModelConfig& m, TrainConfig& t,
                            const std::vector<std::string>& given) {
  const std::string wd = scale_preset_wd_policy(m.scale);
  if (!wd.empty() && std::find(given.begin(), given.end(), "--wd-policy") == given.end())
    t.wd_policy = parse_wd_policy(wd);
}

}  // namespace scalevec
