// What the tests that run tools/torch_ref.py share (test_torch_parity, test_trace): the shell
// command that starts Debian's PyTorch the way `scalevec bench` does, whether PyTorch is usable,
// a temporary directory for the files both sides read, and parameters far from the init.
//
// PyTorch is Debian's python3-torch under /usr/bin/python3 (tools/test.sh installs it). Without
// it these tests FAIL, because a parity check that silently does not run is no check; set
// SCALEVEC_ALLOW_NO_TORCH=1 to skip them instead (require_torch()).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"

namespace torch_util {

namespace fs = std::filesystem;

inline const std::string kScript = std::string(SCALEVEC_SOURCE_DIR) + "/tools/torch_ref.py";

inline std::string quote(const std::string& s) {  // for /bin/sh: '...' with ' written as '\''
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Proc {
  int status = -1;     // exit status, or -1 if the command did not exit normally
  std::string output;  // stdout and stderr together
};

inline Proc sh(const std::string& cmd) {
  Proc r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// The interpreter with the OpenMP OpenBLAS first on the library path (as `scalevec bench` runs it)
// and one thread: the checks are about numbers, not speed.
inline std::string python() {
  return "LD_LIBRARY_PATH=" + quote(SCALEVEC_OPENBLAS_LIBDIR) + " OMP_NUM_THREADS=1 " +
         quote(SCALEVEC_PYTHON);
}

// Empty when `import torch` works, else why not (computed once).
inline const std::string& torch_problem() {
  static const std::string problem = [] {
    const Proc r = sh(python() + " -c 'import torch'");
    if (r.status == 0) return std::string();
    return "PyTorch is not usable: '" + std::string(SCALEVEC_PYTHON) +
           " -c \"import torch\"' failed (exit " + std::to_string(r.status) + "): " + r.output +
           "Install Debian's python3-torch (tools/setup.sh --test does), or set "
           "SCALEVEC_ALLOW_NO_TORCH=1 to skip the PyTorch tests.";
  }();
  return problem;
}

// In a fixture's SetUp: nothing when PyTorch works; else the test fails, or is skipped with
// SCALEVEC_ALLOW_NO_TORCH=1 (gtest then skips the body).
inline void require_torch() {
  if (torch_problem().empty()) return;
  const char* allow = std::getenv("SCALEVEC_ALLOW_NO_TORCH");
  if (allow && std::string(allow) == "1") GTEST_SKIP() << torch_problem();
  FAIL() << torch_problem();
}

// A fresh directory, removed at the end unless the environment variable `keep_var` is 1 (to
// rerun torch_ref.py on it by hand).
struct TempDir {
  fs::path path;
  std::string keep_var;
  TempDir(const std::string& prefix, std::string keep) : keep_var(std::move(keep)) {
    std::string tmpl = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!mkdtemp(tmpl.data())) throw scalevec::Error("cannot create a temporary directory");
    path = tmpl;
  }
  ~TempDir() {
    const char* keep = std::getenv(keep_var.c_str());
    if (keep && std::string(keep) == "1") {
      std::printf("kept %s\n", path.c_str());
      return;
    }
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Parameters far from the training init so that every part of the model matters: γ ~ U(0.5, 1.5)
// (γ ≠ 1, so its gradient and its use in the forward are exercised), embedding rows of unit
// scale, matrices with unit-variance outputs, so attention is far from uniform and SiLU far from
// linear.
template <class T>
void randomize(scalevec::Transformer<T>& model, uint64_t seed) {
  scalevec::Rng rng(seed);
  for (const auto& p : model.layout().params()) {
    T* w = model.params.data() + p.offset;
    const double sd =
        p.role == scalevec::Role::Embedding ? 1.0 : 1.0 / std::sqrt(double(p.shape.back()));
    for (size_t i = 0; i < p.numel; i++)
      w[i] = p.role == scalevec::Role::Scale ? T(0.5 + rng.uniform()) : T(sd * rng.normal());
  }
}

}  // namespace torch_util
