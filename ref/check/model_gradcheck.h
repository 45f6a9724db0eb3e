// Finite-difference check of a whole model: every parameter tensor, sampled entries (all of them
// for tensors no larger than the sample count), in double precision.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../model/transformer.h"
#include "gradcheck.h"

namespace scalevec {

struct TensorCheck {
  std::string name;
  size_t numel = 0;
  ErrorStats stats;
};

struct ModelCheckOptions {
  int batch = 2, seq = 16;  // random tokens, (batch, seq)
  size_t samples = 24;      // entries checked per tensor (half uniform, half among nonzero)
  // Step and floor, measured on widths 8..64 (tools' gradcheck, seeds 1..6): h = 3e-4 balances
  // the stencil's O(h⁴) truncation (large for small embeddings, which RMSNorm amplifies) against
  // round-off in the loss (~1e-14, divided by h); entries below atol/rtol = 1e-4 are judged
  // absolutely. Worst relative error seen: 1.1e-7.
  double h = 3e-4;
  double rtol = 1e-6, atol = 1e-10;
  uint64_t seed = 1;
  bool randomize_scales = true;  // γ ~ U(0.5, 1.5) instead of 1, so that γ ≠ 1 is exercised
};

// The batch a check used and the analytic gradient it checked (e.g. to compare the GPU with it).
struct ModelCheckBatch {
  std::vector<int32_t> tokens, targets;  // (batch, seq)
  std::vector<double> params, grads;     // the checked parameters and their analytic gradient
};

// Initialises the model from opts.seed, draws a batch, runs forward+backward once, and compares
// each sampled gradient entry with a finite difference of the loss. With `used`, also returns the
// batch, parameters and analytic gradient.
std::vector<TensorCheck> gradcheck_model(Transformer<double>& model, const ModelCheckOptions& opts,
                                         ModelCheckBatch* used = nullptr);

}  // namespace scalevec
