// Device discovery for the CUDA mirror. Host-only header: callers need no CUDA headers.
#pragma once

#include <string>

namespace scalevec::gpu {

// True when a CUDA device can be used; otherwise *why says what is missing (driver, device...).
bool available(std::string* why = nullptr);
// One line describing device 0 ("NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB"), or the reason there
// is none.
std::string describe();
// Waits for every kernel launched so far (for timing); checked.
void synchronize();

}  // namespace scalevec::gpu
