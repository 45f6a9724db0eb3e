// The precisions of a matrix product's operands. The reference computes in its own type T; the
// GPU path (gpu/ops.h) can run its products in three modes, and the reference can emulate each
// (OperandPrecision below), so that a machine without a GPU measures the error each mode puts into
// the model.
//
//   fp32  cuBLAS SGEMM without tensor-core shortcuts: the reference's arithmetic (default).
//   tf32  the same products on tensor cores: each operand rounded to 10 explicit mantissa bits,
//         fp32 sums. Everything else as fp32.
//   bf16  mixed precision: the operands of every matrix product (weights, activations, their
//         gradients) are rounded to bf16 (7 explicit mantissa bits) just before the product, which
//         sums in fp32 and writes fp32. Everything else stays fp32: the master weights and the
//         optimizer state, every scale vector γ (applied elementwise, never rounded), RMSNorm,
//         softmax, SwiGLU, the loss. Newton–Schulz (Muon) stays fp32.
//
// The unit roundoff u of the operands sets each mode's test tolerance (tests/gpu/test_gpu.cpp).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "../common.h"

namespace scalevec {

enum class Precision { fp32, tf32, bf16 };

inline const char* precision_name(Precision p) {
  return p == Precision::fp32 ? "fp32" : p == Precision::tf32 ? "tf32" : "bf16";
}

// Every precision's name, in order: the one list the flags and their checks use.
inline const std::vector<std::string>& precision_list() {
  static const std::vector<std::string> names{"fp32", "tf32", "bf16"};
  return names;
}

inline Precision parse_precision(std::string_view s) {
  for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
    if (s == precision_name(p)) return p;
  throw Error(fmt::format("unknown precision '{}' (expected fp32, tf32 or bf16)", s));
}

// Unit roundoff of a matrix-product operand: half the spacing of the significand, 2^-(bits).
inline double unit_roundoff(Precision p) {
  return p == Precision::fp32 ? 0x1p-24 : p == Precision::tf32 ? 0x1p-11 : 0x1p-8;
}

// The u that tolerances are multiples of: the unit roundoff, doubled for tf32 because cuBLAS does
// not say whether it rounds or truncates fp32 to tf32 (the bf16 cast is ours: to nearest).
inline double tolerance_roundoff(Precision p) {
  return (p == Precision::tf32 ? 2 : 1) * unit_roundoff(p);
}

// A float rounded to an operand of precision p, to nearest with ties to even (as
// __float2bfloat16_rn does).
inline float round_operand(float x, Precision p) {
  if (p == Precision::fp32) return x;
  const int drop = p == Precision::bf16 ? 16 : 13;  // 23 - explicit mantissa bits
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;  // inf, nan
  u += (1u << (drop - 1)) - 1 + ((u >> drop) & 1u);
  u &= ~((1u << drop) - 1);
  std::memcpy(&x, &u, 4);
  return x;
}

// The operand precision of the reference's float products (gemm<float> in blas.h): fp32, exact,
// everywhere unless a scope asks for the rounding of a GPU mode. Then every matrix product of the
// reference ops (linear, attention) rounds both operands as that mode does and sums in fp32; the
// elementwise ops are unaffected. Set it outside parallel regions.
inline Precision& operand_precision() {
  static Precision p = Precision::fp32;
  return p;
}
class OperandPrecision {
 public:
  explicit OperandPrecision(Precision p) : saved_(operand_precision()) { operand_precision() = p; }
  ~OperandPrecision() { operand_precision() = saved_; }
  OperandPrecision(const OperandPrecision&) = delete;
  OperandPrecision& operator=(const OperandPrecision&) = delete;

 private:
  Precision saved_;
};

}  // namespace scalevec
