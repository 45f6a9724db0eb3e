// Scale-vector parameterizations: how a vector γ ∈ R^d is produced from learnable parameters.
//
//   none               γ ≡ 1, no parameters (the "no scale vectors" ablation)           [paper]
//   gamma              γ is the parameter itself, initialised to 1 (the standard gain)  [paper]
//   magdir             γ = β α: a scalar magnitude β times a direction vector α, both
//                      initialised to 1 (docs/SCALE_VECTORS.md §4, "OR") [paper]
//   magdir-normalized  γ = β α / rms(α): the direction carries no magnitude of its own
//                      (weight-normalization style)                                     [choice]
//
// The arithmetic of each is an op (ref/ops/scale_vector.h); this module owns the parameters' place
// in the layout and the γ of the last forward. Every parameter a parameterization declares carries
// the ScaleType of the scale it forms ("β and α take the type of the scale they form",
// docs/SCALE_VECTORS.md §4).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../ops/backend.h"
#include "../ops/scale_vector.h"
#include "../params.h"

namespace scalevec {

// scale_param_name and scale_param_formula: ref/ops/scale_vector.h.
std::string scale_param_help();                      // every name with its formula, for --help
ScaleParam parse_scale_param(const std::string& s);  // throws Error on unknown names
const char* scale_param_names();                     // "none, gamma, magdir, magdir-normalized"
const std::vector<std::string>& scale_param_list();  // the same names, for flag checks

// Where a scale vector sits, for documentation and for the fold test: its type, the linear maps
// it folds into (Input-type) or would have to fold into (Output-type), and whether a later
// normalization cancels its overall magnitude (then a magnitude parameter β gets no gradient).
struct ScaleSiteInfo {
  ScaleType type = ScaleType::Input;
  std::string fold;                  // human-readable, shown by `scalevec inspect`
  bool magnitude_cancelled = false;  // a normalization downstream removes any global factor
};

// Ops: the backend (ref/ops/backend.h) whose arrays hold γ and dγ and whose ops compute them.
template <class T, class Ops = CpuOps<T>>
class ScaleVector {
 public:
  ScaleVector() = default;  // identity: γ ≡ 1, no parameters

  // Declares the parameters of a scale named `base` (e.g. "layers.0.attn_norm") in the layout:
  // `base.<symbol>` for gamma (symbol "gamma" or "u"), `base.beta` and `base.alpha` for magdir.
  ScaleVector(ParamLayout& layout, const std::string& base, const std::string& symbol, int d,
              ScaleParam kind, const ScaleSiteInfo& site)
      : kind_(kind), d_(d), gamma_(d), dgamma_(d) {
    auto declare = [&](const std::string& name, std::vector<int> shape, double init,
                       const std::string& note) {
      ParamInfo p;
      p.name = name, p.shape = std::move(shape), p.role = Role::Scale;
      p.scale_type = site.type, p.init_value = init, p.fold = site.fold, p.note = note;
      return layout.add(p);
    };
    const ScaleParamSpec spec = scale_param_spec(kind_);  // β first, then the vector
    if (spec.magnitude)
      off_beta_ = declare(
          base + ".beta", {1}, 1.0,
          site.magnitude_cancelled
              ? "gradient structurally zero up to eps: a later normalization cancels this magnitude"
              : "");
    if (spec.vector)
      off_ = declare(base + "." + (spec.vector_name ? spec.vector_name : symbol), {d},
                     spec.vector_identity, "");
    Ops::scale_vector_forward(gamma_.data(), nullptr, nullptr, ScaleParam::None, d_);  // γ = 1
  }

  bool identity() const { return kind_ == ScaleParam::None; }
  ScaleParam kind() const { return kind_; }
  int dim() const { return d_; }
  // Where the parameters live in the flat buffer.
  size_t offset() const { return off_; }            // γ (gamma) or α (magdir)
  size_t beta_offset() const { return off_beta_; }  // β (magdir kinds only)

  // [snippet:scale_vector_pass]
  // γ from the parameters; the returned (d,) array stays valid until the next forward.
  const T* forward(const T* params) {
    if (!identity())
      Ops::scale_vector_forward(gamma_.data(), params + off_, beta(params), kind_, d_);
    return gamma_.data();
  }
  const T* value() const { return gamma_.data(); }  // γ of the last forward

  // dγ: the ops that use γ accumulate into this (d,) array during the backward pass.
  T* grad() { return dgamma_.data(); }

  // Chains dγ into the parameters' gradients (scale_vector_backward), then clears dγ.
  void backward(const T* params, T* grads) {
    if (!identity())
      Ops::scale_vector_backward(grads + off_, has_magnitude(kind_) ? grads + off_beta_ : nullptr,
                                 dgamma_.data(), params + off_, beta(params), kind_, d_);
    Ops::zero(dgamma_.data(), d_);
  }
  // [end]

  // Sets the parameters so that γ = 1 (used to fold a scale into a linear map).
  void set_identity(T* params) const {
    const ScaleParamSpec spec = scale_param_spec(kind_);
    if (spec.vector) std::fill(params + off_, params + off_ + d_, T(spec.vector_identity));
    if (spec.magnitude) params[off_beta_] = T(1);
  }

 private:
  const T* beta(const T* params) const {
    return has_magnitude(kind_) ? params + off_beta_ : nullptr;
  }
  ScaleParam kind_ = ScaleParam::None;
  int d_ = 0;
  size_t off_ = 0, off_beta_ = 0;       // offsets of γ (or α) and of β in the parameter buffer
  typename Ops::Array gamma_, dgamma_;  // (d,) each
};

}  // namespace scalevec
