#include "common.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#ifdef SCALEVEC_OPENBLAS
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);
#endif

namespace scalevec {

// Without OpenMP the reference's loops run on one thread; another BLAS keeps its own threading
// (its environment variables: VECLIB_MAXIMUM_THREADS for Accelerate, ...).
void set_num_threads(int n) {
  if (n <= 0) return;
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif
#ifdef SCALEVEC_OPENBLAS
  openblas_set_num_threads(n);
#endif
}

int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  const long t = std::lround(s);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

namespace {

// The best kernel family of OpenBLAS 0.3.21 this CPU can run, if it has one of these ISAs.
const char* best_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return nullptr;
}

#ifdef SCALEVEC_OPENBLAS
const char* corename() { return openblas_get_corename(); }
#else
const char* corename() { return "(not OpenBLAS)"; }
#endif
bool generic_kernel() { return std::strcmp(corename(), "Prescott") == 0; }

}  // namespace

void select_blas_kernel(char** argv) {
  const char* keep = std::getenv("SCALEVEC_KEEP_BLAS_KERNEL");
  if (std::getenv("OPENBLAS_CORETYPE") || (keep && std::strcmp(keep, "1") == 0)) return;
  const char* best = best_kernel();
  if (!best || !generic_kernel()) return;
  setenv("OPENBLAS_CORETYPE", best, 1);
  setenv("SCALEVEC_BLAS_KERNEL_CHOSEN", "1", 1);  // for blas_kernel_description()
  execv("/proc/self/exe", argv);  // returns only if it failed: then carry on with Prescott
  unsetenv("OPENBLAS_CORETYPE");
}

std::string blas_kernel_description() {
#ifndef SCALEVEC_OPENBLAS
  return "BLAS: not OpenBLAS (SCALEVEC_BLAS=find)";
#endif
  std::string s = fmt::format("OpenBLAS kernels {}", corename());
  if (std::getenv("SCALEVEC_BLAS_KERNEL_CHOSEN"))
    s += " (chosen by scalevec: OpenBLAS does not know this CPU and would use its generic Prescott "
         "kernels)";
  else if (std::getenv("OPENBLAS_CORETYPE"))
    s += " (OPENBLAS_CORETYPE)";
  else if (generic_kernel() && best_kernel())
    s += fmt::format(" (generic: OPENBLAS_CORETYPE={} would be faster)", best_kernel());
  return s;
}

}  // namespace scalevec
