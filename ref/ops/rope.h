// Rotary position embedding (RoPE), "rotate-half" convention of GPT-NeoX / Hugging Face Llama:
// within each head of size hs, channel i pairs with channel i + hs/2, and the pair at position t
// is rotated by the angle t·θ_i, θ_i = base^(-2i/hs):
//     x'_i        = x_i cos(tθ_i) - x_{i+hs/2} sin(tθ_i)
//     x'_{i+hs/2} = x_i sin(tθ_i) + x_{i+hs/2} cos(tθ_i)
// Applied in place to q and k, which live in rows of stride ld ((B, T, NH, hs) inside a wider row).
#pragma once

#include <cmath>
#include <vector>

namespace scalevec {

// cos/sin tables, each (T, hs/2), computed in double and rounded once to T.
template <class T>
void rope_tables(std::vector<T>& cos_t, std::vector<T>& sin_t, int maxT, int hs, double base) {
  const int half = hs / 2;
  cos_t.resize((size_t)maxT * half);
  sin_t.resize((size_t)maxT * half);
  for (int t = 0; t < maxT; t++)
    for (int i = 0; i < half; i++) {
      double angle = t * std::pow(base, -2.0 * i / hs);
      cos_t[(size_t)t * half + i] = T(std::cos(angle));
      sin_t[(size_t)t * half + i] = T(std::sin(angle));
    }
}

// [snippet:rope]
// x: (B, T, NH, hs) with row stride ld between consecutive (b, t); rotated in place.
template <class T>
void rope_forward(T* x, const T* cos_t, const T* sin_t, int B, int Tn, int NH, int hs, int ld) {
  const int half = hs / 2;
#pragma omp parallel for schedule(static)
  for (int bt = 0; bt < B * Tn; bt++) {
    const int t = bt % Tn;
    const T* c = cos_t + (size_t)t * half;
    const T* s = sin_t + (size_t)t * half;
    for (int h = 0; h < NH; h++) {
      T* xh = x + (size_t)bt * ld + (size_t)h * hs;
      for (int i = 0; i < half; i++) {
        T x1 = xh[i], x2 = xh[i + half];
        xh[i] = x1 * c[i] - x2 * s[i];
        xh[i + half] = x1 * s[i] + x2 * c[i];
      }
    }
  }
}

// The rotation R is orthogonal, so the gradient flows back through Rᵀ (rotation by -tθ_i):
//     dx_i = dx'_i cos + dx'_{i+hs/2} sin,    dx_{i+hs/2} = -dx'_i sin + dx'_{i+hs/2} cos.
// Applied in place to the gradient buffer (it turns d(rotated) into d(unrotated)).
template <class T>
void rope_backward(T* dx, const T* cos_t, const T* sin_t, int B, int Tn, int NH, int hs, int ld) {
  const int half = hs / 2;
#pragma omp parallel for schedule(static)
  for (int bt = 0; bt < B * Tn; bt++) {
    const int t = bt % Tn;
    const T* c = cos_t + (size_t)t * half;
    const T* s = sin_t + (size_t)t * half;
    for (int h = 0; h < NH; h++) {
      T* dh = dx + (size_t)bt * ld + (size_t)h * hs;
      for (int i = 0; i < half; i++) {
        T d1 = dh[i], d2 = dh[i + half];
        dh[i] = d1 * c[i] + d2 * s[i];
        dh[i + half] = -d1 * s[i] + d2 * c[i];
      }
    }
  }
}
// [end]

}  // namespace scalevec
