// The scale op: y = γ ⊙ x, the same γ ∈ R^C for every row. This is the whole arithmetic of a
// scale vector; the modules in ref/scale/ decide where it sits and how γ is parameterized.
#pragma once

#include "reduce.h"

namespace scalevec {

// [snippet:scale_forward]
// x, y: (N, C); gamma: (C,).
template <class T>
void scale_forward(T* y, const T* x, const T* gamma, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++) y[(size_t)i * C + c] = gamma[c] * x[(size_t)i * C + c];
}
// [end]

// [snippet:scale_backward]
// y[i][c] = γ[c] x[i][c]:  dx[i][c] += dy[i][c] γ[c]  and, because the same γ[c] is used by every
// row, its gradient collects a term from each of the N = B*T rows:  dγ[c] += Σ_i dy[i][c] x[i][c].
// The sum runs in a fixed order (reduce_rows), so the result does not depend on the thread count.
template <class T>
void scale_backward(T* dx, T* dgamma, const T* dy, const T* x, const T* gamma, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++)
    for (int c = 0; c < C; c++) dx[(size_t)i * C + c] += dy[(size_t)i * C + c] * gamma[c];
  reduce_rows(dgamma, N, C,
              [&](int i, int c) { return dy[(size_t)i * C + c] * x[(size_t)i * C + c]; });
}
// [end]

}  // namespace scalevec
