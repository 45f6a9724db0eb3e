// CUDA kernels of the mirror, one section per ref/ops file. Reductions that produce a parameter
// gradient or a loss run in a fixed order (no float atomics), so repeated runs are bit-identical.
#include <algorithm>
#include <cmath>

#include <cuda_bf16.h>

#include "cuda_utils.cuh"
#include "ops.h"

namespace scalevec::gpu {

// ---------------------------------------------------------------------------------------------
// cuBLAS handle and the precision of matrix products.

namespace {
cublasHandle_t g_handle = nullptr;
Precision g_precision = Precision::fp32;
}  // namespace

cublasHandle_t cublas() {
  if (!g_handle) {
    SV_CUBLAS_CHECK(cublasCreate(&g_handle));
    // Plain fp32 for every SGEMM: TF32 only where gemm() below asks for it, per call.
    SV_CUBLAS_CHECK(cublasSetMathMode(g_handle, CUBLAS_DEFAULT_MATH));
  }
  return g_handle;
}

void set_matmul_precision(Precision p) { g_precision = p; }
Precision matmul_precision() { return g_precision; }

// ---------------------------------------------------------------------------------------------
// Reductions inside a warp and a block (fixed order: the same bits every run).

namespace {

constexpr int kRowBlock = 64;  // rows per partial sum of dγ: the blocks of ref/ops/reduce.h

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Sum (or max) over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the
// result. Fixed order: warps reduce by butterfly, then warp 0 reduces the warps' results.
template <bool kMax>
__device__ float block_reduce(float v) {
  __shared__ float part[32];
  __shared__ float total;
  const int lane = threadIdx.x % 32, w = threadIdx.x / 32;
  v = kMax ? warp_max(v) : warp_sum(v);
  if (lane == 0) part[w] = v;
  __syncthreads();
  if (w == 0) {
    float s = lane < (int)blockDim.x / 32 ? part[lane] : (kMax ? -INFINITY : 0.f);
    s = kMax ? warp_max(s) : warp_sum(s);
    if (lane == 0) total = s;
  }
  __syncthreads();
  const float r = total;
  __syncthreads();
  return r;
}
__device__ float block_sum(float v) { return block_reduce<false>(v); }
__device__ float block_max(float v) { return block_reduce<true>(v); }

constexpr int kThreads = 256;
inline int blocks_for(size_t n) { return ceil_div((long)n, kThreads); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Every matrix product of the model goes through gemm(): column-major C = α op(A) op(B) + β C,
// `batch` times with constant strides, in the process's precision. fp32 is SGEMM; tf32 is the same
// product with the TF32 tensor-core compute type; bf16 rounds A and B into bf16 copies (round to
// nearest even) and multiplies them with fp32 sums into the fp32 C: the arithmetic of a bf16
// autocast, with fp32 outputs. (Newton–Schulz calls SGEMM itself: fp32 in every mode.)

namespace {

__global__ void to_bf16_kernel(__nv_bfloat16* dst, const float* src, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = __float2bfloat16_rn(src[i]);
}

// Two growing device buffers for the bf16 copies of A and B.
DeviceArray<__nv_bfloat16> g_bf16[2];

const __nv_bfloat16* to_bf16(int slot, const float* x, size_t n) {
  DeviceArray<__nv_bfloat16>& buf = g_bf16[slot];
  if (buf.size() < n) buf.resize(n);
  to_bf16_kernel<<<blocks_for(n), kThreads>>>(buf.data(), x, n);
  SV_LAUNCH_CHECK();
  return buf.data();
}

// Elements spanned by `batch` column-major matrices of `rows` x `cols` with leading dimension ld.
size_t extent(int rows, int cols, int ld, long long stride, int batch) {
  return (size_t)ld * (cols - 1) + rows + (size_t)stride * (batch - 1);
}

void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
          const float* A, int lda, long long sA, const float* B, int ldb, long long sB, float beta,
          float* C, int ldc, long long sC, int batch = 1) {
  if (g_precision == Precision::tf32) {
    SV_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        cublas(), ta, tb, m, n, k, &alpha, A, CUDA_R_32F, lda, sA, B, CUDA_R_32F, ldb, sB, &beta, C,
        CUDA_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
    return;
  }
  if (g_precision == Precision::fp32) {
    if (batch == 1)
      SV_CUBLAS_CHECK(
          cublasSgemm(cublas(), ta, tb, m, n, k, &alpha, A, lda, B, ldb, &beta, C, ldc));
    else
      SV_CUBLAS_CHECK(cublasSgemmStridedBatched(cublas(), ta, tb, m, n, k, &alpha, A, lda, sA, B,
                                                ldb, sB, &beta, C, ldc, sC, batch));
    return;
  }
  // Stored shapes: op(A) is m x k, so A is m x k (N) or k x m (T); likewise B is k x n or n x k.
  const bool an = ta == CUBLAS_OP_N, bn = tb == CUBLAS_OP_N;
  const __nv_bfloat16* A16 = to_bf16(0, A, extent(an ? m : k, an ? k : m, lda, sA, batch));
  const __nv_bfloat16* B16 = to_bf16(1, B, extent(bn ? k : n, bn ? n : k, ldb, sB, batch));
  SV_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      cublas(), ta, tb, m, n, k, &alpha, A16, CUDA_R_16BF, lda, sA, B16, CUDA_R_16BF, ldb, sB,
      &beta, C, CUDA_R_32F, ldc, sC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// linear: row-major out (N, OC) = inp (N, IC) · Wᵀ. cuBLAS is column-major, and a row-major
// (R, C) array is the column-major (C, R) array, so every call below is the transposed identity:
//   outᵀ = W · inpᵀ,   dinpᵀ += Wᵀ · doutᵀ,   dWᵀ += inpᵀ · dout.

void linear_forward(float* out, const float* inp, const float* W, int N, int IC, int OC) {
  gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, IC, 1.f, W, IC, 0, inp, IC, 0, 0.f, out, OC, 0);
}

void linear_backward(float* dinp, float* dW, const float* dout, const float* inp, const float* W,
                     int N, int IC, int OC) {
  gemm(CUBLAS_OP_N, CUBLAS_OP_N, IC, N, OC, 1.f, W, IC, 0, dout, OC, 0, 1.f, dinp, IC, 0);
  gemm(CUBLAS_OP_N, CUBLAS_OP_T, IC, OC, N, 1.f, inp, IC, 0, dout, OC, 0, 1.f, dW, IC, 0);
}

// ---------------------------------------------------------------------------------------------
// RMSNorm: one warp per row.

__global__ void rmsnorm_forward_kernel(float* n, float* rstd, const float* x, int N, int C,
                                       float eps) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* xr = x + (size_t)row * C;
  float ss = 0.f;
  for (int c = lane; c < C; c += 32) ss += xr[c] * xr[c];
  ss = warp_sum(ss);
  const float r = 1.f / sqrtf(ss / C + eps);
  for (int c = lane; c < C; c += 32) n[(size_t)row * C + c] = xr[c] * r;
  if (lane == 0) rstd[row] = r;
}

// dx += r (dn - n · mean(dn ⊙ n))
__global__ void rmsnorm_backward_kernel(float* dx, const float* dn, const float* n,
                                        const float* rstd, int N, int C) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= N) return;
  const size_t o = (size_t)row * C;
  float dot = 0.f;
  for (int c = lane; c < C; c += 32) dot += dn[o + c] * n[o + c];
  dot = warp_sum(dot);
  const float mean_dot = dot / C, r = rstd[row];
  for (int c = lane; c < C; c += 32) dx[o + c] += r * (dn[o + c] - n[o + c] * mean_dot);
}

