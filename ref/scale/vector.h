// Scale-vector parameterizations: how a vector γ ∈ R^d is produced from learnable parameters.
//   none   γ ≡ 1, no parameters (the "no scale vectors" ablation)
//   gamma  γ is the parameter itself, initialised to 1 (the standard normalization gain)
// Every parameter a parameterization declares carries the ScaleType of the scale it forms
// (SCALE_VECTORS.md §4: "β and α take the type of the scale they form").
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../model/params.h"

namespace scalevec {

enum class ScaleParam { None, Gamma };

const char* scale_param_name(ScaleParam p);
ScaleParam parse_scale_param(const std::string& s);  // throws Error on unknown names

// [snippet:scale_vector]
template <class T>
class ScaleVector {
 public:
  ScaleVector() = default;  // identity: γ ≡ 1, no parameters

  // Declares this scale's parameters in the layout. `fold` documents where an Input-type scale
  // folds (or why an Output-type one cannot); it is shown by `scalevec inspect`.
  ScaleVector(ParamLayout& layout, const std::string& name, int d, ScaleParam kind,
              ScaleType type, const std::string& fold)
      : kind_(kind), d_(d), gamma_(d, T(1)), dgamma_(d, T(0)) {
    if (kind_ == ScaleParam::Gamma) {
      ParamInfo p;
      p.name = name;
      p.shape = {d};
      p.role = Role::Scale;
      p.scale_type = type;
      p.init_value = 1.0;
      p.fold = fold;
      off_ = layout.add(p);
    }
  }

  bool identity() const { return kind_ == ScaleParam::None; }
  int dim() const { return d_; }

  // γ from the parameters; the returned (d,) array stays valid until the next forward.
  const T* forward(const T* params) {
    if (kind_ == ScaleParam::Gamma) std::copy(params + off_, params + off_ + d_, gamma_.begin());
    return gamma_.data();
  }
  const T* value() const { return gamma_.data(); }  // γ of the last forward

  // dγ: the ops that use γ accumulate into this (d,) array during the backward pass.
  T* grad() { return dgamma_.data(); }

  // Chains dγ into the parameters' gradients (for `gamma`, dparam = dγ), then clears dγ.
  void backward(T* grads) {
    if (kind_ == ScaleParam::Gamma)
      for (int c = 0; c < d_; c++) grads[off_ + c] += dgamma_[c];
    std::fill(dgamma_.begin(), dgamma_.end(), T(0));
  }

 private:
  ScaleParam kind_ = ScaleParam::None;
  int d_ = 0;
  size_t off_ = 0;
  std::vector<T> gamma_, dgamma_;  // (d,) each
};
// [end]

}  // namespace scalevec
