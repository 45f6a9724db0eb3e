// vexp: e^x for the float loops of the reference (softmax, SiLU, cross-entropy), written so that
// the compiler vectorizes a loop that calls it. std::exp is a library call, and without fast-math
// GCC does not replace it by a vector version, so a loop of std::exp runs one element at a time.
//
// The algorithm is Cephes' expf (S. L. Moshier): x = n·ln2 + r with n = round(x·log2 e) and
// |r| <= ln2/2, ln2 split in two parts so that r is exact (Cody and Waite), e^r by a degree-7
// polynomial (1 + r + r²·p(r)), and 2^n put into the exponent bits. Only IEEE operations the
// compiler may not reorder, no table, no branch: the same input gives the same output in every
// thread, vectorized or not (the vector and scalar code do the same operations). Measured by the
// tests (tests/ref/test_ops.cpp, VectorExp): at most 1 unit in the last place from the correctly
// rounded e^x over the whole range, e^0 = 1 exactly, NaN stays NaN. Limits: x above
// kExpHi = 88.3763 gives +inf (e^x overflows float at 88.7228, so inputs in between lose their
// last finite values), x below kExpLo = -87.3365 gives 0 (std::exp gives subnormals down to
// -103.3: all below 1.2e-38, nothing a softmax or a sigmoid can see; vexp(kExpLo) itself is
// about 2^-126).
// In double, vexp is std::exp (the double builds are the gradient checks' reference).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace scalevec {

inline constexpr float kExpHi = 88.3762626647949f;   // Cephes' MAXLOGF: round(x log2 e) <= 127
inline constexpr float kExpLo = -87.3365447505531f;  // ln of the smallest normal float, 2^-126

template <class T>
inline T vexp(T x) {
  return std::exp(x);
}

template <>
inline float vexp<float>(float x) {
  // x clamped to the range, and NaN to kExpLo: the conversion to int below must see a number in
  // range (converting NaN is undefined behaviour, and clang then returned a number for NaN).
  const float xc = (x >= kExpLo && x <= kExpHi) ? x : (x > kExpHi ? kExpHi : kExpLo);
  // n = round-to-nearest(x log2 e): adding 1.5·2^23 leaves no fraction bits.
  constexpr float kShift = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + kShift) - kShift;
  // r = x - n ln2 in two steps: 0.693359375 has few bits, so n·0.693359375 is exact.
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.0f;
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  const float y = er * two_n;
  return x >= kExpLo ? (x <= kExpHi ? y : INFINITY) : (x < kExpLo ? 0.0f : x);  // NaN: x
}

}  // namespace scalevec