void rmsnorm_forward(float* n, float* rstd, const float* x, int N, int C, float eps) {
  rmsnorm_forward_kernel<<<ceil_div(N, 8), 256>>>(n, rstd, x, N, C, eps);
  SV_LAUNCH_CHECK();
}
void rmsnorm_backward(float* dx, const float* dn, const float* n, const float* rstd, int N, int C) {
  rmsnorm_backward_kernel<<<ceil_div(N, 8), 256>>>(dx, dn, n, rstd, N, C);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// scale: y = γ ⊙ x; dγ = Σ_rows dy ⊙ x in row blocks of 64, then the blocks in order.

__global__ void scale_forward_kernel(float* y, const float* x, const float* gamma, size_t total,
                                     int C) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < total) y[i] = gamma[i % C] * x[i];
}
__global__ void scale_dx_kernel(float* dx, const float* dy, const float* gamma, size_t total,
                                int C) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < total) dx[i] += dy[i] * gamma[i % C];
}
// One thread per (row block, column): the block's rows in order.
__global__ void scale_partial_kernel(float* partial, const float* dy, const float* x, int N,
                                     int C) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x, b = blockIdx.x;
  if (c >= C) return;
  float s = 0.f;
  const int end = min(N, (b + 1) * kRowBlock);
  for (int r = b * kRowBlock; r < end; r++) s += dy[(size_t)r * C + c] * x[(size_t)r * C + c];
  partial[(size_t)b * C + c] = s;
}
__global__ void scale_final_kernel(float* dgamma, const float* partial, int nblocks, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.f;
  for (int b = 0; b < nblocks; b++) s += partial[(size_t)b * C + c];
  dgamma[c] += s;
}

