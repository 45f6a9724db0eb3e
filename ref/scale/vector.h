// Scale-vector parameterizations: how a vector γ ∈ R^d is produced from learnable parameters.
//
//   none               γ ≡ 1, no parameters (the "no scale vectors" ablation)           [paper]
//   gamma              γ is the parameter itself, initialised to 1 (the standard gain)  [paper]
//   magdir             γ = β α: a scalar magnitude β times a direction vector α, both
//                      initialised to 1 (docs/SCALE_VECTORS.md §4, "OR")                     [paper]
//   magdir-normalized  γ = β α / rms(α): the direction carries no magnitude of its own
//                      (weight-normalization style)                                     [choice]
//
// Every parameter a parameterization declares carries the ScaleType of the scale it forms
// ("β and α take the type of the scale they form", docs/SCALE_VECTORS.md §4).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../params.h"

namespace scalevec {

enum class ScaleParam { None, Gamma, MagDir, MagDirNormalized };

const char* scale_param_name(ScaleParam p);
ScaleParam parse_scale_param(const std::string& s);  // throws Error on unknown names
const char* scale_param_names();                      // "none, gamma, magdir, magdir-normalized"
const std::vector<std::string>& scale_param_list();   // the same names, for flag checks

// Where a scale vector sits, for documentation and for the fold test: its type, the linear maps
// it folds into (Input-type) or would have to fold into (Output-type), and whether a later
// normalization cancels its overall magnitude (then a magnitude parameter β gets no gradient).
struct ScaleSiteInfo {
  ScaleType type = ScaleType::Input;
  std::string fold;                 // human-readable, shown by `scalevec inspect`
  bool magnitude_cancelled = false; // a normalization downstream removes any global factor
};

template <class T>
class ScaleVector {
 public:
  ScaleVector() = default;  // identity: γ ≡ 1, no parameters

  // Declares the parameters of a scale named `base` (e.g. "layers.0.attn_norm") in the layout:
  // `base.<symbol>` for gamma (symbol "gamma" or "u"), `base.beta` and `base.alpha` for magdir.
  ScaleVector(ParamLayout& layout, const std::string& base, const std::string& symbol, int d,
              ScaleParam kind, const ScaleSiteInfo& site)
      : kind_(kind), d_(d), gamma_(d, T(1)), dgamma_(d, T(0)) {
    auto declare = [&](const std::string& name, std::vector<int> shape, const std::string& note) {
      ParamInfo p;
      p.name = name, p.shape = std::move(shape), p.role = Role::Scale;
      p.scale_type = site.type, p.init_value = 1.0, p.fold = site.fold, p.note = note;
      return layout.add(p);
    };
    if (kind_ == ScaleParam::Gamma) off_ = declare(base + "." + symbol, {d}, "");
    if (kind_ == ScaleParam::MagDir || kind_ == ScaleParam::MagDirNormalized) {
      off_beta_ = declare(base + ".beta", {1},
                          site.magnitude_cancelled
                              ? "gradient structurally zero up to eps: a later normalization cancels this magnitude"
                              : "");
      off_ = declare(base + ".alpha", {d}, "");
    }
  }

  bool identity() const { return kind_ == ScaleParam::None; }
  ScaleParam kind() const { return kind_; }
  int dim() const { return d_; }
  // Where the parameters live in the flat buffer (the CUDA mirror reads them from here).
  size_t offset() const { return off_; }          // γ (gamma) or α (magdir)
  size_t beta_offset() const { return off_beta_; }  // β (magdir kinds only)

  // [snippet:scale_vector_pass]
  // γ from the parameters; the returned (d,) array stays valid until the next forward.
  const T* forward(const T* params) {
    switch (kind_) {
      case ScaleParam::None: break;
      case ScaleParam::Gamma: std::copy(params + off_, params + off_ + d_, gamma_.begin()); break;
      case ScaleParam::MagDir:  // γ = β α
        for (int c = 0; c < d_; c++) gamma_[c] = params[off_beta_] * params[off_ + c];
        break;
      case ScaleParam::MagDirNormalized: {  // γ = β α / rms(α)
        inv_rms_ = T(1) / rms(params + off_);
        for (int c = 0; c < d_; c++) gamma_[c] = params[off_beta_] * params[off_ + c] * inv_rms_;
        break;
      }
    }
    return gamma_.data();
  }
  const T* value() const { return gamma_.data(); }  // γ of the last forward

  // dγ: the ops that use γ accumulate into this (d,) array during the backward pass.
  T* grad() { return dgamma_.data(); }

  // Chains dγ into the parameters' gradients, then clears dγ.
  //   gamma:              dγ_param = dγ
  //   magdir:             dα = β dγ,   dβ = Σ_c α_c dγ_c
  //   magdir-normalized:  with â = α / rms(α):  dβ = Σ_c â_c dγ_c,  dâ = β dγ, and through the
  //                       normalization (RMSNorm's backward with eps = 0):
  //                       dα = (dâ - â mean(dâ ⊙ â)) / rms(α)
  void backward(const T* params, T* grads) {
    const T* alpha = params + off_;
    switch (kind_) {
      case ScaleParam::None: break;
      case ScaleParam::Gamma:
        for (int c = 0; c < d_; c++) grads[off_ + c] += dgamma_[c];
        break;
      case ScaleParam::MagDir: {
        T dbeta = 0;
        for (int c = 0; c < d_; c++) {
          dbeta += alpha[c] * dgamma_[c];
          grads[off_ + c] += params[off_beta_] * dgamma_[c];
        }
        grads[off_beta_] += dbeta;
        break;
      }
      case ScaleParam::MagDirNormalized: {
        T dbeta = 0, dot = 0;
        for (int c = 0; c < d_; c++) {
          const T a_hat = alpha[c] * inv_rms_;
          dbeta += a_hat * dgamma_[c];
          dot += params[off_beta_] * dgamma_[c] * a_hat;
        }
        const T mean_dot = dot / T(d_);
        for (int c = 0; c < d_; c++)
          grads[off_ + c] += (params[off_beta_] * dgamma_[c] - alpha[c] * inv_rms_ * mean_dot) * inv_rms_;
        grads[off_beta_] += dbeta;
        break;
      }
    }
    std::fill(dgamma_.begin(), dgamma_.end(), T(0));
  }
  // [end]

  // Sets the parameters so that γ = 1 (used to fold a scale into a linear map).
  void set_identity(T* params) const {
    if (kind_ == ScaleParam::None) return;
    std::fill(params + off_, params + off_ + d_, T(1));
    if (kind_ != ScaleParam::Gamma) params[off_beta_] = T(1);
  }

 private:
  T rms(const T* a) const {
    T ss = 0;
    for (int c = 0; c < d_; c++) ss += a[c] * a[c];
    return std::sqrt(ss / T(d_));
  }
  ScaleParam kind_ = ScaleParam::None;
  int d_ = 0;
  size_t off_ = 0, off_beta_ = 0;  // offsets of γ (or α) and of β in the parameter buffer
  T inv_rms_ = 1;                  // 1 / rms(α) of the last forward (magdir-normalized)
  std::vector<T> gamma_, dgamma_;  // (d,) each
};

}  // namespace scalevec
