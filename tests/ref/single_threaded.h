// The finite-difference and training tests run thousands of tiny forward passes, i.e. thousands
// of short OpenMP parallel regions; on a busy machine each region can wait milliseconds for a
// descheduled thread. These suites therefore run single-threaded; test_ops
// (ThreadCount.OpsGiveTheSameBits) and test_model (Model.DeterministicForTheSameSeed) check that
// 2 threads compute the same bits. Include this header once per test executable.
#pragma once

#include <gtest/gtest.h>

#include "ref/common.h"

namespace scalevec {

class SingleThreaded : public ::testing::Environment {
 public:
  void SetUp() override { set_num_threads(1); }
};
[[maybe_unused]] inline ::testing::Environment* const kSingleThreaded =
    ::testing::AddGlobalTestEnvironment(new SingleThreaded);

}  // namespace scalevec
