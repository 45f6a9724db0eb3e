// Causal multi-head self-attention on already-projected (and rotated) q, k, v.
//     for each batch b and head h:  S = q kᵀ / sqrt(hs),  P = softmax_causal(S),  out = P v
// q, k, v: (B, T, NH, hs) with row stride ld (they are column slices of one (B, T, 3C) buffer);
// out: (B, T, C) with C = NH*hs; att: (B, NH, T, T) caches P for the backward pass.
// Each (b, h) is independent, so the loop over them runs in parallel and calls single-threaded
// gemms (OpenBLAS runs one thread per call inside an OpenMP parallel region).
#pragma once

#include <algorithm>
#include <cmath>

#include "blas.h"
#include "exp.h"

namespace scalevec {

// Row i of a causal softmax in place: columns 0..i become the softmax of their scores, the rest
// (i+1..Tn-1) become 0.
template <class T>
void causal_softmax_row(T* row, int i, int Tn) {
  T mx = row[0];
  for (int j = 1; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
  for (int j = 0; j <= i; j++) row[j] = vexp(row[j] - mx);  // vectorized (exp.h)
  T sum = 0;
  for (int j = 0; j <= i; j++) sum += row[j];  // in order
  const T inv = T(1) / sum;
  for (int j = 0; j <= i; j++) row[j] *= inv;
  for (int j = i + 1; j < Tn; j++) row[j] = 0;
}

// Row-wise causal softmax of a (T, T) block in place: row i keeps columns 0..i, the rest become 0.
template <class T>
void causal_softmax_inplace(T* S, int Tn) {
  for (int i = 0; i < Tn; i++) causal_softmax_row(S + (size_t)i * Tn, i, Tn);
}

// [snippet:attention_forward]
template <class T>
void attention_forward(T* out, T* att, const T* q, const T* k, const T* v, int ld, int B, int Tn,
                       int NH, int hs) {
  const int C = NH * hs;
  const T scale = T(1) / std::sqrt(T(hs));
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const size_t off = (size_t)b * Tn * ld + (size_t)h * hs;  // head h of row (b, 0)
    T* P = att + (size_t)bh * Tn * Tn;                        // (T, T)
    gemm<T>(false, true, Tn, Tn, hs, scale, q + off, ld, k + off, ld, T(0), P, Tn);  // S = q kᵀ
    causal_softmax_inplace(P, Tn);
    T* o = out + (size_t)b * Tn * C + (size_t)h * hs;
    gemm<T>(false, false, Tn, hs, Tn, T(1), P, Tn, v + off, ld, T(0), o, C);  // out = P v
  }
}
// [end]

// Row i of the causal softmax's backward in place: dS_ij = P_ij (dP_ij - Σ_l P_il dP_il) for
// j <= i (dS holds dP on entry), and 0 for i < j < end.
template <class T>
void causal_softmax_backward_row(T* dSi, const T* Pi, int i, int end) {
  T dot = 0;
  for (int j = 0; j <= i; j++) dot += Pi[j] * dSi[j];
  for (int j = 0; j <= i; j++) dSi[j] = Pi[j] * (dSi[j] - dot);
  for (int j = i + 1; j < end; j++) dSi[j] = 0;
}

// [snippet:attention_backward]
// With out = P v:      dP = dout vᵀ,   dv += Pᵀ dout.
// Softmax, row by row: P_ij = e^{S_ij} / Σ_l e^{S_il}, so dS_ij = P_ij (dP_ij - Σ_l P_il dP_il).
// Masked entries have P_ij = 0 and get no gradient. With S = q kᵀ · scale:
//                      dq += dS k · scale,   dk += dSᵀ q · scale.
// datt: (B, NH, T, T) scratch for dP / dS.
template <class T>
void attention_backward(T* dq, T* dk, T* dv, T* datt, const T* dout, const T* att, const T* q,
                        const T* k, const T* v, int ld, int B, int Tn, int NH, int hs) {
  const int C = NH * hs;
  const T scale = T(1) / std::sqrt(T(hs));
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const size_t off = (size_t)b * Tn * ld + (size_t)h * hs;
    const T* P = att + (size_t)bh * Tn * Tn;
    T* dS = datt + (size_t)bh * Tn * Tn;
    const T* dout_bh = dout + (size_t)b * Tn * C + (size_t)h * hs;
    gemm<T>(false, true, Tn, Tn, hs, T(1), dout_bh, C, v + off, ld, T(0), dS, Tn);  // dP
    gemm<T>(true, false, Tn, hs, Tn, T(1), P, Tn, dout_bh, C, T(1), dv + off, ld);  // dv
    for (int i = 0; i < Tn; i++)
      causal_softmax_backward_row(dS + (size_t)i * Tn, P + (size_t)i * Tn, i, Tn);
    gemm<T>(false, false, Tn, hs, Tn, scale, dS, Tn, k + off, ld, T(1), dq + off, ld);  // dq
    gemm<T>(true, false, Tn, hs, Tn, scale, dS, Tn, q + off, ld, T(1), dk + off, ld);   // dk
  }
}
// [end]

