// The backend interface the modules are written over (ref/scale/, ref/model/): an owning array
// type and the ops, as static functions on contiguous row-major arrays. CpuOps<T> is the reference
// backend: each op is one call of the reference op of this directory (in float or double). The
// CUDA backend (gpu/backend.h) has the same members, implemented by the kernels of gpu/ops.cu on
// device memory; a module instantiated with it runs on the GPU with the same call list.
//
// Conventions of every backend:
//   - backward ops accumulate (+=) into every gradient they produce; forward ops overwrite;
//   - Array(n) and resize(n) give zeros, like std::vector;
//   - token and target ids are host arrays (the CUDA backend copies them to the device);
//   - every reduction into a parameter gradient or the loss runs in a fixed order (deterministic).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "attention.h"
#include "crossentropy.h"
#include "embedding.h"
#include "linear.h"
#include "residual.h"
#include "rmsnorm.h"
#include "rope.h"
#include "scale.h"
#include "scale_vector.h"
#include "swiglu.h"

namespace scalevec {

template <class T>
struct CpuOps {
  using Array = std::vector<T>;
  static constexpr bool host_memory = true;  // pointers into Array can be read by the host
  static Array from_host(const std::vector<T>& v) { return v; }

  // out (N, OC) = in (N, IC) Wᵀ, W (OC, IC)
  static void linear_forward(T* out, const T* in, const T* W, int N, int IC, int OC) {
    scalevec::linear_forward(out, in, W, N, IC, OC, OC);
  }
  static void linear_backward(T* din, T* dW, const T* dout, const T* in, const T* W, int N, int IC,
                              int OC) {
    scalevec::linear_backward(din, dW, dout, in, W, N, IC, OC, OC);
  }
  // n = x / sqrt(mean(x²) + eps) over rows of C channels; rstd (N,) kept for the backward
  static void rmsnorm_forward(T* n, T* rstd, const T* x, int N, int C, T eps) {
    scalevec::rmsnorm_forward(n, rstd, x, N, C, C, eps);
  }
  static void rmsnorm_backward(T* dx, const T* dn, const T* n, const T* rstd, int N, int C) {
    scalevec::rmsnorm_backward(dx, dn, n, rstd, N, C, C);
  }
  // y = γ ⊙ x over N rows of C
  static void scale_forward(T* y, const T* x, const T* gamma, int N, int C) {
    scalevec::scale_forward(y, x, gamma, N, C);
  }
  static void scale_backward(T* dx, T* dgamma, const T* dy, const T* x, const T* gamma, int N,
                             int C) {
    scalevec::scale_backward(dx, dgamma, dy, x, gamma, N, C);
  }
  // γ from its parameters (scale_vector.h)
  static void scale_vector_forward(T* gamma, const T* param, const T* beta, ScaleParam kind,
                                   int d) {
    scalevec::scale_vector_forward(gamma, param, beta, kind, d);
  }
  static void scale_vector_backward(T* dparam, T* dbeta, const T* dgamma, const T* param,
                                    const T* beta, ScaleParam kind, int d) {
    scalevec::scale_vector_backward(dparam, dbeta, dgamma, param, beta, kind, d);
  }
  // RoPE in place on x (B, T, NH·hs); cos, sin (T, hs/2)
  static void rope_forward(T* x, const T* cos, const T* sin, int B, int Tn, int NH, int hs) {
    scalevec::rope_forward(x, cos, sin, B, Tn, NH, hs, NH * hs);
  }
  static void rope_backward(T* dx, const T* cos, const T* sin, int B, int Tn, int NH, int hs) {
    scalevec::rope_backward(dx, cos, sin, B, Tn, NH, hs, NH * hs);
  }
  // causal attention on q, k, v (B, T, NH·hs); att (B, NH, T, T) keeps the probabilities;
  // the tiled form of attention.h, which skips the masked half;
  // the backward's datt needs attention_scratch_size(B, T, NH, hs) elements
  static size_t attention_scratch_size(int B, int Tn, int NH, int) {
    return (size_t)B * NH * Tn * Tn;
  }
  static void attention_forward(T* out, T* att, const T* q, const T* k, const T* v, int B, int Tn,
                                int NH, int hs) {
    scalevec::attention_forward_tiled(out, att, q, k, v, NH * hs, B, Tn, NH, hs);
  }
  static void attention_backward(T* dq, T* dk, T* dv, T* datt, const T* dout, const T* att,
                                 const T* q, const T* k, const T* v, int B, int Tn, int NH,
                                 int hs) {
    scalevec::attention_backward_tiled(dq, dk, dv, datt, dout, att, q, k, v, NH * hs, B, Tn, NH,
                                       hs);
  }
  // h = silu(g) ⊙ u, (N, F)
  static void swiglu_forward(T* h, const T* g, const T* u, int N, int F) {
    scalevec::swiglu_forward(h, g, u, N, F, F);
  }
  static void swiglu_backward(T* dg, T* du, const T* dh, const T* g, const T* u, int N, int F) {
    scalevec::swiglu_backward(dg, du, dh, g, u, N, F, F);
  }
  // x[n] = wte[tokens[n]]; the backward sums rows in position order (V: rows of wte)
  static void embedding_forward(T* x, const int32_t* tokens, const T* wte, int N, int C) {
    scalevec::embedding_forward(x, tokens, wte, N, C);
  }
  static void embedding_backward(T* dwte, const T* dx, const int32_t* tokens, int N, int /*V*/,
                                 int C) {
    scalevec::embedding_backward(dwte, dx, tokens, N, C);
  }
  // per-row losses (N,); returns their mean, summed in row order
  static T crossentropy_forward(T* losses, const T* logits, const int32_t* targets, int N, int V) {
    return scalevec::crossentropy_forward(losses, logits, targets, N, V);
  }
  static void crossentropy_backward(T* dlogits, const T* logits, const int32_t* targets, int N,
                                    int V, T dloss) {
    scalevec::crossentropy_backward(dlogits, logits, targets, N, V, dloss);
  }
  // elementwise
  static void residual_forward(T* out, const T* a, const T* b, size_t n) {
    scalevec::residual_forward(out, a, b, n);
  }
  static void accumulate(T* out, const T* a, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] += a[i];
  }
  static void copy(T* dst, const T* src, size_t n) { std::copy(src, src + n, dst); }
  static void zero(T* x, size_t n) { std::fill(x, x + n, T(0)); }
};

}  // namespace scalevec
