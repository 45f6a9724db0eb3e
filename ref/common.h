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

// Set the number of threads used by both our OpenMP loops and OpenBLAS (0 = leave as is).
void set_num_threads(int n);
int num_threads();

}  // namespace scalevec
