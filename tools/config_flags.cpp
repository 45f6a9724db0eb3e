// The flags that map onto ModelConfig and TrainConfig fields; help texts show preset defaults.
#include "commands.h"

namespace scalevec {

FlagSet<ModelConfig> model_flags(CLI::App& app) {
  FlagSet<ModelConfig> f({{"tiny", model_preset("tiny")}, {"small", model_preset("small")}});
  f.add(app, "--layers", &ModelConfig::n_layer, "number of transformer blocks");
  f.add(app, "--d-model", &ModelConfig::d_model, "model width C");
  f.add(app, "--heads", &ModelConfig::n_head, "attention heads (d_model/heads must be even)");
  f.add(app, "--d-ff", &ModelConfig::d_ff, "SwiGLU hidden width F");
  f.add(app, "--context", &ModelConfig::context, "context length T in bytes");
  f.add(app, "--norm-eps", &ModelConfig::norm_eps, "RMSNorm epsilon");
  f.add(app, "--rope-base", &ModelConfig::rope_base, "RoPE base frequency");
  f.add(app, "--scale", &ModelConfig::scale,
        "scale-vector strategy: baseline (one shared gamma per norm, the paper's baseline) or "
        "none (no scale vectors, the paper's ablation)")
      ->check(CLI::IsMember({"baseline", "none"}));
  return f;
}

FlagSet<TrainConfig> train_flags(CLI::App& app) {
  FlagSet<TrainConfig> f({{"tiny", train_preset("tiny")}, {"small", train_preset("small")}});
  f.add(app, "--data", &TrainConfig::data,
        "training text file [default: the fortunes corpus; on --resume: the run's own data]", false);
  f.add(app, "--batch", &TrainConfig::batch, "sequences per step");
  f.add(app, "--steps", &TrainConfig::steps, "total optimizer steps");
  f.add(app, "--lr", &TrainConfig::lr, "peak learning rate (AdamW)");
  f.add(app, "--warmup", &TrainConfig::warmup, "linear warmup steps, then cosine decay");
  f.add(app, "--min-lr-frac", &TrainConfig::min_lr_frac, "final learning rate as a fraction of --lr");
  f.add(app, "--weight-decay", &TrainConfig::weight_decay, "decoupled weight decay");
  f.add(app, "--wd-policy", &TrainConfig::wd_policy,
        "weight decay on scale vectors: none (common practice), all, or iwd (Input-type scales "
        "only: the paper's rule)")
      ->check(CLI::IsMember({"none", "all", "iwd"}));
  f.add(app, "--wd-embed", &TrainConfig::wd_embed, "also decay the token embedding");
  f.add(app, "--beta1", &TrainConfig::beta1, "AdamW beta1");
  f.add(app, "--beta2", &TrainConfig::beta2, "AdamW beta2");
  f.add(app, "--adam-eps", &TrainConfig::adam_eps, "AdamW epsilon");
  f.add(app, "--grad-clip", &TrainConfig::grad_clip, "clip the global gradient norm (0 = off)");
  f.add(app, "--seed", &TrainConfig::seed, "random seed (init, data order, sample)");
  f.add(app, "--eval-every", &TrainConfig::eval_every, "steps between validation losses (0 = end only)");
  f.add(app, "--eval-batches", &TrainConfig::eval_batches, "validation batches per evaluation");
  f.add(app, "--ckpt-every", &TrainConfig::ckpt_every, "steps between checkpoints (0 = end only)");
  return f;
}

}  // namespace scalevec
