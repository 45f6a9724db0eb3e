// gemm<T>: row-major C = alpha * op(A) * op(B) + beta * C, dispatched to the BLAS's sgemm/dgemm
// (OpenBLAS by default). Everything heavy in the reference goes through this one function, so its
// semantics are spelled out once: op(A) is M x K, op(B) is K x N, C is M x N; lda/ldb/ldc are row
// strides in elements, which lets callers address column slices of wider buffers (e.g. the q part
// of a fused qkv row). In float, the operands can be rounded first as a GPU precision rounds them
// (operand_precision(), precision.h); by default they are not.
#pragma once

#include <vector>

#ifdef SCALEVEC_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

#include "precision.h"

namespace scalevec {

template <class T>
void gemm(bool transA, bool transB, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc);

// A copy of the stored (rows, cols) matrix X with row stride ld, each element rounded to an operand
// of precision p; the copy is packed (row stride cols) and lives until the thread's next call.
inline const float* rounded_operand(int slot, const float* X, int rows, int cols, int ld,
                                    Precision p) {
  thread_local std::vector<float> copies[2];
  std::vector<float>& r = copies[slot];
  r.resize((size_t)rows * cols);
  for (int i = 0; i < rows; i++)
    for (int j = 0; j < cols; j++)
      r[(size_t)i * cols + j] = round_operand(X[(size_t)i * ld + j], p);
  return r.data();
}

template <>
inline void gemm<float>(bool tA, bool tB, int M, int N, int K, float alpha, const float* A, int lda,
                        const float* B, int ldb, float beta, float* C, int ldc) {
  if (const Precision p = operand_precision(); p != Precision::fp32) {  // emulate a GPU mode
    A = rounded_operand(0, A, tA ? K : M, tA ? M : K, lda, p), lda = tA ? M : K;
    B = rounded_operand(1, B, tB ? N : K, tB ? K : N, ldb, p), ldb = tB ? K : N;
  }
  cblas_sgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <>
inline void gemm<double>(bool tA, bool tB, int M, int N, int K, double alpha, const double* A,
                         int lda, const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, tA ? CblasTrans : CblasNoTrans, tB ? CblasTrans : CblasNoTrans, M, N,
              K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace scalevec
