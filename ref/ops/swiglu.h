// SwiGLU gating of the Llama MLP:  h = silu(g) ⊙ u,  silu(g) = g · σ(g).
// g and u: (N, F) with row stride ld (the gate and up columns of one (N, 2F) buffer); h: (N, F).
#pragma once

#include "exp.h"

namespace scalevec {

// σ(x) = 1 / (1 + e^-x); vexp (exp.h) so that the loops below vectorize.
template <class T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + vexp(-x));
}

// [snippet:swiglu]
template <class T>
void swiglu_forward(T* h, const T* g, const T* u, int N, int F, int ld) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++)
    for (int j = 0; j < F; j++) {
      const T gv = g[(size_t)i * ld + j];
      h[(size_t)i * F + j] = gv * sigmoid(gv) * u[(size_t)i * ld + j];
    }
}

// h = silu(g) u:  du += dh silu(g),  dg += dh u silu'(g),  silu'(g) = σ(g) (1 + g (1 - σ(g))).
template <class T>
void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, int N, int F, int ld) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++)
    for (int j = 0; j < F; j++) {
      const size_t a = (size_t)i * ld + j;
      const T gv = g[a], s = sigmoid(gv), d = dh[(size_t)i * F + j];
      du[a] += d * gv * s;
      dg[a] += d * u[a] * s * (T(1) + gv * (T(1) - s));
    }
}
// [end]

}  // namespace scalevec
