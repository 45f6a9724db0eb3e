// Input-side placement of scale vectors at one normalization site (docs/SCALE_VECTORS.md §2, §4).
//
//     n = N(x)                      computed once by the block (rmsnorm.h)
//     a_f = γ_{g(f)} ⊙ n            what branch f's linear map consumes: z_f = W_f a_f
//
// The branches at a site are q, k, v (attention input), gate, up (MLP input) or the head (final
// norm). Branches map to groups, one γ per group: the baseline shares one γ across all branches
// of the site [paper]; HG gives every branch its own γ_f over the same n [paper]; `none` has no γ
// at all (a_f = n). Because W_f (γ ⊙ n) = (W_f diag(γ)) n, every γ placed here can be folded
// into the columns of the linear maps it feeds: it is Input-type.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../ops/backend.h"
#include "fold.h"
#include "vector.h"

namespace scalevec {

// One linear map fed by this site.
struct InputBranch {
  std::string name;         // short name: "q", "k", "v", "gate", "up", "head"
  std::string w_name;       // its matrix, e.g. "layers.0.attn.wq"
  bool normalized = false;  // a normalization downstream removes any global factor of its output
                            // (DNP, QK-Norm, or a post-norm after v or up)
};

template <class T, class Ops = CpuOps<T>>
class InputSideScale {
 public:
  InputSideScale() = default;

  // site: parameter prefix (e.g. "layers.0.attn_norm"); per_branch: HG (one γ per branch) instead
  // of one shared γ; skip_cancelled: a group whose every branch is normalized after its linear map
  // cannot use a magnitude β (the normalization cancels it), so it gets plain γ [choice].
  InputSideScale(ParamLayout& layout, const std::string& site, int C, ScaleParam param,
                 const std::vector<InputBranch>& branches, bool per_branch, bool skip_cancelled,
                 size_t max_rows)
      : C_(C), group_of_(branches.size(), 0) {
    const size_t n_groups = per_branch ? branches.size() : 1;
    for (size_t g = 0; g < n_groups; g++) {
      std::string fold = "columns of";
      bool cancelled = true;
      for (size_t f = 0; f < branches.size(); f++)
        if (!per_branch || f == g) {
          group_of_[f] = (int)g;
          fold += " " + branches[f].w_name;
          cancelled = cancelled && branches[f].normalized;
        }
      const ScaleParam p =
          (skip_cancelled && cancelled && has_magnitude(param)) ? ScaleParam::Gamma : param;
      const std::string base = per_branch ? site + "." + branches[g].name : site;
      gammas_.emplace_back(layout, base, "gamma", C, p,
                           ScaleSiteInfo{ScaleType::Input, fold, cancelled});
      names_.push_back(base);
    }
    for (auto& g : gammas_) {
      a_.emplace_back(g.identity() ? 0 : max_rows * C);
      da_.emplace_back(max_rows * C);
    }
  }

  // clang-format off: the call list's aligned comments are its reading
  // [snippet:input_side_pass]
  // a_g = γ_g ⊙ n for every group; an identity γ reads n directly.
  void forward(const T* params, const T* n, int N) {
    n_ = n;
    for (size_t g = 0; g < gammas_.size(); g++)
      if (!gammas_[g].identity())
        Ops::scale_forward(a_[g].data(), n, gammas_[g].forward(params), N, C_);
  }
  const T* input(int branch) const {  // (N, C)
    const int g = group_of_[branch];
    return gammas_[g].identity() ? n_ : a_[g].data();
  }

  // Backward protocol: zero_grad, then each branch's linear backward accumulates into
  // dinput(branch), then backward() pushes those gradients into dn and into γ.
  void zero_grad(int N) {
    for (auto& d : da_) Ops::zero(d.data(), (size_t)N * C_);
  }
  T* dinput(int branch) { return da_[group_of_[branch]].data(); }

  // a = γ ⊙ n:  dn += da ⊙ γ,  dγ += Σ_rows da ⊙ n  (scale_backward); identity: dn += da.
  void backward(const T* params, T* grads, T* dn, int N) {
    for (size_t g = 0; g < gammas_.size(); g++) {
      T* da = da_[g].data();
      if (gammas_[g].identity()) {
        Ops::accumulate(dn, da, (size_t)N * C_);
        continue;
      }
      Ops::scale_backward(dn, gammas_[g].grad(), da, n_, gammas_[g].value(), N, C_);
      gammas_[g].backward(params, grads);
    }
  }
  // [end]
  // clang-format on

  // Structure (for `scalevec diagram` and the trace): the scale of each group, the group of each
  // branch.
  const std::vector<ScaleVector<T, Ops>>& groups() const { return gammas_; }
  int group_of(int branch) const { return group_of_[branch]; }
  int branches() const { return (int)group_of_.size(); }

  // The linear maps of the branches, in branch order (declared after the γ, so set afterwards).
  void set_targets(std::vector<FoldTarget> maps) { targets_ = std::move(maps); }

  // The scale sites of this norm: each γ folds into the columns of the maps of its group.
  void sites(std::vector<ScaleSite<T>>& out) {
    for (size_t g = 0; g < gammas_.size(); g++) {
      if (gammas_[g].identity()) continue;
      ScaleSite<T> s{names_[g], ScaleType::Input, &gammas_[g], {}};
      for (size_t f = 0; f < targets_.size(); f++)
        if (group_of_[f] == (int)g) s.targets.push_back(targets_[f]);
      out.push_back(s);
    }
  }

 private:
  int C_ = 0;
  std::vector<int> group_of_;                // branch -> group
  std::vector<ScaleVector<T, Ops>> gammas_;  // one per group
  std::vector<std::string> names_;           // one per group: parameter prefix
  std::vector<FoldTarget> targets_;          // one per branch: its linear map
  std::vector<typename Ops::Array> a_, da_;  // per group: (N, C) branch input and its gradient
  const T* n_ = nullptr;                     // the normalized input of the last forward
};

}  // namespace scalevec