size_t scale_partial_size(int N, int C) { return (size_t)ceil_div(N, kRowBlock) * C; }

void scale_forward(float* y, const float* x, const float* gamma, int N, int C) {
  const size_t total = (size_t)N * C;
  scale_forward_kernel<<<blocks_for(total), kThreads>>>(y, x, gamma, total, C);
  SV_LAUNCH_CHECK();
}

void scale_backward(float* dx, float* dgamma, const float* dy, const float* x, const float* gamma,
                    int N, int C, float* partial) {
  const size_t total = (size_t)N * C;
  scale_dx_kernel<<<blocks_for(total), kThreads>>>(dx, dy, gamma, total, C);
  SV_LAUNCH_CHECK();
  const int nb = ceil_div(N, kRowBlock);
  scale_partial_kernel<<<dim3(nb, ceil_div(C, 128)), 128>>>(partial, dy, x, N, C);
  SV_LAUNCH_CHECK();
  scale_final_kernel<<<ceil_div(C, 128), 128>>>(dgamma, partial, nb, C);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// RoPE, rotate-half: one thread per rotated pair.

template <bool kBackward>
__global__ void rope_kernel(float* x, const float* cos_t, const float* sin_t, int B, int T, int NH,
                            int hs) {
  const int half = hs / 2;
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, total = (size_t)B * T * NH * half;
  if (i >= total) return;
  const int p = i % half;
  const size_t bth = i / half;  // (b, t, h)
  const int t = (bth / NH) % T;
  float* xh = x + bth * hs;
  const float c = cos_t[(size_t)t * half + p], s = sin_t[(size_t)t * half + p];
  const float x1 = xh[p], x2 = xh[p + half];
  if (!kBackward) {
    xh[p] = x1 * c - x2 * s;
    xh[p + half] = x1 * s + x2 * c;
  } else {  // the inverse rotation
    xh[p] = x1 * c + x2 * s;
    xh[p + half] = -x1 * s + x2 * c;
  }
}

void rope_forward(float* x, const float* cos, const float* sin, int B, int T, int NH, int hs) {
  rope_kernel<false>
      <<<blocks_for((size_t)B * T * NH * (hs / 2)), kThreads>>>(x, cos, sin, B, T, NH, hs);
  SV_LAUNCH_CHECK();
}
void rope_backward(float* dx, const float* cos, const float* sin, int B, int T, int NH, int hs) {
  rope_kernel<true>
      <<<blocks_for((size_t)B * T * NH * (hs / 2)), kThreads>>>(dx, cos, sin, B, T, NH, hs);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// Attention. q, k, v (B, T, NH, hs) are permuted to (B, NH, T, hs) so that every (b, h) is one
// contiguous T x hs matrix and cuBLAS can run all B·NH products in one strided-batched call.

// (B, T, NH, hs) <-> (B, NH, T, hs); kAccumulate adds into the destination.
template <bool kToHeads, bool kAccumulate>
__global__ void permute_kernel(float* dst, const float* src, int B, int T, int NH, int hs) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x, total = (size_t)B * T * NH * hs;
  if (i >= total) return;
  // i indexes the (B, NH, T, hs) layout
  const int d = i % hs;
  const int t = (i / hs) % T;
  const int h = (i / ((size_t)hs * T)) % NH;
  const int b = i / ((size_t)hs * T * NH);
  const size_t j = (((size_t)b * T + t) * NH + h) * hs + d;  // the (B, T, NH, hs) index
  if (kToHeads)
    dst[i] = src[j];
  else if (kAccumulate)
    dst[j] += src[i];
  else
    dst[j] = src[i];
}

// Row-wise causal softmax of each (T, T) block in place; one warp per row.
__global__ void causal_softmax_kernel(float* att, int rows, int T) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int i = row % T;
  float* r = att + (size_t)row * T;
  float mx = -INFINITY;
  for (int j = lane; j <= i; j += 32) mx = fmaxf(mx, r[j]);
  mx = warp_max(mx);
  float sum = 0.f;
  for (int j = lane; j <= i; j += 32) sum += expf(r[j] - mx);
  sum = warp_sum(sum);
  const float inv = 1.f / sum;
  for (int j = lane; j < T; j += 32) r[j] = j <= i ? expf(r[j] - mx) * inv : 0.f;
}

