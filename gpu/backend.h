// The CUDA backend: the members of ref/ops/backend.h's interface, implemented by the kernels of
// gpu/ops.h on device memory. Transformer<float, CudaOps> (gpu/model.h) is the reference model's
// own code, the same call lists, on the GPU. What differs from the reference backend:
//   - Array is device memory (zeroed on construction and resize, as std::vector is);
//   - token and target ids arrive as host arrays and are copied to the device here; the embedding
//     backward groups positions by token on the host (a counting sort: a fixed order, no atomics);
//   - the loss is the mean of the device's per-row losses, summed on the host in row order, as
//     the reference sums them;
//   - ops that need device scratch (attention, the dγ partial sums) share one workspace owned by
//     this backend, so attention_scratch_size is 0 and the caller's datt goes unused.
#pragma once

#include <cstdint>
#include <vector>

#include "cuda_utils.cuh"
#include "ops.h"

namespace scalevec::gpu {

// Device memory that starts as zeros, like a std::vector<float>.
class ZeroedArray : public DeviceArray<float> {
 public:
  ZeroedArray() = default;
  explicit ZeroedArray(size_t n) { resize(n); }
  void resize(size_t n) {
    if (n == size()) return;
    DeviceArray<float>::resize(n);
    zero();
  }
};

struct CudaOps {
  using Array = ZeroedArray;
  static constexpr bool host_memory = false;
  static Array from_host(const std::vector<float>& v);

  static void linear_forward(float* out, const float* in, const float* W, int N, int IC, int OC) {
    gpu::linear_forward(out, in, W, N, IC, OC);
  }
  static void linear_backward(float* din, float* dW, const float* dout, const float* in,
                              const float* W, int N, int IC, int OC) {
    gpu::linear_backward(din, dW, dout, in, W, N, IC, OC);
  }
  static void rmsnorm_forward(float* n, float* rstd, const float* x, int N, int C, float eps) {
    gpu::rmsnorm_forward(n, rstd, x, N, C, eps);
  }
  static void rmsnorm_backward(float* dx, const float* dn, const float* n, const float* rstd, int N,
                               int C) {
    gpu::rmsnorm_backward(dx, dn, n, rstd, N, C);
  }
  static void scale_forward(float* y, const float* x, const float* gamma, int N, int C) {
    gpu::scale_forward(y, x, gamma, N, C);
  }
  static void scale_backward(float* dx, float* dgamma, const float* dy, const float* x,
                             const float* gamma, int N, int C);
  static void scale_vector_forward(float* gamma, const float* param, const float* beta,
                                   ScaleParam kind, int d) {
    gpu::scale_vector_forward(gamma, param, beta, kind, d);
  }
  static void scale_vector_backward(float* dparam, float* dbeta, const float* dgamma,
                                    const float* param, const float* beta, ScaleParam kind, int d) {
    gpu::scale_vector_backward(dparam, dbeta, dgamma, param, beta, kind, d);
  }
  static void rope_forward(float* x, const float* cos, const float* sin, int B, int Tn, int NH,
                           int hs) {
    gpu::rope_forward(x, cos, sin, B, Tn, NH, hs);
  }
  static void rope_backward(float* dx, const float* cos, const float* sin, int B, int Tn, int NH,
                            int hs) {
    gpu::rope_backward(dx, cos, sin, B, Tn, NH, hs);
  }
  static size_t attention_scratch_size(int, int, int, int) { return 0; }  // the workspace serves
  static void attention_forward(float* out, float* att, const float* q, const float* k,
                                const float* v, int B, int Tn, int NH, int hs);
  static void attention_backward(float* dq, float* dk, float* dv, float* datt, const float* dout,
                                 const float* att, const float* q, const float* k, const float* v,
                                 int B, int Tn, int NH, int hs);
  static void swiglu_forward(float* h, const float* g, const float* u, int N, int F) {
    gpu::swiglu_forward(h, g, u, N, F);
  }
  static void swiglu_backward(float* dg, float* du, const float* dh, const float* g, const float* u,
                              int N, int F) {
    gpu::swiglu_backward(dg, du, dh, g, u, N, F);
  }
  static void embedding_forward(float* x, const int32_t* tokens, const float* wte, int N, int C);
  static void embedding_backward(float* dwte, const float* dx, const int32_t* tokens, int N, int V,
                                 int C);
  static float crossentropy_forward(float* losses, const float* logits, const int32_t* targets,
                                    int N, int V);
  static void crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets,
                                    int N, int V, float dloss);
  static void residual_forward(float* out, const float* a, const float* b, size_t n) {
    gpu::add(out, a, b, n);
  }
  static void accumulate(float* out, const float* a, size_t n) { gpu::accumulate(out, a, n); }
  static void copy(float* dst, const float* src, size_t n);
  static void zero(float* x, size_t n);
};

}  // namespace scalevec::gpu
