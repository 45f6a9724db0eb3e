#include "common.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

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

namespace {

// Sets what the runtime should start with, then restarts the program with it (execv returns only
// if it failed: then the program carries on as it is).
void restart_with(char** argv, bool wait_policy, bool blas) {
  const char* keep = std::getenv("SCALEVEC_KEEP_BLAS_KERNEL");
  blas = blas && !std::getenv("OPENBLAS_CORETYPE") && !(keep && std::strcmp(keep, "1") == 0) &&
         best_kernel() && generic_kernel();
  wait_policy = wait_policy && !std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT");
  if (!blas && !wait_policy) return;
  if (blas) {
    setenv("OPENBLAS_CORETYPE", best_kernel(), 1);
    setenv("SCALEVEC_BLAS_KERNEL_CHOSEN", "1", 1);  // for blas_kernel_description()
  }
  if (wait_policy) {
    setenv("GOMP_SPINCOUNT", kDefaultSpinCount, 1);
    setenv("SCALEVEC_DEFAULT_SPINCOUNT", "1", 1);  // for openmp_wait_description() and bench
  }
  execv("/proc/self/exe", argv);
  if (blas) unsetenv("OPENBLAS_CORETYPE"), unsetenv("SCALEVEC_BLAS_KERNEL_CHOSEN");
  if (wait_policy) unsetenv("GOMP_SPINCOUNT"), unsetenv("SCALEVEC_DEFAULT_SPINCOUNT");
}

}  // namespace

void select_blas_kernel(char** argv) { restart_with(argv, false, true); }

void configure_runtime(char** argv, bool skip_wait_policy) {
  restart_with(argv, !skip_wait_policy, true);
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

std::string openmp_wait_description() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const bool ours = std::getenv("SCALEVEC_DEFAULT_SPINCOUNT") != nullptr;
  std::string s;
  if (policy) s += fmt::format("OMP_WAIT_POLICY={}", policy);
  if (spin) s += fmt::format("{}GOMP_SPINCOUNT={}", s.empty() ? "" : " ", spin);
  if (s.empty()) return "OpenMP wait: the runtime's default";
  return "OpenMP wait: " + s + (ours ? " (scalevec's default)" : " (set by the user)");
}

namespace {

struct CpuTimes {
  double busy = 0, total = 0, own = 0;  // seconds: all CPUs' non-idle, all, this process's
  int cpus = 0;
  bool ok = false;
};

CpuTimes read_cpu_times() {
  CpuTimes t;
  std::ifstream stat("/proc/stat");
  std::string line;
  const double tick = double(sysconf(_SC_CLK_TCK));
  while (std::getline(stat, line)) {
    if (line.rfind("cpu", 0) != 0) break;
    if (line.rfind("cpu ", 0) == 0) {
      std::istringstream in(line.substr(4));
      double v[8] = {};  // user nice system idle iowait irq softirq steal
      for (double& x : v) in >> x;
      t.busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
      t.total = t.busy + (v[3] + v[4]) / tick;
      t.ok = !in.fail();
    } else {
      t.cpus++;
    }
  }
  std::ifstream self("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
  const size_t close = all.rfind(')');  // the name in parentheses may hold spaces
  if (close == std::string::npos) return CpuTimes{};
  std::istringstream in(all.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; i++) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::atof(field.c_str());
    if (i == 15) stime = std::atof(field.c_str());
  }
  t.own = (utime + stime) / tick;
  return t;
}

}  // namespace

double busy_cpus_elsewhere(double seconds) {
  const CpuTimes a = read_cpu_times();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const CpuTimes b = read_cpu_times();
  if (!a.ok || !b.ok || b.cpus <= 0 || b.total <= a.total) return -1;
  const double share = ((b.busy - a.busy) - (b.own - a.own)) / (b.total - a.total);
  return std::max(0.0, share * b.cpus);
}

std::string busy_machine_warning(int threads, double seconds) {
  const double busy = busy_cpus_elsewhere(seconds);
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (busy < 0 || cpus <= 0) return "";
  const double free_cpus = double(cpus) - busy;
  if (busy < 0.5 || threads <= free_cpus + 0.25) return "";
  const int suggest = std::max(1, (int)std::lround(free_cpus));
  return fmt::format(
      "warning: the machine is busy: about {:.1f} of its {} CPUs are in use by other programs; "
      "with {} thread{} each step waits for threads that share a core with them (--threads {} "
      "uses only the free ones)",
      busy, cpus, threads, threads == 1 ? "" : "s", suggest);
}

}  // namespace scalevec