// [snippet:attention_causal_tiles]
// The same two passes, without the masked half. Rows are taken kAttentionTile at a time: rows
// [r0, r1) attend to columns [0, r1) only, so each product stops at the diagonal tile instead of
// running to T, and about half of the T×T work (5/8 of it at T = 128, 9/16 at T = 256) is done.
// P keeps its full (T, T) layout with zeros above the diagonal, as attention_forward leaves it.
// The terms left out are exact zeros, but the products are split differently (and dv, dk sum
// over the tiles one after another), so the result equals attention_forward/backward to float
// rounding, not bit for bit (tests/ref/test_ops.cpp, AttentionTiles). Every (b, h) is still one
// thread's, in a fixed order: the same bits at any thread count. The CPU backend runs these.
inline constexpr int kAttentionTile = 32;

template <class T>
void attention_forward_tiled(T* out, T* att, const T* q, const T* k, const T* v, int ld, int B,
                             int Tn, int NH, int hs) {
  const int C = NH * hs;
  const T scale = T(1) / std::sqrt(T(hs));
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const size_t off = (size_t)b * Tn * ld + (size_t)h * hs;
    T* P = att + (size_t)bh * Tn * Tn;
    T* o = out + (size_t)b * Tn * C + (size_t)h * hs;
    for (int r0 = 0; r0 < Tn; r0 += kAttentionTile) {
      const int r1 = std::min(Tn, r0 + kAttentionTile), m = r1 - r0;
      T* Pr = P + (size_t)r0 * Tn;  // rows r0..r1, columns 0..r1 are computed
      gemm<T>(false, true, m, r1, hs, scale, q + off + (size_t)r0 * ld, ld, k + off, ld, T(0), Pr,
              Tn);
      for (int i = r0; i < r1; i++) causal_softmax_row(P + (size_t)i * Tn, i, Tn);
      gemm<T>(false, false, m, hs, r1, T(1), Pr, Tn, v + off, ld, T(0), o + (size_t)r0 * C, C);
    }
  }
}

template <class T>
void attention_backward_tiled(T* dq, T* dk, T* dv, T* datt, const T* dout, const T* att, const T* q,
                              const T* k, const T* v, int ld, int B, int Tn, int NH, int hs) {
  const int C = NH * hs;
  const T scale = T(1) / std::sqrt(T(hs));
#pragma omp parallel for schedule(static)
  for (int bh = 0; bh < B * NH; bh++) {
    const int b = bh / NH, h = bh % NH;
    const size_t off = (size_t)b * Tn * ld + (size_t)h * hs;
    const T* P = att + (size_t)bh * Tn * Tn;
    T* dS = datt + (size_t)bh * Tn * Tn;
    const T* dout_bh = dout + (size_t)b * Tn * C + (size_t)h * hs;
    for (int r0 = 0; r0 < Tn; r0 += kAttentionTile) {
      const int r1 = std::min(Tn, r0 + kAttentionTile), m = r1 - r0;
      const T* Pr = P + (size_t)r0 * Tn;
      T* dSr = dS + (size_t)r0 * Tn;
      const T* dor = dout_bh + (size_t)r0 * C;
      gemm<T>(false, true, m, r1, hs, T(1), dor, C, v + off, ld, T(0), dSr, Tn);  // dP
      gemm<T>(true, false, r1, hs, m, T(1), Pr, Tn, dor, C, T(1), dv + off, ld);  // dv
      for (int i = r0; i < r1; i++)  // columns up to r1 are read by the products below
        causal_softmax_backward_row(dS + (size_t)i * Tn, P + (size_t)i * Tn, i, r1);
      gemm<T>(false, false, m, hs, r1, scale, dSr, Tn, k + off, ld, T(1),
              dq + off + (size_t)r0 * ld, ld);  // dq
      gemm<T>(true, false, r1, hs, m, scale, dSr, Tn, q + off + (size_t)r0 * ld, ld, T(1), dk + off,
              ld);  // dk
    }
  }
}
// [end]

}  // namespace scalevec
