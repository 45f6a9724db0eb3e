// Softmax cross-entropy over the vocabulary, fused: the backward recomputes the softmax from the
// logits, so no (N, V) probability buffer is kept.
//     loss_n = logsumexp(logits_n) - logits_n[target_n]        mean over the N rows
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "exp.h"

namespace scalevec {

// [snippet:crossentropy]
// logits: (N, V); targets: (N,); losses: (N,) per-row loss. Returns the mean, summed in row order.
template <class T>
T crossentropy_forward(T* losses, const T* logits, const int32_t* targets, int N, int V) {
#pragma omp parallel
  {
    std::vector<T> e(V);  // this row's exp(logit - max)
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const T* l = logits + (size_t)n * V;
      T mx = l[0];
      for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
      for (int v = 0; v < V; v++) e[v] = vexp(l[v] - mx);  // vectorized (exp.h)
      T sum = 0;
      for (int v = 0; v < V; v++) sum += e[v];  // in order
      losses[n] = std::log(sum) + mx - l[targets[n]];
    }
  }
  T total = 0;
  for (int n = 0; n < N; n++) total += losses[n];
  return total / N;
}

// d(mean loss)/dlogits_n = (softmax(logits_n) - onehot(target_n)) / N, times the upstream dloss.
template <class T>
void crossentropy_backward(T* dlogits, const T* logits, const int32_t* targets, int N, int V,
                           T dloss) {
  const T s = dloss / N;
#pragma omp parallel
  {
    std::vector<T> e(V);  // this row's exp(logit - max), computed once
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const T* l = logits + (size_t)n * V;
      T* d = dlogits + (size_t)n * V;
      T mx = l[0];
      for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
      for (int v = 0; v < V; v++) e[v] = vexp(l[v] - mx);
      T sum = 0;
      for (int v = 0; v < V; v++) sum += e[v];
      const T inv = T(1) / sum;
      for (int v = 0; v < V; v++) d[v] += s * e[v] * inv;
      d[targets[n]] -= s;
    }
  }
}
// [end]

}  // namespace scalevec
