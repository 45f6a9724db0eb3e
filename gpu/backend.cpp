#include "backend.h"

#include <algorithm>

namespace scalevec::gpu {

namespace {

// The backend's device workspace: grown on demand, never shrunk. Every op that uses it finishes
// with it before the next op starts (one stream), so one buffer serves them all.
float* workspace(size_t n) {
  static DeviceArray<float> w;
  if (w.size() < n) w.resize(n);
  return w.data();
}
// Device copies of the host's token and target ids, and the embedding backward's CSR.
int32_t* ids(size_t slot, const int32_t* host, size_t n) {
  static DeviceArray<int32_t> buf[4];
  if (buf[slot].size() < n) buf[slot].resize(n);
  buf[slot].upload(host, n);
  return buf[slot].data();
}
enum : size_t { kTokens = 0, kTargets = 1, kPositions = 2, kOffsets = 3 };

}  // namespace

CudaOps::Array CudaOps::from_host(const std::vector<float>& v) {
  Array a(v.size());
  a.upload(v.data(), v.size());
  return a;
}

void CudaOps::scale_backward(float* dx, float* dgamma, const float* dy, const float* x,
                             const float* gamma, int N, int C) {
  gpu::scale_backward(dx, dgamma, dy, x, gamma, N, C, workspace(scale_partial_size(N, C)));
}

void CudaOps::attention_forward(float* out, float* att, const float* q, const float* k,
                                const float* v, int B, int Tn, int NH, int hs) {
  gpu::attention_forward(out, att, q, k, v, B, Tn, NH, hs,
                         workspace(gpu::attention_scratch_size(B, Tn, NH, hs)));
}

void CudaOps::attention_backward(float* dq, float* dk, float* dv, float* /*datt*/,
                                 const float* dout, const float* att, const float* q,
                                 const float* k, const float* v, int B, int Tn, int NH, int hs) {
  gpu::attention_backward(dq, dk, dv, dout, att, q, k, v, B, Tn, NH, hs,
                          workspace(gpu::attention_scratch_size(B, Tn, NH, hs)));
}

void CudaOps::embedding_forward(float* x, const int32_t* tokens, const float* wte, int N, int C) {
  gpu::embedding_forward(x, ids(kTokens, tokens, N), wte, N, C);
}

// Positions grouped by token, in increasing order within a token: each row of dwte sums its
// positions in the order the reference does.
void CudaOps::embedding_backward(float* dwte, const float* dx, const int32_t* tokens, int N, int V,
                                 int C) {
  std::vector<int32_t> offsets(V + 1, 0), positions(N);
  for (int n = 0; n < N; n++) offsets[tokens[n] + 1]++;
  for (int t = 0; t < V; t++) offsets[t + 1] += offsets[t];
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int n = 0; n < N; n++) positions[fill[tokens[n]]++] = n;
  gpu::embedding_backward(dwte, dx, ids(kPositions, positions.data(), N),
                          ids(kOffsets, offsets.data(), V + 1), V, C);
}

float CudaOps::crossentropy_forward(float* losses, const float* logits, const int32_t* targets,
                                    int N, int V) {
  gpu::crossentropy_forward(losses, logits, ids(kTargets, targets, N), N, V);
  std::vector<float> host(N);
  SV_CUDA_CHECK(cudaMemcpy(host.data(), losses, N * sizeof(float), cudaMemcpyDeviceToHost));
  float total = 0.f;  // the reference's order and precision (ref/ops/crossentropy.h)
  for (float l : host) total += l;
  return total / N;
}

void CudaOps::crossentropy_backward(float* dlogits, const float* logits, const int32_t* targets,
                                    int N, int V, float dloss) {
  gpu::crossentropy_backward(dlogits, logits, ids(kTargets, targets, N), N, V, dloss);
}

void CudaOps::copy(float* dst, const float* src, size_t n) {
  if (n) SV_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice));
}

void CudaOps::zero(float* x, size_t n) {
  if (n) SV_CUDA_CHECK(cudaMemset(x, 0, n * sizeof(float)));
}

}  // namespace scalevec::gpu
