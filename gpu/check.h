// The GPU's gradient against the reference's, for `scalevec gradcheck --device cuda`: the GPU
// model (fp32) on the parameters and batch of a finite-difference check, compared per tensor with
// the double-precision analytic gradient that the check verified.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ref/model/config.h"

namespace scalevec::gpu {

struct GradCompare {
  std::string name;
  size_t numel = 0;
  double max_abs = 0, max_rel = 0;  // max_rel: |gpu − ref| / (|ref| + rms(ref tensor))
};

// params, grads: layout order (double); tokens, targets: (B, T). Returns one row per tensor and
// sets *loss_gpu to the GPU's loss.
std::vector<GradCompare> compare_with_reference(const ModelConfig& cfg, const std::vector<double>& params,
                                                const std::vector<double>& grads,
                                                const std::vector<int32_t>& tokens,
                                                const std::vector<int32_t>& targets, int B, int T,
                                                double* loss_gpu);

}  // namespace scalevec::gpu
