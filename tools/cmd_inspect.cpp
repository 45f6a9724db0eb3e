// scalevec inspect: every parameter tensor with its size, role and, for scale vectors, its type
// (Input/Output), whether the chosen weight-decay policy decays it, and where it folds.
#include <filesystem>

#include "commands.h"
#include "ref/common.h"
#include "ref/train/checkpoint.h"
#include "ref/train/optim.h"

namespace scalevec {

Action add_inspect(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "inspect", "List parameters, their roles and scale-vector types, and the scale share");
  struct Args {
    std::string preset = "tiny", ckpt, wd_policy = "none";
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "architecture: tiny or small")
      ->check(CLI::IsMember({"tiny", "small"}))->capture_default_str();
  auto mf = std::make_shared<FlagSet<ModelConfig>>(model_flags(*cmd));
  cmd->add_option("--ckpt", a->ckpt, "inspect the model of this run directory / checkpoint instead");
  cmd->add_option("--wd-policy", a->wd_policy, "weight-decay policy whose decisions to show: none, all, iwd")
      ->check(CLI::IsMember({"none", "all", "iwd"}))->capture_default_str();
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
    fmt::print("{:<30} {:>12} {:>9}  {:<9} {:<6} {:<5}  {}\n", "tensor", "shape", "numel", "role",
               "type", "decay", "folds into / why not");
    for (const auto& p : model.layout().params()) {
      const bool scale = p.role == Role::Scale;
      fmt::print("{:<30} {:>12} {:>9}  {:<9} {:<6} {:<5}  {}\n", p.name, fmt::format("{}", fmt::join(p.shape, "x")),
                 p.numel, role_name(p.role), scale ? scale_type_name(p.scale_type) : "-",
                 rule.decays(p) ? "yes" : "no", p.fold);
    }
    const auto& L = model.layout();
    const double total = double(L.total()), sc = double(L.count_role(Role::Scale));
    fmt::print("\ntotal {} parameters: matrices {}, head {}, embedding {}, scale vectors {} "
               "({:.3e} of all, {:.4f}%)\n",
               L.total(), L.count_role(Role::Matrix), L.count_role(Role::Head),
               L.count_role(Role::Embedding), L.count_role(Role::Scale), sc / total, 100 * sc / total);
    return 0;
  };
}

}  // namespace scalevec
