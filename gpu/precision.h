// The precision of the GPU path's matrix products: fp32, tf32 or bf16, defined (with the operand
// rounding the reference uses to emulate them) in ref/ops/precision.h. Host-only header (no CUDA):
// the tools, the tests and the host double include it.
#pragma once

#include "ref/ops/precision.h"

namespace scalevec::gpu {
using scalevec::parse_precision;
using scalevec::Precision;
using scalevec::precision_list;
using scalevec::precision_name;
using scalevec::round_operand;
using scalevec::tolerance_roundoff;
using scalevec::unit_roundoff;
}  // namespace scalevec::gpu
