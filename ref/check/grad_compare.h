// A float gradient (the CPU reference's or the GPU's: StepEngine::gradient) against the double
// gradient that a finite-difference check verified, tensor by tensor: `scalevec gradcheck`'s
// second part, on whichever device it names.
//
// One tensor passes when ‖got − ref‖ ≤ rtol · (‖ref‖ + rms · √numel), rms over all of the
// model's gradients: the rule of tests/gpu/test_gpu.cpp, whose rms term is the scale of the terms a
// cancelling sum (such as a magnitude β's gradient) is made of.
#pragma once

#include <string>
#include <vector>

#include "../params.h"

namespace scalevec {

struct GradCompare {
  std::string name;
  size_t numel = 0;
  double max_abs = 0;   // max |got − ref|
  double diff = 0;      // ‖got − ref‖
  double norm_rel = 0;  // ‖got − ref‖ / ‖ref‖
  double scale = 0;     // ‖ref‖ + rms·sqrt(numel)
  // The share of the threshold used at relative tolerance rtol (passes at <= 1).
  double share(double rtol) const { return diff / (rtol * scale); }
};

// ref, got: the whole gradient in layout order. One row per tensor of the layout.
std::vector<GradCompare> compare_gradients(const ParamLayout& layout,
                                           const std::vector<double>& ref,
                                           const std::vector<float>& got);

}  // namespace scalevec
