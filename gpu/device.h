// Device discovery for the CUDA mirror. Host-only header: callers need no CUDA headers.
#pragma once

#include <string>

namespace scalevec::gpu {

// True when a CUDA device can be used; otherwise *why says what is missing (driver, device...).
bool available(std::string* why = nullptr);
// One line describing device 0 ("NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB"), or the reason there
// is none.
std::string describe();

// RMSNorm forward on the device (the first mirrored op): n = x / sqrt(mean(x²) + eps), fp32.
// Host arrays in and out; used by the GPU test suite against ref/ops/rmsnorm.h.
void rmsnorm_forward_host(float* n, float* rstd, const float* x, int N, int C, float eps);

}  // namespace scalevec::gpu