// dS = P ⊙ (dP - rowsum(P ⊙ dP)) in place on dP; masked entries 0.
__global__ void softmax_backward_kernel(float* dS, const float* P, int rows, int T) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const int i = row % T;
  float* d = dS + (size_t)row * T;
  const float* p = P + (size_t)row * T;
  float dot = 0.f;
  for (int j = lane; j <= i; j += 32) dot += p[j] * d[j];
  dot = warp_sum(dot);
  for (int j = lane; j < T; j += 32) d[j] = j <= i ? p[j] * (d[j] - dot) : 0.f;
}

size_t attention_scratch_size(int B, int T, int NH, int hs) {
  const size_t btc = (size_t)B * T * NH * hs;
  return 7 * btc + (size_t)B * NH * T * T;  // q k v y | dq dk dv (permuted) | dS
}

namespace {
struct AttnScratch {
  float *q, *k, *v, *y, *dq, *dk, *dv, *ds;
  AttnScratch(float* s, int B, int T, int NH, int hs) {
    const size_t btc = (size_t)B * T * NH * hs;
    q = s, k = s + btc, v = s + 2 * btc, y = s + 3 * btc;
    dq = s + 4 * btc, dk = s + 5 * btc, dv = s + 6 * btc, ds = s + 7 * btc;
  }
};

// Batched row-major products over the B·NH heads (see the linear section for the transposes):
//   S = α Q Kᵀ (T x T):    column-major Sᵀ = α K Qᵀ
//   Y = α P V  (T x hs):   column-major Yᵀ = α Vᵀ Pᵀ
//   Z = α Pᵀ X (T x hs):   column-major Zᵀ = α Xᵀ P
void bmm_abT(float* S, const float* A, const float* Bm, int batch, int T, int hs, float alpha) {
  gemm(CUBLAS_OP_T, CUBLAS_OP_N, T, T, hs, alpha, Bm, hs, (long long)T * hs, A, hs,
       (long long)T * hs, 0.f, S, T, (long long)T * T, batch);
}
void bmm_pv(float* Y, const float* P, const float* V, int batch, int T, int hs, float alpha) {
  gemm(CUBLAS_OP_N, CUBLAS_OP_N, hs, T, T, alpha, V, hs, (long long)T * hs, P, T, (long long)T * T,
       0.f, Y, hs, (long long)T * hs, batch);
}
void bmm_pTx(float* Z, const float* P, const float* X, int batch, int T, int hs, float alpha) {
  gemm(CUBLAS_OP_N, CUBLAS_OP_T, hs, T, T, alpha, X, hs, (long long)T * hs, P, T, (long long)T * T,
       0.f, Z, hs, (long long)T * hs, batch);
}
}  // namespace

