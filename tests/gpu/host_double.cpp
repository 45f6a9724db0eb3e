// A host double of the CUDA backend's kernels (gpu/ops.h, each by its reference op: no formula of
// the model is written here) and of the five CUDA runtime calls the host code makes (memory as
// malloc). Linked into test_gpu_host instead of ops.cu and the CUDA runtime, it lets every machine
// without a GPU (CI) run the GPU path, Transformer<float, CudaOps> with gpu/backend.cpp and
// gpu/optim.cpp, against the reference: which buffers each step reads and writes, what it zeroes,
// what it accumulates, the parameter offsets, the optimizer groups. The kernels themselves are
// checked only on a GPU (test_gpu). Not part of any library.
//
// The reduced precisions are the reference's own emulation (OperandPrecision, ref/ops/precision.h),
// switched on around the products of linear and attention: every matrix product rounds its two
// operands (round to nearest even, to 10 or 7 explicit mantissa bits) and multiplies the rounded
// values in fp32. So CI measures, on the CPU, the error that tf32 and bf16 put into the model, and
// checks the tolerances that test_gpu applies to the real kernels.
#include <cuda_runtime.h>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>
#include "gpu/ops.h"
#include "gpu/device.h"
#include "ref/ops/attention.h"
#include "ref/ops/backend.h"
#include "ref/ops/crossentropy.h"
#include "ref/ops/embedding.h"
#include "ref/ops/linear.h"
#include "ref/ops/rmsnorm.h"
#include "ref/ops/rope.h"
#include "ref/ops/scale.h"
#include "ref/ops/swiglu.h"
#include "ref/train/optim.h"

extern "C" {
cudaError_t cudaMalloc(void** p, size_t n) {
  *p = std::malloc(n);
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) {
  std::memmove(d, s, n);
  return cudaSuccess;
}
cudaError_t cudaMemset(void* d, int v, size_t n) {
  std::memset(d, v, n);
  return cudaSuccess;
}
const char* cudaGetErrorString(cudaError_t) { return "shim"; }
cudaError_t cudaGetLastError() { return cudaSuccess; }
}

