// RMSNorm without its scale: the fixed normalization N(x) of docs/SCALE_VECTORS.md §1.
//     n = x · r,   r = 1 / sqrt(mean(x²) + eps)            per row of C channels
// The learnable scale γ is a separate op (scale.h) owned by the scale modules, so that the
// parameterizations and placements can change without touching the normalization.
// `ld` is the row stride, so per-head normalization can run on head slices of a wider row.
#pragma once

#include <cmath>

namespace scalevec {

// [snippet:rmsnorm_forward]
// x, n: (N, C) with row stride ld; rstd: (N,) caches r for the backward pass.
template <class T>
void rmsnorm_forward(T* n, T* rstd, const T* x, int N, int C, int ld, T eps) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    const T* xi = x + (size_t)i * ld;
    T* ni = n + (size_t)i * ld;
    T ss = 0;
    for (int c = 0; c < C; c++) ss += xi[c] * xi[c];
    T r = T(1) / std::sqrt(ss / C + eps);
    for (int c = 0; c < C; c++) ni[c] = xi[c] * r;
    rstd[i] = r;
  }
}
// [end]

// [snippet:rmsnorm_backward]
// In the forward pass n_c = x_c r with r = (mean(x²) + eps)^(-1/2). Every output depends on every
// input through r:  ∂r/∂x_j = -r³ x_j / C, so
//     dx_j = dn_j r + Σ_c dn_c x_c (-r³ x_j / C) = r (dn_j - n_j · mean_c(dn_c n_c)).
// The second term removes the component of dn along n: scaling x does not change n.
template <class T>
void rmsnorm_backward(T* dx, const T* dn, const T* n, const T* rstd, int N, int C, int ld) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    const T* dni = dn + (size_t)i * ld;
    const T* ni = n + (size_t)i * ld;
    T* dxi = dx + (size_t)i * ld;
    T dot = 0;
    for (int c = 0; c < C; c++) dot += dni[c] * ni[c];
    const T mean_dot = dot / C, r = rstd[i];
    for (int c = 0; c < C; c++) dxi[c] += r * (dni[c] - ni[c] * mean_dot);
  }
}
// [end]

}  // namespace scalevec
