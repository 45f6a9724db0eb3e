// Token embedding lookup: x[n] = wte[tokens[n]].   tokens: (N,), wte: (V, C), x: (N, C).
#pragma once

#include <cstdint>
#include <cstring>

namespace scalevec {

template <class T>
void embedding_forward(T* x, const int32_t* tokens, const T* wte, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++)
    std::memcpy(x + (size_t)n * C, wte + (size_t)tokens[n] * C, sizeof(T) * C);
}

// [snippet:embedding_backward]
// Each row of wte receives the sum of dx over the positions that looked it up. Rows are added in
// position order; threads split the channels, never the positions, so no two threads touch the
// same element and the sum order is fixed (deterministic, no atomics).
template <class T>
void embedding_backward(T* dwte, const T* dx, const int32_t* tokens, int N, int C) {
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int c = 0; c < C; c++)
      for (int n = 0; n < N; n++) dwte[(size_t)tokens[n] * C + c] += dx[(size_t)n * C + c];
  }
}
// [end]

}  // namespace scalevec
