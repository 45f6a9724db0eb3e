// Folding a scale vector into an adjacent linear map (docs/SCALE_VECTORS.md §3, finding 1).
//
// W (γ ⊙ n) = (W diag(γ)) n: an input-side γ can be multiplied into the columns of the linear maps
// it feeds; u ⊙ (W a) = (diag(u) W) a: an output-side u into the rows of its own map. After the
// fold the scale is set to 1 and the model computes the same function: such a scale is
// Input-type (its role is optimization only). A scale that restores a magnitude a normalization
// has just removed has no such map: folding it into the map before the normalization changes the
// function (the normalization divides the factor away). That is the Output type.
#pragma once

#include <string>
#include <vector>

#include "vector.h"

namespace scalevec {

// A linear map W (rows x cols, row-major at `offset`) and the side a scale multiplies into.
struct FoldTarget {
  size_t offset = 0;
  int rows = 0, cols = 0;
  bool columns = true;  // true: W ← W diag(γ) (γ has cols entries); false: W ← diag(γ) W
};

// One scale vector of a model, where it sits, and what folding it means.
template <class T>
struct ScaleSite {
  std::string name;  // the scale's parameter prefix, e.g. "layers.0.attn_norm"
  ScaleType type = ScaleType::Input;
  ScaleVector<T>* scale = nullptr;
  std::vector<FoldTarget> targets;  // Input: exact fold; Output: the fold that must fail
};

// [snippet:fold_scale]
// Multiplies the scale's current γ into every target and sets the scale to 1.
template <class T>
void fold_scale(ScaleSite<T>& site, T* params) {
  const T* g = site.scale->forward(params);
  for (const FoldTarget& t : site.targets)
    for (int r = 0; r < t.rows; r++)
      for (int c = 0; c < t.cols; c++)
        params[t.offset + (size_t)r * t.cols + c] *= g[t.columns ? c : r];
  site.scale->set_identity(params);
}
// [end]

}  // namespace scalevec
