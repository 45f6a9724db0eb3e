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
// Every kind, in enum order: the one list that names, flags and tests iterate.
inline constexpr ScaleParam kScaleParams[] = {ScaleParam::None, ScaleParam::Gamma,
                                              ScaleParam::MagDir, ScaleParam::MagDirNormalized};

// A kind's name (flags, files) and its formula (ASCII, for --help).
inline const char* scale_param_name(ScaleParam p) {
  switch (p) {
    case ScaleParam::None:
      return "none";
    case ScaleParam::Gamma:
      return "gamma";
    case ScaleParam::MagDir:
      return "magdir";
    case ScaleParam::MagDirNormalized:
      return "magdir-normalized";
  }
  return "?";
}
inline const char* scale_param_formula(ScaleParam p) {
  switch (p) {
    case ScaleParam::None:
      return "gamma = 1, no parameters";
    case ScaleParam::Gamma:
      return "gamma itself";
    case ScaleParam::MagDir:
      return "beta*alpha";
    case ScaleParam::MagDirNormalized:
      return "beta*alpha/rms(alpha)";
  }
  return "?";
}

// The parameters a kind declares (ScaleVector puts them in the layout): a (d,) vector, named by
// the site's symbol ("gamma" or "u") unless `vector_name` is set, and a magnitude β (1,); both
// start at the value that makes γ = 1 (what folding resets them to).
struct ScaleParamSpec {
  bool vector = false;                // declares a (d,) parameter
  const char* vector_name = nullptr;  // nullptr: the site's symbol
  double vector_identity = 1.0;       // its value for γ = 1
  bool magnitude = false;             // declares β (1,), identity 1
};
inline ScaleParamSpec scale_param_spec(ScaleParam p) {
  switch (p) {
    case ScaleParam::None:
      return {};
    case ScaleParam::Gamma:
      return {true, nullptr, 1.0, false};
    case ScaleParam::MagDir:
    case ScaleParam::MagDirNormalized:
      return {true, "alpha", 1.0, true};
  }
  return {};
}

// A value outside the enum (a corrupt cast) is an error, never treated as another kind.
[[noreturn]] inline void unknown_scale_param(ScaleParam p) {
  throw Error(fmt::format("unknown scale parameterization {}", int(p)));
}

// Whether a parameterization has a magnitude β (the magdir kinds).
inline bool has_magnitude(ScaleParam p) { return scale_param_spec(p).magnitude; }

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
    case ScaleParam::None:
      return;
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
      for (int c = 0; c < d; c++)
        dparam[c] += (beta[0] * dgamma[c] - param[c] * inv * mean_dot) * inv;
      dbeta[0] += db;
      return;
    }
  }
  unknown_scale_param(kind);
}
// [end]

}  // namespace scalevec
