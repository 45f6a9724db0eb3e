// The main() of every test binary: GoogleTest's, after the same choice of OpenBLAS kernels that
// every scalevec program makes (ref/common.h), so that tests compute what the programs compute.
#include <gtest/gtest.h>

#include "ref/common.h"

int main(int argc, char** argv) {
  scalevec::select_blas_kernel(argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