void attention_forward(float* out, float* att, const float* q, const float* k, const float* v,
                       int B, int T, int NH, int hs, float* scratch) {
  AttnScratch s(scratch, B, T, NH, hs);
  const size_t n = (size_t)B * T * NH * hs;
  const int batch = B * NH;
  permute_kernel<true, false><<<blocks_for(n), kThreads>>>(s.q, q, B, T, NH, hs);
  permute_kernel<true, false><<<blocks_for(n), kThreads>>>(s.k, k, B, T, NH, hs);
  permute_kernel<true, false><<<blocks_for(n), kThreads>>>(s.v, v, B, T, NH, hs);
  SV_LAUNCH_CHECK();
  bmm_abT(att, s.q, s.k, batch, T, hs, 1.f / sqrtf((float)hs));  // S = q kᵀ / sqrt(hs)
  causal_softmax_kernel<<<ceil_div(batch * T, 8), 256>>>(att, batch * T, T);  // P
  SV_LAUNCH_CHECK();
  bmm_pv(s.y, att, s.v, batch, T, hs, 1.f);  // Y = P v
  permute_kernel<false, false><<<blocks_for(n), kThreads>>>(out, s.y, B, T, NH, hs);
  SV_LAUNCH_CHECK();
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att,
                        const float* q, const float* k, const float* v, int B, int T, int NH,
                        int hs, float* scratch) {
  AttnScratch s(scratch, B, T, NH, hs);
  const size_t n = (size_t)B * T * NH * hs;
  const int batch = B * NH;
  const float scale = 1.f / sqrtf((float)hs);
  // The permuted q, k, v of this layer (the scratch served other layers since its forward).
  permute_kernel<true, false><<<blocks_for(n), kThreads>>>(s.q, q, B, T, NH, hs);
  permute_kernel<true, false><<<blocks_for(n), kThreads>>>(s.k, k, B, T, NH, hs);
  permute_kernel<true, false><<<blocks_for(n), kThreads>>>(s.v, v, B, T, NH, hs);
  permute_kernel<true, false><<<blocks_for(n), kThreads>>>(s.y, dout, B, T, NH, hs);  // dY
  SV_LAUNCH_CHECK();
  bmm_abT(s.ds, s.y, s.v, batch, T, hs, 1.f);  // dP = dY vᵀ
  bmm_pTx(s.dv, att, s.y, batch, T, hs, 1.f);  // dv = Pᵀ dY
  softmax_backward_kernel<<<ceil_div(batch * T, 8), 256>>>(s.ds, att, batch * T, T);  // dS
  SV_LAUNCH_CHECK();
  bmm_pv(s.dq, s.ds, s.k, batch, T, hs, scale);   // dq = dS k / sqrt(hs)
  bmm_pTx(s.dk, s.ds, s.q, batch, T, hs, scale);  // dk = dSᵀ q / sqrt(hs)
  permute_kernel<false, true><<<blocks_for(n), kThreads>>>(dq, s.dq, B, T, NH, hs);
  permute_kernel<false, true><<<blocks_for(n), kThreads>>>(dk, s.dk, B, T, NH, hs);
  permute_kernel<false, true><<<blocks_for(n), kThreads>>>(dv, s.dv, B, T, NH, hs);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// SwiGLU.

__device__ __forceinline__ float sigmoidf(float x) { return 1.f / (1.f + expf(-x)); }

__global__ void swiglu_forward_kernel(float* h, const float* g, const float* u, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) h[i] = g[i] * sigmoidf(g[i]) * u[i];
}
__global__ void swiglu_backward_kernel(float* dg, float* du, const float* dh, const float* g,
                                       const float* u, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float gv = g[i], s = sigmoidf(gv), d = dh[i];
  du[i] += d * gv * s;
  dg[i] += d * u[i] * s * (1.f + gv * (1.f - s));
}

void swiglu_forward(float* h, const float* g, const float* u, int N, int F) {
  const size_t n = (size_t)N * F;
  swiglu_forward_kernel<<<blocks_for(n), kThreads>>>(h, g, u, n);
  SV_LAUNCH_CHECK();
}
void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int N,
                     int F) {
  const size_t n = (size_t)N * F;
  swiglu_backward_kernel<<<blocks_for(n), kThreads>>>(dg, du, dh, g, u, n);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// Embedding.

__global__ void embedding_forward_kernel(float* x, const int32_t* tokens, const float* wte, int N,
                                         int C) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)N * C) return;
  const size_t n = i / C;
  x[i] = wte[(size_t)tokens[n] * C + i % C];
}
// Block (token v, channel chunk): the positions of v in increasing order.
__global__ void embedding_backward_kernel(float* dwte, const float* dx, const int32_t* positions,
                                          const int32_t* offsets, int C) {
  const int v = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float s = 0.f;
  for (int p = offsets[v]; p < offsets[v + 1]; p++) s += dx[(size_t)positions[p] * C + c];
  dwte[(size_t)v * C + c] += s;
}

