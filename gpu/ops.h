// The CUDA mirror of ref/ops: the same forward/backward pairs, on device arrays, fp32 storage, the
// same conventions (row-major; backward functions accumulate (+=) into every gradient they
// produce). Host-callable; no CUDA headers needed by callers. Each op is tested against its ref/ops
// counterpart (tests/gpu/test_gpu.cpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include "precision.h"
#include "ref/ops/scale_vector.h"

namespace scalevec::gpu {

// ---- the precision of every matrix product below (linear, attention), process-wide; fp32 unless
// set. See precision.h. Newton–Schulz is fp32 in every mode.
void set_matmul_precision(Precision p);
Precision matmul_precision();

// ---- linear (cuBLAS): out (N, OC) = inp (N, IC) · Wᵀ,  W (OC, IC)
void linear_forward(float* out, const float* inp, const float* W, int N, int IC, int OC);
void linear_backward(float* dinp, float* dW, const float* dout, const float* inp, const float* W,
                     int N, int IC, int OC);

// ---- RMSNorm without scale, rows of C contiguous channels: n = x / sqrt(mean(x²) + eps)
void rmsnorm_forward(float* n, float* rstd, const float* x, int N, int C, float eps);
void rmsnorm_backward(float* dx, const float* dn, const float* n, const float* rstd, int N, int C);

// ---- scale: y = γ ⊙ x over N rows. dγ is reduced in a fixed order (row blocks of 64, then the
// blocks in order): deterministic, no atomics. `partial` needs scale_partial_size(N, C) floats.
size_t scale_partial_size(int N, int C);
void scale_forward(float* y, const float* x, const float* gamma, int N, int C);
void scale_backward(float* dx, float* dgamma, const float* dy, const float* x, const float* gamma,
                    int N, int C, float* partial);

// ---- RoPE (rotate-half), in place on x (B, T, NH, hs) contiguous; cos/sin (T, hs/2)
void rope_forward(float* x, const float* cos, const float* sin, int B, int T, int NH, int hs);
void rope_backward(float* dx, const float* cos, const float* sin, int B, int T, int NH, int hs);

// ---- causal attention on q, k, v (B, T, NH·hs) each; out (B, T, C); att (B, NH, T, T) keeps P.
// scratch needs attention_scratch_size(B, T, NH, hs) floats.
size_t attention_scratch_size(int B, int T, int NH, int hs);
void attention_forward(float* out, float* att, const float* q, const float* k, const float* v,
                       int B, int T, int NH, int hs, float* scratch);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att,
                        const float* q, const float* k, const float* v, int B, int T, int NH,
                        int hs, float* scratch);

// ---- SwiGLU: h = silu(g) ⊙ u, all (N, F)
void swiglu_forward(float* h, const float* g, const float* u, int N, int F);
void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int N,
                     int F);

// ---- embedding: x[n] = wte[tokens[n]]; backward sums rows in position order per token, from a
// CSR of positions grouped by token (built on the host: deterministic, no atomics).
void embedding_forward(float* x, const int32_t* tokens, const float* wte, int N, int C);
void embedding_backward(float* dwte, const float* dx, const int32_t* positions,
                        const int32_t* offsets, int V, int C);

// ---- softmax cross-entropy, fused; losses (N,) per row; backward adds dloss·(p - onehot)/N
void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V);
void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets, int N,
                           int V, float dloss);

// ---- elementwise
void add(float* out, const float* a, const float* b, size_t n);  // out = a + b
void accumulate(float* out, const float* a, size_t n);           // out += a
void scale_inplace(float* x, float s, size_t n);                 // x *= s

// ---- scale-vector parameterizations (ref/ops/scale_vector.h): γ from the parameters, and the
// backward that chains dγ into them. beta may be null for none and gamma. A kind outside the enum
// throws before any launch. Deterministic (one block).
void scale_vector_forward(float* gamma, const float* param, const float* beta, ScaleParam kind,
                          int d);
void scale_vector_backward(float* dparam, float* dbeta, const float* dgamma, const float* param,
                           const float* beta, ScaleParam kind, int d);

// ---- optimizer updates on [offset, offset + n) of the flat buffers (ref/train/optim.h)
// beta1, beta2 in double: 1 − β is formed in double and rounded once, as the reference does.
void adamw_update(float* p, float* m, float* v, const float* g, size_t n, float lr, double beta1,
                  double beta2, float bc1, float bc2_sqrt, float eps, float shrink);
void sgd_update(float* p, float* buf, const float* g, size_t n, float lr, float mu, float shrink);
// Muon's momentum (buf ← μ buf + g; out = Nesterov ? g + μ buf : buf) and final update
// (p ← p·shrink − scale·o).
void muon_momentum(float* buf, float* out, const float* g, size_t n, float mu, bool nesterov);
void muon_apply(float* p, const float* o, size_t n, float shrink, float scale);
// Newton–Schulz orthogonalization of an R x C matrix on the device (cuBLAS); `work` needs
// newton_schulz_work_size(R, C) floats. in and out may alias.
size_t newton_schulz_work_size(int R, int C);
void newton_schulz(const float* in, float* out, int R, int C, int steps, float* work);

// ---- sum of squares of x in a fixed order (deterministic), returned to the host in double
double sum_of_squares(const float* x, size_t n, float* partial);
size_t sum_of_squares_partial_size(size_t n);

}  // namespace scalevec::gpu
