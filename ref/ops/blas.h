// gemm<T>: row-major C = alpha * op(A) * op(B) + beta * C, dispatched to the BLAS's sgemm/dgemm (OpenBLAS by default).
// Everything heavy in the reference goes through this one function, so its semantics are spelled
// out once: op(A) is M x K, op(B) is K x N, C is M x N; lda/ldb/ldc are row strides in elements,
// which lets callers address column slices of wider buffers (e.g. the q part of a fused qkv row).
#pragma once

#ifdef SCALEVEC_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

namespace scalevec {

template <class T>
void gemm(bool transA, bool transB, int M, int N, int K, T alpha, const T* A, int lda,
          const T* B, int ldb, T beta, T* C, int ldc);

template <>
inline void gemm<float>(bool tA, bool tB, int M, int N, int K, float alpha, const float* A,
                        int lda, const float* B, int ldb, float beta, float* C, int ldc) {
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
