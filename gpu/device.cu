#include "device.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <stdexcept>

namespace scalevec::gpu {

// Every CUDA call is checked; a failure names the call, the file and line, and CUDA's message.
#define CUDA_CHECK(call)                                                                     \
  do {                                                                                       \
    cudaError_t err_ = (call);                                                               \
    if (err_ != cudaSuccess)                                                                 \
      throw std::runtime_error(fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #call, \
                                           cudaGetErrorString(err_)));                       \
  } while (0)

bool available(std::string* why) {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    if (why) *why = fmt::format("no usable CUDA device ({})", cudaGetErrorString(err));
    cudaGetLastError();  // clear the sticky error
    return false;
  }
  if (n == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  return true;
}

std::string describe() {
  std::string why;
  if (!available(&why)) return why;
  cudaDeviceProp p{};
  CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
  return fmt::format("{}, sm_{}{}, {:.1f} GiB", p.name, p.major, p.minor,
                     double(p.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
}

// One warp per row: each lane sums a strided part of x², the warp reduces with shuffles.
__global__ void rmsnorm_forward_kernel(float* n, float* rstd, const float* x, int N, int C,
                                       float eps) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= N) return;
  const float* xr = x + (size_t)row * C;
  float ss = 0.f;
  for (int c = lane; c < C; c += 32) ss += xr[c] * xr[c];
  for (int o = 16; o > 0; o /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float r = rsqrtf(ss / C + eps);
  for (int c = lane; c < C; c += 32) n[(size_t)row * C + c] = xr[c] * r;
  if (lane == 0) rstd[row] = r;
}

void rmsnorm_forward_host(float* n, float* rstd, const float* x, int N, int C, float eps) {
  float *dx = nullptr, *dn = nullptr, *dr = nullptr;
  const size_t bytes = sizeof(float) * (size_t)N * C;
  CUDA_CHECK(cudaMalloc(&dx, bytes));
  CUDA_CHECK(cudaMalloc(&dn, bytes));
  CUDA_CHECK(cudaMalloc(&dr, sizeof(float) * N));
  CUDA_CHECK(cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice));
  const int warps = 8;
  rmsnorm_forward_kernel<<<(N + warps - 1) / warps, warps * 32>>>(dn, dr, dx, N, C, eps);
  CUDA_CHECK(cudaGetLastError());
  CUDA_CHECK(cudaMemcpy(n, dn, bytes, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(rstd, dr, sizeof(float) * N, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaFree(dx));
  CUDA_CHECK(cudaFree(dn));
  CUDA_CHECK(cudaFree(dr));
}

}  // namespace scalevec::gpu