void embedding_forward(float* x, const int32_t* tokens, const float* wte, int N, int C) {
  embedding_forward_kernel<<<blocks_for((size_t)N * C), kThreads>>>(x, tokens, wte, N, C);
  SV_LAUNCH_CHECK();
}
void embedding_backward(float* dwte, const float* dx, const int32_t* positions,
                        const int32_t* offsets, int V, int C) {
  embedding_backward_kernel<<<dim3(V, ceil_div(C, 128)), 128>>>(dwte, dx, positions, offsets, C);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// Cross-entropy: one block per row.

// The row's max and sum of exp(l − max), shared by the block (the softmax's normaliser).
__device__ void row_softmax_stats(const float* l, int V, float* mx_out, float* sum_out) {
  float mx = -INFINITY;
  for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, l[v]);
  mx = block_max(mx);
  float sum = 0.f;
  for (int v = threadIdx.x; v < V; v += blockDim.x) sum += expf(l[v] - mx);
  *mx_out = mx, *sum_out = block_sum(sum);
}

__global__ void crossentropy_forward_kernel(float* losses, const float* logits,
                                            const int32_t* targets, int V) {
  const float* l = logits + (size_t)blockIdx.x * V;
  float mx, sum;
  row_softmax_stats(l, V, &mx, &sum);
  if (threadIdx.x == 0) losses[blockIdx.x] = logf(sum) + mx - l[targets[blockIdx.x]];
}
__global__ void crossentropy_backward_kernel(float* dlogits, const float* logits,
                                             const int32_t* targets, int V, float s) {
  const float* l = logits + (size_t)blockIdx.x * V;
  float* d = dlogits + (size_t)blockIdx.x * V;
  float mx, sum;
  row_softmax_stats(l, V, &mx, &sum);
  const float inv = 1.f / sum;
  const int t = targets[blockIdx.x];
  for (int v = threadIdx.x; v < V; v += blockDim.x)
    d[v] += s * expf(l[v] - mx) * inv - (v == t ? s : 0.f);
}

void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N,
                          int V) {
  crossentropy_forward_kernel<<<N, 256>>>(losses, logits, targets, V);
  SV_LAUNCH_CHECK();
}
void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets, int N,
                           int V, float dloss) {
  crossentropy_backward_kernel<<<N, 256>>>(dlogits, logits, targets, V, dloss / N);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// Elementwise.

__global__ void add_kernel(float* out, const float* a, const float* b, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}
__global__ void accumulate_kernel(float* out, const float* a, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] += a[i];
}
__global__ void scale_inplace_kernel(float* x, float s, size_t n) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= s;
}

void add(float* out, const float* a, const float* b, size_t n) {
  if (!n) return;
  add_kernel<<<blocks_for(n), kThreads>>>(out, a, b, n);
  SV_LAUNCH_CHECK();
}
void accumulate(float* out, const float* a, size_t n) {
  if (!n) return;
  accumulate_kernel<<<blocks_for(n), kThreads>>>(out, a, n);
  SV_LAUNCH_CHECK();
}
void scale_inplace(float* x, float s, size_t n) {
  if (!n) return;
  scale_inplace_kernel<<<blocks_for(n), kThreads>>>(x, s, n);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// Scale-vector parameterizations: one block computes γ (d is small: a model width).

// One switch per kernel over every ScaleParam, no default: a new kind that is not handled here
// is a compile warning (-Wswitch), and the host wrappers reject values outside the enum.
__global__ void scale_vector_forward_kernel(float* gamma, const float* param, const float* beta,
                                            ScaleParam kind, int d) {
  float inv_rms = 1.f;
  if (kind == ScaleParam::MagDirNormalized) {
    float ss = 0.f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) ss += param[c] * param[c];
    inv_rms = 1.f / sqrtf(block_sum(ss) / d);
  }
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    switch (kind) {
      case ScaleParam::None:
        gamma[c] = 1.f;
        break;
      case ScaleParam::Gamma:
        gamma[c] = param[c];
        break;
      case ScaleParam::MagDir:
        gamma[c] = beta[0] * param[c];
        break;
      case ScaleParam::MagDirNormalized:
        gamma[c] = beta[0] * param[c] * inv_rms;
        break;
    }
  }
}

