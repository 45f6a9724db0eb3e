// REQUIRE_GPU(): skip (not pass) the current test when no CUDA device can be used, saying why.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "gpu/device.h"

#define REQUIRE_GPU()                                           \
  do {                                                          \
    std::string why_;                                           \
    if (!scalevec::gpu::available(&why_)) GTEST_SKIP() << why_; \
  } while (0)
