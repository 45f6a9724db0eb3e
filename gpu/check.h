// The GPU's gradient against the reference's, for `scalevec gradcheck --device cuda`: the GPU
// model (fp32 storage, matrix products in the given precision) on the parameters and batch of a
// finite-difference check, compared per tensor with the double-precision analytic gradient that
// the check verified.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "precision.h"
#include "ref/model/config.h"

namespace scalevec::gpu {

// One tensor: ‖gpu − ref‖ against ‖ref‖ + rms·sqrt(numel), rms over all of the model's
// gradients (the rule of tests/gpu/test_gpu.cpp: the rms term is the scale of the terms that a
// cancelling sum, such as a magnitude β's gradient, is made of).
struct GradCompare {
  std::string name;
  size_t numel = 0;
  double max_abs = 0;   // max |gpu − ref|
  double diff = 0;      // ‖gpu − ref‖
  double norm_rel = 0;  // ‖gpu − ref‖ / ‖ref‖
  double scale = 0;     // ‖ref‖ + rms·sqrt(numel)
  // The share of the threshold used at relative tolerance rtol (passes at <= 1).
  double share(double rtol) const { return diff / (rtol * scale); }
};

// params, grads: layout order (double); tokens, targets: (B, T). Returns one row per tensor and
// sets *loss_gpu to the GPU's loss.
std::vector<GradCompare> compare_with_reference(const ModelConfig& cfg, const std::vector<double>& params,
                                                const std::vector<double>& grads,
                                                const std::vector<int32_t>& tokens,
                                                const std::vector<int32_t>& targets, int B, int T,
                                                Precision precision, double* loss_gpu);

}  // namespace scalevec::gpu