// gamma: dparam += dγ; magdir: dα += β dγ, dβ += αᵀ dγ; magdir-normalized: â = α/rms(α),
// dβ += âᵀ dγ, dα += (β dγ − â mean(β dγ ⊙ â)) / rms(α).
__global__ void scale_vector_backward_kernel(float* dparam, float* dbeta, const float* dgamma,
                                             const float* param, const float* beta, ScaleParam kind,
                                             int d) {
  bool normalized = false;
  switch (kind) {
    case ScaleParam::None:
      return;
    case ScaleParam::Gamma:
      for (int c = threadIdx.x; c < d; c += blockDim.x) dparam[c] += dgamma[c];
      return;
    case ScaleParam::MagDir:
      break;
    case ScaleParam::MagDirNormalized:
      normalized = true;
      break;
  }
  const float b = beta[0];
  float inv_rms = 1.f;
  if (normalized) {
    float ss = 0.f;
    for (int c = threadIdx.x; c < d; c += blockDim.x) ss += param[c] * param[c];
    inv_rms = 1.f / sqrtf(block_sum(ss) / d);
  }
  float db = 0.f, dot = 0.f;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    const float a_hat = param[c] * inv_rms;
    db += a_hat * dgamma[c];
    dot += b * dgamma[c] * a_hat;
  }
  db = block_sum(db);
  dot = block_sum(dot);
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    if (!normalized)
      dparam[c] += b * dgamma[c];
    else
      dparam[c] += (b * dgamma[c] - param[c] * inv_rms * (dot / d)) * inv_rms;
  }
  if (threadIdx.x == 0) dbeta[0] += db;
}

namespace {
void check_kind(ScaleParam kind) {
  switch (kind) {
    case ScaleParam::None:
    case ScaleParam::Gamma:
    case ScaleParam::MagDir:
    case ScaleParam::MagDirNormalized:
      return;
  }
  unknown_scale_param(kind);
}
}  // namespace

void scale_vector_forward(float* gamma, const float* param, const float* beta, ScaleParam kind,
                          int d) {
  check_kind(kind);
  scale_vector_forward_kernel<<<1, 256>>>(gamma, param, beta, kind, d);
  SV_LAUNCH_CHECK();
}
void scale_vector_backward(float* dparam, float* dbeta, const float* dgamma, const float* param,
                           const float* beta, ScaleParam kind, int d) {
  check_kind(kind);
  scale_vector_backward_kernel<<<1, 256>>>(dparam, dbeta, dgamma, param, beta, kind, d);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// Optimizer updates (the formulas of ref/train/optim.cpp, element by element).

__global__ void adamw_kernel(float* p, float* m, float* v, const float* g, size_t n,
                             float step_size, float beta1, float one_minus_beta1, float beta2,
                             float one_minus_beta2, float bc2_sqrt, float eps, float shrink) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  p[i] *= shrink;
  m[i] = beta1 * m[i] + one_minus_beta1 * g[i];
  v[i] = beta2 * v[i] + one_minus_beta2 * g[i] * g[i];
  p[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
}
__global__ void sgd_kernel(float* p, float* buf, const float* g, size_t n, float lr, float mu,
                           float shrink) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  buf[i] = mu * buf[i] + g[i];
  p[i] = p[i] * shrink - lr * buf[i];
}
__global__ void muon_momentum_kernel(float* buf, float* out, const float* g, size_t n, float mu,
                                     bool nesterov) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  buf[i] = mu * buf[i] + g[i];
  out[i] = nesterov ? g[i] + mu * buf[i] : buf[i];
}
__global__ void muon_apply_kernel(float* p, const float* o, size_t n, float shrink, float scale) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = p[i] * shrink - scale * o[i];
}

void adamw_update(float* p, float* m, float* v, const float* g, size_t n, float lr, double beta1,
                  double beta2, float bc1, float bc2_sqrt, float eps, float shrink) {
  if (!n) return;
  adamw_kernel<<<blocks_for(n), kThreads>>>(p, m, v, g, n, lr / bc1, float(beta1), float(1 - beta1),
                                            float(beta2), float(1 - beta2), bc2_sqrt, eps, shrink);
  SV_LAUNCH_CHECK();
}
void sgd_update(float* p, float* buf, const float* g, size_t n, float lr, float mu, float shrink) {
  if (!n) return;
  sgd_kernel<<<blocks_for(n), kThreads>>>(p, buf, g, n, lr, mu, shrink);
  SV_LAUNCH_CHECK();
}
void muon_momentum(float* buf, float* out, const float* g, size_t n, float mu, bool nesterov) {
  muon_momentum_kernel<<<blocks_for(n), kThreads>>>(buf, out, g, n, mu, nesterov);
  SV_LAUNCH_CHECK();
}
void muon_apply(float* p, const float* o, size_t n, float shrink, float scale) {
  muon_apply_kernel<<<blocks_for(n), kThreads>>>(p, o, n, shrink, scale);
  SV_LAUNCH_CHECK();
}

