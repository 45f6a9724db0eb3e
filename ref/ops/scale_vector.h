// Scale-vector parameterizations as ops: γ ∈ R^d from its learnable parameters, and the backward
// that chains dγ into them. ScaleVector (ref/scale/vector.h) decides where the parameters live;
// these two functions are the whole arithmetic of each parameterization, in the reference and (as
// kernels with the same formulas) in gpu/ops.cu.
//
//   none               γ ≡ 1, no parameters                                              [paper]
//   gamma              γ is the parameter itself                                         [paper]
//   magdir             γ = β α: a scalar magnitude β times a direction α (docs/SCALE_VECTORS.md §4)
//   magdir-normalized  γ = β α / rms(α)                                                 [choice]
#pragma once

#include <cmath>

#include "../common.h"

namespace scalevec {

enum class ScaleParam { None, Gamma, MagDir, MagDirNormalized };

// Whether a parameterization has a magnitude β (the magdir kinds).
inline bool has_magnitude(ScaleParam p) { return p == ScaleParam::MagDir || p == ScaleParam::MagDirNormalized; }

// A value outside the enum (a corrupt cast) is an error, never treated as another kind.
[[noreturn]] inline void unknown_scale_param(ScaleParam p) {
  throw Error(fmt::format("unknown scale parameterization {}", int(p)));
}

// [snippet:scale_vector_ops]
// param: γ (gamma) or α (magdir kinds), (d,); beta: β, (1,), magdir kinds only (else unused).
template <class T>
T inv_rms(const T* a, int d) {  // 1 / rms(α), summed in index order
  T ss = 0;
  for (int c = 0; c < d; c++) ss += a[c] * a[c];
  return T(1) / std::sqrt(ss / T(d));
}

template <class T>
void scale_vector_forward(T* gamma, const T* param, const T* beta, ScaleParam kind, int d) {
  switch (kind) {
    case ScaleParam::None:
      for (int c = 0; c < d; c++) gamma[c] = T(1);
      return;
    case ScaleParam::Gamma:
      for (int c = 0; c < d; c++) gamma[c] = param[c];
      return;
    case ScaleParam::MagDir:  // γ = β α
      for (int c = 0; c < d; c++) gamma[c] = beta[0] * param[c];
      return;
    case ScaleParam::MagDirNormalized: {  // γ = β α / rms(α)
      const T inv = inv_rms(param, d);
      for (int c = 0; c < d; c++) gamma[c] = beta[0] * param[c] * inv;
      return;
    }
  }
  unknown_scale_param(kind);
}

// Accumulates (+=) into dparam and dbeta:
//   gamma:              dγ_param = dγ
//   magdir:             dα = β dγ,   dβ = Σ_c α_c dγ_c
//   magdir-normalized:  with â = α / rms(α):  dβ = Σ_c â_c dγ_c,  dâ = β dγ, and through the
//                       normalization (RMSNorm's backward with eps = 0):
//                       dα = (dâ - â mean(dâ ⊙ â)) / rms(α)
template <class T>
void scale_vector_backward(T* dparam, T* dbeta, const T* dgamma, const T* param, const T* beta,
                           ScaleParam kind, int d) {
  switch (kind) {
    case ScaleParam::None: return;
    case ScaleParam::Gamma:
      for (int c = 0; c < d; c++) dparam[c] += dgamma[c];
      return;
    case ScaleParam::MagDir: {
      T db = 0;
      for (int c = 0; c < d; c++) {
        db += param[c] * dgamma[c];
        dparam[c] += beta[0] * dgamma[c];
      }
      dbeta[0] += db;
      return;
    }
    case ScaleParam::MagDirNormalized: {
      const T inv = inv_rms(param, d);
      T db = 0, dot = 0;
      for (int c = 0; c < d; c++) {
        const T a_hat = param[c] * inv;
        db += a_hat * dgamma[c];
        dot += beta[0] * dgamma[c] * a_hat;
      }
      const T mean_dot = dot / T(d);
      for (int c = 0; c < d; c++) dparam[c] += (beta[0] * dgamma[c] - param[c] * inv * mean_dot) * inv;
      dbeta[0] += db;
      return;
    }
  }
  unknown_scale_param(kind);
}
// [end]

}  // namespace scalevec
