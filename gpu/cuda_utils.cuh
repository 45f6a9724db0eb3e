// Shared pieces of the CUDA mirror: checked CUDA and cuBLAS calls, an owning device array, and
// the process-wide cuBLAS handle. Every CUDA call and every kernel launch is checked; a failure
// throws scalevec::Error naming the call, the file and line, and CUDA's message.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include <fmt/format.h>

#include "ref/common.h"

namespace scalevec::gpu {

#define SV_CUDA_CHECK(call)                                                                  \
  do {                                                                                       \
    cudaError_t err_ = (call);                                                               \
    if (err_ != cudaSuccess)                                                                 \
      throw ::scalevec::Error(fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #call, \
                                          cudaGetErrorString(err_)));                        \
  } while (0)

#define SV_CUBLAS_CHECK(call)                                                                      \
  do {                                                                                             \
    cublasStatus_t st_ = (call);                                                                   \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                              \
      throw ::scalevec::Error(                                                                     \
          fmt::format("{}:{}: {} failed: cuBLAS status {}", __FILE__, __LINE__, #call, int(st_))); \
  } while (0)

// After every kernel launch: launch errors (bad configuration) surface here.
#define SV_LAUNCH_CHECK() SV_CUDA_CHECK(cudaGetLastError())

// The process-wide cuBLAS handle (created on first use; fp32 math without TF32 unless
// set_matmul_precision(Precision::tf32), gpu/ops.h).
cublasHandle_t cublas();

inline int ceil_div(long a, long b) { return int((a + b - 1) / b); }

// An owning array in device memory. Not copyable; movable.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) { resize(n); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(p_, o.p_), std::swap(n_, o.n_);
    return *this;
  }
  ~DeviceArray() {
    if (p_) cudaFree(p_);
  }
  void resize(size_t n) {
    if (n == n_) return;
    if (p_) SV_CUDA_CHECK(cudaFree(p_));
    p_ = nullptr, n_ = n;
    if (n) SV_CUDA_CHECK(cudaMalloc(&p_, n * sizeof(T)));
  }
  void zero() {
    if (n_) SV_CUDA_CHECK(cudaMemset(p_, 0, n_ * sizeof(T)));
  }
  void upload(const T* host, size_t n) {
    require(n <= n_, "upload of {} elements into a device array of {}", n, n_);
    SV_CUDA_CHECK(cudaMemcpy(p_, host, n * sizeof(T), cudaMemcpyHostToDevice));
  }
  void upload(const std::vector<T>& host) {
    resize(host.size());
    upload(host.data(), host.size());
  }
  void download(T* host, size_t n) const {
    require(n <= n_, "download of {} elements from a device array of {}", n, n_);
    SV_CUDA_CHECK(cudaMemcpy(host, p_, n * sizeof(T), cudaMemcpyDeviceToHost));
  }
  std::vector<T> to_host() const {
    std::vector<T> v(n_);
    download(v.data(), n_);
    return v;
  }
  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace scalevec::gpu