namespace scalevec::gpu {

namespace {
Precision g_precision = Precision::fp32;  // set_matmul_precision: the products' operand rounding
}  // namespace

void set_matmul_precision(Precision p) { g_precision = p; }
Precision matmul_precision() { return g_precision; }

bool available(std::string*) { return true; }
std::string describe() { return "host shim"; }
void synchronize() {}
void linear_forward(float* out, const float* inp, const float* W, int N, int IC, int OC) {
  OperandPrecision rounding(g_precision);
  scalevec::linear_forward(out, inp, W, N, IC, OC, OC);
}
void linear_backward(float* dinp, float* dW, const float* dout, const float* inp, const float* W,
                     int N, int IC, int OC) {
  OperandPrecision rounding(g_precision);
  scalevec::linear_backward(dinp, dW, dout, inp, W, N, IC, OC, OC);
}
void rmsnorm_forward(float* n, float* rstd, const float* x, int N, int C, float eps) {
  scalevec::rmsnorm_forward(n, rstd, x, N, C, C, eps);
}
void rmsnorm_backward(float* dx, const float* dn, const float* n, const float* rstd, int N, int C) {
  scalevec::rmsnorm_backward(dx, dn, n, rstd, N, C, C);
}
size_t scale_partial_size(int, int) { return 1; }
void scale_forward(float* y, const float* x, const float* g, int N, int C) {
  scalevec::scale_forward(y, x, g, N, C);
}
void scale_backward(float* dx, float* dg, const float* dy, const float* x, const float* g, int N,
                    int C, float*) {
  scalevec::scale_backward(dx, dg, dy, x, g, N, C);
}
void rope_forward(float* x, const float* c, const float* s, int B, int T, int NH, int hs) {
  scalevec::rope_forward(x, c, s, B, T, NH, hs, NH * hs);
}
void rope_backward(float* x, const float* c, const float* s, int B, int T, int NH, int hs) {
  scalevec::rope_backward(x, c, s, B, T, NH, hs, NH * hs);
}
size_t attention_scratch_size(int B, int T, int NH, int) { return (size_t)B * NH * T * T; }
void attention_forward(float* out, float* att, const float* q, const float* k, const float* v,
                       int B, int T, int NH, int hs, float*) {
  OperandPrecision rounding(g_precision);  // the tiled form, as CpuOps runs it (bit-equal paths)
  scalevec::attention_forward_tiled(out, att, q, k, v, NH * hs, B, T, NH, hs);
}
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* att,
                        const float* q, const float* k, const float* v, int B, int T, int NH,
                        int hs, float* s) {
  OperandPrecision rounding(g_precision);
  scalevec::attention_backward_tiled(dq, dk, dv, s, dout, att, q, k, v, NH * hs, B, T, NH, hs);
}
void swiglu_forward(float* h, const float* g, const float* u, int N, int F) {
  scalevec::swiglu_forward(h, g, u, N, F, F);
}
void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u, int N,
                     int F) {
  scalevec::swiglu_backward(dg, du, dh, g, u, N, F, F);
}
void embedding_forward(float* x, const int32_t* t, const float* w, int N, int C) {
  scalevec::embedding_forward(x, t, w, N, C);
}
void embedding_backward(float* dw, const float* dx, const int32_t* pos, const int32_t* off, int V,
                        int C) {
  for (int v = 0; v < V; v++)
    for (int c = 0; c < C; c++) {
      float s = 0;
      for (int p = off[v]; p < off[v + 1]; p++) s += dx[(size_t)pos[p] * C + c];
      dw[(size_t)v * C + c] += s;
    }
}
void crossentropy_forward(float* losses, const float* logits, const int32_t* t, int N, int V) {
  scalevec::crossentropy_forward(losses, logits, t, N, V);
}
void crossentropy_backward(float* d, const float* l, const int32_t* t, int N, int V, float dloss) {
  scalevec::crossentropy_backward(d, l, t, N, V, dloss);
}
void add(float* o, const float* a, const float* b, size_t n) {
  scalevec::residual_forward(o, a, b, n);
}
void accumulate(float* o, const float* a, size_t n) { CpuOps<float>::accumulate(o, a, n); }
void scale_inplace(float* x, float s, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] *= s;
}
void scale_vector_forward(float* gamma, const float* p, const float* beta, ScaleParam kind, int d) {
  scalevec::scale_vector_forward(gamma, p, beta, kind, d);
}
void scale_vector_backward(float* dp, float* db, const float* dg, const float* p, const float* beta,
                           ScaleParam kind, int d) {
  scalevec::scale_vector_backward(dp, db, dg, p, beta, kind, d);
}
void adamw_update(float* p, float* m, float* v, const float* g, size_t n, float lr, double b1d,
                  double b2d, float bc1, float bc2s, float eps, float shrink) {
  const float ss = lr / bc1, b1 = float(b1d), b2 = float(b2d), o1 = float(1 - b1d),
              o2 = float(1 - b2d);
  for (size_t i = 0; i < n; i++) {
    p[i] *= shrink;
    m[i] = b1 * m[i] + o1 * g[i];
    v[i] = b2 * v[i] + o2 * g[i] * g[i];
    p[i] -= ss * m[i] / (std::sqrt(v[i]) / bc2s + eps);
  }
}
void sgd_update(float* p, float* buf, const float* g, size_t n, float lr, float mu, float shrink) {
  for (size_t i = 0; i < n; i++) {
    buf[i] = mu * buf[i] + g[i];
    p[i] = p[i] * shrink - lr * buf[i];
  }
}
void muon_momentum(float* buf, float* out, const float* g, size_t n, float mu, bool nest) {
  for (size_t i = 0; i < n; i++) {
    buf[i] = mu * buf[i] + g[i];
    out[i] = nest ? g[i] + mu * buf[i] : buf[i];
  }
}
void muon_apply(float* p, const float* o, size_t n, float shrink, float scale) {
  for (size_t i = 0; i < n; i++) p[i] = p[i] * shrink - scale * o[i];
}
size_t newton_schulz_work_size(int R, int C) { return scalevec::newton_schulz_work(R, C); }
void newton_schulz(const float* in, float* out, int R, int C, int steps, float* work) {
  scalevec::newton_schulz(in, out, R, C, steps, work);
}
double sum_of_squares(const float* x, size_t n, float*) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += double(x[i]) * x[i];
  return s;
}
size_t sum_of_squares_partial_size(size_t) { return 1; }
}  // namespace scalevec::gpu
