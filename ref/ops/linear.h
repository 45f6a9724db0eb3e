// Linear map without bias, in the convention of torch.nn.Linear:
//     out = inp · Wᵀ          inp (N, IC), W (OC, IC) row-major, out (N, OC)
// N is the number of rows (B*T). `ldo` is the row stride of out/dout, so a branch can write its
// columns of a wider buffer (q, k, v side by side in one (N, 3C) row). Backward accumulates (+=)
// into dinp and dW, like every backward in this project: the caller zeroes gradient buffers.
#pragma once

#include "blas.h"

namespace scalevec {

// [snippet:linear_naive]
// The readable definition. out[n][o] = sum_i inp[n][i] * W[o][i].
template <class T>
void linear_forward_naive(T* out, const T* inp, const T* W, int N, int IC, int OC, int ldo) {
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      T acc = 0;
      for (int i = 0; i < IC; i++) acc += inp[(size_t)n * IC + i] * W[(size_t)o * IC + i];
      out[(size_t)n * ldo + o] = acc;
    }
}

// out[n][o] depends on inp[n][i] through W[o][i] and on W[o][i] through inp[n][i], so
//     dinp[n][i] += sum_o dout[n][o] * W[o][i]        (dinp = dout · W)
//     dW[o][i]   += sum_n dout[n][o] * inp[n][i]      (dW   = doutᵀ · inp)
template <class T>
void linear_backward_naive(T* dinp, T* dW, const T* dout, const T* inp, const T* W, int N, int IC,
                           int OC, int ldo) {
  for (int n = 0; n < N; n++)
    for (int o = 0; o < OC; o++) {
      T d = dout[(size_t)n * ldo + o];
      for (int i = 0; i < IC; i++) {
        dinp[(size_t)n * IC + i] += d * W[(size_t)o * IC + i];
        dW[(size_t)o * IC + i] += d * inp[(size_t)n * IC + i];
      }
    }
}
// [end]

// [snippet:linear_blas]
// The same two formulas as BLAS calls (tested equal to the loops above).
template <class T>
void linear_forward(T* out, const T* inp, const T* W, int N, int IC, int OC, int ldo) {
  gemm<T>(false, true, N, OC, IC, T(1), inp, IC, W, IC, T(0), out, ldo);  // inp · Wᵀ
}

template <class T>
void linear_backward(T* dinp, T* dW, const T* dout, const T* inp, const T* W, int N, int IC, int OC,
                     int ldo) {
  gemm<T>(false, false, N, IC, OC, T(1), dout, ldo, W, IC, T(1), dinp, IC);  // dinp += dout · W
  gemm<T>(true, false, OC, IC, N, T(1), dout, ldo, inp, IC, T(1), dW, IC);   // dW += doutᵀ · inp
}
// [end]

}  // namespace scalevec
