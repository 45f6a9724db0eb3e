// scalevec inspect: every parameter tensor with its size, role and, for scale vectors, its type
// (Input/Output), whether the chosen weight-decay policy decays it, and where it folds.
#include <algorithm>
#include <filesystem>

#include "commands.h"
#include "ref/common.h"
#include "ref/train/checkpoint.h"
#include "ref/train/optim.h"

namespace scalevec {

static size_t count_type(const ParamLayout& L, ScaleType t) {
  size_t n = 0;
  for (const auto& p : L.params())
    if (p.role == Role::Scale && p.scale_type == t) n += p.numel;
  return n;
}

Action add_inspect(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "List the scale vectors (type Input/Output, weight decay, fold), the scale share, "
      "and parameters whose gradient is structurally zero");
  struct Args {
    std::string preset = "tiny", ckpt, wd_policy = "none";
    bool all = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "architecture: " + std::string(model_preset_names()))
      ->check(CLI::IsMember(model_preset_list()))
      ->capture_default_str();
  auto mf = std::make_shared<FlagSet<ModelConfig>>(model_flags(*cmd));
  cmd->add_option("--ckpt", a->ckpt,
                  "inspect the model of this run directory / checkpoint instead");
  cmd->add_option("--wd-policy", a->wd_policy,
                  "weight-decay policy whose decisions to show: none, all, iwd")
      ->check(CLI::IsMember(wd_policy_list()))
      ->capture_default_str();
  cmd->add_flag("--all", a->all, "list every tensor, not only the scale vectors");
  return [=]() -> int {
    ModelConfig cfg = model_preset(a->preset);
    if (!a->ckpt.empty()) {
      require(mf->given().empty(), "--ckpt and architecture flags ({}) cannot be combined",
              fmt::join(mf->given(), ", "));
      const std::string p = std::filesystem::is_directory(a->ckpt) ? model_path(a->ckpt) : a->ckpt;
      cfg = read_model_config(p);
    }
    mf->apply(cfg);
    const Transformer<float> model(cfg, 0);
    DecayRule rule;
    rule.scale_policy = parse_wd_policy(a->wd_policy);
    fmt::print(
        "scale strategy: {} (param {}, hg {}, dp {}, dnp {}, qk-norm {}, post-norm {}); "
        "weight-decay policy shown: {}\n\n",
        cfg.scale, scale_param_name(cfg.sc.param), cfg.sc.hg, branches_to_string(cfg.sc.dp),
        branches_to_string(cfg.sc.dnp), cfg.sc.qk_norm, cfg.sc.post_norm, a->wd_policy);
    const bool all = a->all;
    fmt::print("{:<34} {:>9} {:>8}  {:<9} {:<6} {:<5}  {}\n", "tensor", "shape", "numel", "role",
               "type", "decay", "folds into / why not");
    std::vector<const ParamInfo*> zero_grad;
    for (const auto& p : model.layout().params()) {
      const bool scale = p.role == Role::Scale;
      if (!p.note.empty()) zero_grad.push_back(&p);
      if (!scale && !all) continue;
      fmt::print("{:<34} {:>9} {:>8}  {:<9} {:<6} {:<5}  {}{}\n", p.name,
                 fmt::format("{}", fmt::join(p.shape, "x")), p.numel, role_name(p.role),
                 scale ? scale_type_name(p.scale_type) : "-", rule.decays(p) ? "yes" : "no", p.fold,
                 p.note.empty() ? "" : "  [" + p.note + "]");
    }
    if (!all) fmt::print("(matrices, embedding and head not listed: --all lists every tensor)\n");
    for (const ParamInfo* p : zero_grad) fmt::print("note: {}: {}\n", p->name, p->note);
    const auto& L = model.layout();
    fmt::print("\nscale vectors: {} tensors; Input-type {} parameters, Output-type {}\n",
               std::count_if(L.params().begin(), L.params().end(),
                             [](const ParamInfo& p) { return p.role == Role::Scale; }),
               count_type(L, ScaleType::Input), count_type(L, ScaleType::Output));
    const double total = double(L.total()), sc = double(L.count_role(Role::Scale));
    fmt::print(
        "\ntotal {} parameters: matrices {}, head {}, embedding {}, scale vectors {} "
        "({:.3e} of all, {:.4f}%)\n",
        L.total(), L.count_role(Role::Matrix), L.count_role(Role::Head),
        L.count_role(Role::Embedding), L.count_role(Role::Scale), sc / total, 100 * sc / total);
    return 0;
  };
}

}  // namespace scalevec
