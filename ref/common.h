// Small shared pieces of the reference: the error type, a checked-condition helper, and thread
// control. Everything user-facing reports failures by throwing scalevec::Error with a one-line,
// context-carrying message; the CLI prints it and exits non-zero.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
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

// A double that the float32 model, optimizers and kernels use: finite, and 0 or a normal float32.
// A smaller magnitude is 0 or a subnormal in float32 (norm_eps = 1e-300 is an eps of 0 there: NaN
// from step 2), a larger one is inf. Compared in double: converting an out-of-range double to
// float is undefined. Used by ModelConfig::validate and TrainConfig::validate.
inline void require_float32(const char* name, double v) {
  require(std::isfinite(v), "{} = {} must be a finite number", name, v);
  const double a = std::fabs(v);
  const double tiny = std::numeric_limits<float>::min(), big = std::numeric_limits<float>::max();
  require(a == 0 || a >= tiny,
          "{} = {} is not usable in float32: it is {} there (the smallest normal float32 is {})",
          name, v, a <= double(std::numeric_limits<float>::denorm_min()) / 2 ? "0" : "subnormal",
          std::numeric_limits<float>::min());
  require(a <= big, "{} = {} is not usable in float32: it is inf there (the largest is {})", name,
          v, std::numeric_limits<float>::max());
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

// OpenMP's idle threads spin at the end of every parallel region before they sleep (libgomp's
// default: 300000 spins, about a millisecond here). A training step has hundreds of regions; on a
// machine shared with another busy program, a spinning thread holds a core that program needs and
// waits for a thread that is descheduled, and the step takes far longer than its share of the
// cores explains (docs/benchmarks.md, "Sharing the CPU"). libgomp reads its environment once, when
// it is loaded, before main() (and the C library resets the environment after the executable's
// .preinit_array, so no code of ours runs early enough). configure_runtime(argv), called first in
// the scalevec executable's main(), therefore does what select_blas_kernel does and also: if
// neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, it sets GOMP_SPINCOUNT=kDefaultSpinCount
// (and SCALEVEC_DEFAULT_SPINCOUNT=1, so that `bench` can give its PyTorch peer libgomp's own
// default back) and restarts the program once with the same arguments. `skip_wait_policy`: the
// commands that run no parallel work (--help, inspect, ...) are not restarted for it.
inline constexpr const char* kDefaultSpinCount = "1000";
void configure_runtime(char** argv, bool skip_wait_policy = false);
// "GOMP_SPINCOUNT=1000 (scalevec's default)", "OMP_WAIT_POLICY=active (set by the user)", ...
std::string openmp_wait_description();
// The share of the machine's CPUs busy with other programs, measured over `seconds` from
// /proc/stat (all CPUs' non-idle time, minus this process's own); -1 where it cannot be read.
double busy_cpus_elsewhere(double seconds);
// One line for stderr when the machine is busy and `threads` exceed its free cores ("" if not):
// the step then waits for threads that share a core with another program.
std::string busy_machine_warning(int threads, double seconds = 0.1);

}  // namespace scalevec