// ---------------------------------------------------------------------------------------------
// Sum of squares in a fixed order: blocks of 4096 elements, partials summed on the host in double.

constexpr int kSsChunk = 4096;

__global__ void sum_of_squares_kernel(float* partial, const float* x, size_t n) {
  const size_t start = (size_t)blockIdx.x * kSsChunk;
  float s = 0.f;
  for (size_t i = start + threadIdx.x; i < min(n, start + kSsChunk); i += blockDim.x)
    s += x[i] * x[i];
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

size_t sum_of_squares_partial_size(size_t n) { return (size_t)ceil_div((long)n, kSsChunk); }

double sum_of_squares(const float* x, size_t n, float* partial) {
  if (!n) return 0.0;
  const int nb = ceil_div((long)n, kSsChunk);
  sum_of_squares_kernel<<<nb, 256>>>(partial, x, n);
  SV_LAUNCH_CHECK();
  std::vector<float> h(nb);
  SV_CUDA_CHECK(cudaMemcpy(h.data(), partial, nb * sizeof(float), cudaMemcpyDeviceToHost));
  double total = 0;
  for (float v : h) total += v;
  return total;
}

// ---------------------------------------------------------------------------------------------
// Newton–Schulz (ref/train/optim.cpp): X = G / ‖G‖_F, the wide orientation, then `steps` times
//   A = X Xᵀ,  B = b A + c A A,  X = a X + B X       (a, b, c) = (3.4445, −4.7750, 2.0315)
// Column-major views: a row-major (m, n) X is Xᵀ; A and B are symmetric.

__global__ void transpose_kernel(float* dst, const float* src, int R, int C) {
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (size_t)R * C) return;
  const int r = i / C, c = i % C;
  dst[(size_t)c * R + r] = src[i];
}

size_t newton_schulz_work_size(int R, int C) {
  const size_t m = std::min(R, C), n = std::max(R, C);
  return 3 * m * n + 2 * m * m + sum_of_squares_partial_size(m * n);
}

void newton_schulz(const float* in, float* out, int R, int C, int steps, float* work) {
  const bool tall = R > C;
  const int m = tall ? C : R, n = tall ? R : C;
  const size_t mn = (size_t)m * n;
  float *X = work, *Y = X + mn, *T = Y + mn, *A = T + mn, *Bm = A + (size_t)m * m,
        *part = Bm + (size_t)m * m;
  if (tall) {
    transpose_kernel<<<blocks_for(mn), kThreads>>>(X, in, R, C);
    SV_LAUNCH_CHECK();
  } else {
    SV_CUDA_CHECK(cudaMemcpy(X, in, mn * sizeof(float), cudaMemcpyDeviceToDevice));
  }
  const double norm = std::sqrt(sum_of_squares(X, mn, part));
  scale_inplace(X, float(1.0 / (norm + 1e-7)), mn);
  const float a = 3.4445f, b = -4.7750f, c = 2.0315f, one = 1.f, zero = 0.f;
  for (int k = 0; k < steps; k++) {
    SV_CUBLAS_CHECK(
        cublasSgemm(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, m, m, n, &one, X, n, X, n, &zero, A, m));
    SV_CUDA_CHECK(cudaMemcpy(Bm, A, (size_t)m * m * sizeof(float), cudaMemcpyDeviceToDevice));
    SV_CUBLAS_CHECK(
        cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &c, A, m, A, m, &b, Bm, m));
    SV_CUDA_CHECK(cudaMemcpy(Y, X, mn * sizeof(float), cudaMemcpyDeviceToDevice));
    SV_CUBLAS_CHECK(
        cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, n, m, m, &one, X, n, Bm, m, &a, Y, n));
    std::swap(X, Y);
  }
  if (tall) {
    transpose_kernel<<<blocks_for(mn), kThreads>>>(out, X, m, n);  // (C, R) back to (R, C)
    SV_LAUNCH_CHECK();
  } else {
    SV_CUDA_CHECK(cudaMemcpy(out, X, mn * sizeof(float), cudaMemcpyDeviceToDevice));
  }
  (void)T;
}

}  // namespace scalevec::gpu
