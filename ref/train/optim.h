// Optimizer: AdamW with decoupled weight decay, parameter groups derived from the layout's tags.
//
// Weight decay on scale vectors is a policy (SCALE_VECTORS.md §3-4), applied from each scale's
// ScaleType tag, never from a list of tensor names:
//   none  no decay on any scale vector (the common practice: norm gains excluded)
//   all   decay on every scale vector
//   iwd   decay on Input-type scales only (the paper's rule)
// Matrices and the head always decay; embeddings decay when decay_embeddings is set.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../model/params.h"

namespace scalevec {

enum class WdPolicy { None, All, Iwd };
const char* wd_policy_name(WdPolicy p);
WdPolicy parse_wd_policy(const std::string& s);  // throws Error on unknown names

struct DecayRule {
  double weight_decay = 0.1;
  WdPolicy scale_policy = WdPolicy::None;
  bool decay_embeddings = false;
  // [snippet:decays]
  bool decays(const ParamInfo& p) const {
    switch (p.role) {
      case Role::Matrix:
      case Role::Head: return true;
      case Role::Embedding: return decay_embeddings;
      case Role::Scale:
        return scale_policy == WdPolicy::All ||
               (scale_policy == WdPolicy::Iwd && p.scale_type == ScaleType::Input);
    }
    return false;
  }
  // [end]
};

struct AdamWConfig {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  DecayRule decay;
};

// State: first and second moments m, v (same layout as the parameters) and the step count.
template <class T>
class AdamW {
 public:
  AdamW(const ParamLayout& layout, const AdamWConfig& cfg);
  // One update with learning rate lr (PyTorch's torch.optim.AdamW formula):
  //     p ← p (1 - lr·wd)            (decoupled decay, only where decays(p))
  //     m ← β1 m + (1-β1) g,   v ← β2 v + (1-β2) g²
  //     p ← p - lr · (m / (1-β1ᵗ)) / (sqrt(v / (1-β2ᵗ)) + eps)
  void step(T* params, const T* grads, double lr);
  const AdamWConfig& config() const { return cfg_; }

  std::vector<T> m, v;
  int64_t t = 0;  // number of steps taken

 private:
  struct Group {
    size_t offset, numel;
    bool decay;
  };
  AdamWConfig cfg_;
  std::vector<Group> groups_;
};

// Global L2 norm of the gradient (summed in double, fixed order); if it exceeds max_norm > 0, the
// gradient is scaled down to max_norm. Returns the norm before clipping.
template <class T>
double clip_grad_norm(T* grads, size_t n, double max_norm);

extern template class AdamW<float>;
extern template class AdamW<double>;

}  // namespace scalevec
