// Input-side placement of scale vectors at one normalization site (SCALE_VECTORS.md §2, §4).
//
//     n = N(x)                      computed once by the block (rmsnorm.h)
//     a_f = γ_{g(f)} ⊙ n            what branch f's linear map consumes: z_f = W_f a_f
//
// The branches at a site are q, k, v (attention input), gate, up (MLP input) or the head (final
// norm). Branches map to groups, one γ per group: the baseline shares one γ across all branches
// of the site; `none` has no γ at all (a_f = n). Because W_f (γ ⊙ n) = (W_f diag(γ)) n, every γ
// placed here can be folded into the columns of the linear maps it feeds: it is Input-type.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../ops/scale.h"
#include "vector.h"

namespace scalevec {

// [snippet:input_side]
template <class T>
class InputSideScale {
 public:
  InputSideScale() = default;

  // site: parameter name prefix (e.g. "layers.0.attn_norm"); branches: the linear maps fed here
  // (e.g. {"attn.wq", "attn.wk", "attn.wv"}), used to document where γ folds.
  InputSideScale(ParamLayout& layout, const std::string& site, int C, ScaleParam kind,
                 const std::vector<std::string>& branches, size_t max_rows)
      : C_(C), group_of_(branches.size(), 0) {
    std::string fold = "columns of";
    for (const auto& b : branches) fold += " " + b;
    gammas_.emplace_back(layout, site + ".gamma", C, kind, ScaleType::Input, fold);
    for (auto& g : gammas_) {
      a_.emplace_back(g.identity() ? 0 : max_rows * C);
      da_.emplace_back(max_rows * C);
    }
  }

  // a_g = γ_g ⊙ n for every group; an identity γ reads n directly.
  void forward(const T* params, const T* n, int N) {
    n_ = n;
    for (size_t g = 0; g < gammas_.size(); g++)
      if (!gammas_[g].identity())
        scale_forward(a_[g].data(), n, gammas_[g].forward(params), N, C_);
  }
  const T* input(int branch) const {  // (N, C)
    const int g = group_of_[branch];
    return gammas_[g].identity() ? n_ : a_[g].data();
  }

  // Backward protocol: zero_grad, then each branch's linear backward accumulates into
  // dinput(branch), then backward() pushes those gradients into dn and into γ.
  void zero_grad(int N) {
    for (auto& d : da_) std::fill(d.begin(), d.begin() + (size_t)N * C_, T(0));
  }
  T* dinput(int branch) { return da_[group_of_[branch]].data(); }

  // a = γ ⊙ n:  dn += da ⊙ γ,  dγ += Σ_rows da ⊙ n  (scale_backward); identity: dn += da.
  void backward(T* grads, T* dn, int N) {
    for (size_t g = 0; g < gammas_.size(); g++) {
      T* da = da_[g].data();
      if (gammas_[g].identity()) {
        for (size_t i = 0; i < (size_t)N * C_; i++) dn[i] += da[i];
        continue;
      }
      scale_backward(dn, gammas_[g].grad(), da, n_, gammas_[g].value(), N, C_);
      gammas_[g].backward(grads);
    }
  }

 private:
  int C_ = 0;
  std::vector<int> group_of_;             // branch -> group
  std::vector<ScaleVector<T>> gammas_;    // one per group
  std::vector<std::vector<T>> a_, da_;    // per group: (N, C) branch input and its gradient
  const T* n_ = nullptr;                  // the normalized input of the last forward
};
// [end]

}  // namespace scalevec
