// Deterministic column sums over rows: out[c] += sum_n term(n, c).
//
// Scale-vector gradients are sums over all N = B*T rows (dγ_c = Σ_n dout[n][c] * x[n][c]). Summing
// floats in a different order gives different bits, so the order is fixed here and does not depend
// on the number of threads: rows are cut into blocks of kRowBlock, each block is summed in row
// order (blocks in parallel), then the block partials are added in block order.
#pragma once

#include <algorithm>
#include <vector>

namespace scalevec {

inline constexpr int kRowBlock = 64;

template <class T, class Term>
void reduce_rows(T* out, int N, int C, Term term) {
  const int nblocks = (N + kRowBlock - 1) / kRowBlock;
  std::vector<T> partial((size_t)nblocks * C, T(0));  // (nblocks, C)
#pragma omp parallel for schedule(static)
  for (int b = 0; b < nblocks; b++) {
    T* p = partial.data() + (size_t)b * C;
    const int n_end = std::min(N, (b + 1) * kRowBlock);
    for (int n = b * kRowBlock; n < n_end; n++)
      for (int c = 0; c < C; c++) p[c] += term(n, c);
  }
  for (int b = 0; b < nblocks; b++)
    for (int c = 0; c < C; c++) out[c] += partial[(size_t)b * C + c];
}

}  // namespace scalevec
