// Small shared pieces of the reference: the error type, a checked-condition helper, and thread
// control. Everything user-facing reports failures by throwing scalevec::Error with a one-line,
// context-carrying message; the CLI prints it and exits non-zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace scalevec {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// require(cond, "format {}", args...): throw Error with the formatted message when cond is false.
template <class... Args>
inline void require(bool cond, fmt::format_string<Args...> f, Args&&... args) {
  if (!cond) throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// A duration for progress lines: "58s", "2m42s", "1h05m" ("?" if negative, not finite or absurd).
std::string format_duration(double seconds);

// Set the number of threads used by both our OpenMP loops and OpenBLAS (0 = leave as is).
void set_num_threads(int n);
int num_threads();

// OpenBLAS picks its kernels by CPU when it is loaded. A CPU newer than the library (Debian 12's
// OpenBLAS 0.3.21 on an Intel Sapphire/Emerald Rapids, for one) gets its generic "Prescott"
// kernels, about 3x slower than the ones the CPU can run. Called first in main(): if OpenBLAS chose
// Prescott although the CPU has AVX-512 (or AVX2 and FMA), and OPENBLAS_CORETYPE is not set, it
// sets OPENBLAS_CORETYPE to SkylakeX (or Haswell) and restarts the program with the same
// arguments; otherwise it does nothing. SCALEVEC_KEEP_BLAS_KERNEL=1 turns it off.
void select_blas_kernel(char** argv);
// "SkylakeX", "Haswell", ...: the kernels OpenBLAS uses, and why (for --version and bench).
std::string blas_kernel_description();

}  // namespace scalevec
