#include "device.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <stdexcept>

namespace scalevec::gpu {

// Every CUDA call is checked; a failure names the call, the file and line, and CUDA's message.
#define CUDA_CHECK(call)                                                                      \
  do {                                                                                        \
    cudaError_t err_ = (call);                                                                \
    if (err_ != cudaSuccess)                                                                  \
      throw std::runtime_error(fmt::format("{}:{}: {} failed: {}", __FILE__, __LINE__, #call, \
                                           cudaGetErrorString(err_)));                        \
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

void synchronize() { CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace scalevec::gpu
