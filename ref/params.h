// The parameter layout: every learnable tensor of a model is a named, tagged view into one
// contiguous buffer. Optimizers, checkpoints, CPU<->GPU copies and comparisons are then single
// loops over this table, and weight decay is chosen from the tags (data), never from a list of
// tensor indices (code).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace scalevec {

// What a tensor is, for the optimizer's parameter groups.
enum class Role {
  Embedding,  // token embedding rows (decay configurable)
  Matrix,     // hidden linear maps (always decay; Muon's domain in later optimizers)
  Head,       // output projection to the vocabulary (always decays)
  Scale,      // scale vectors: γ and their parts (decay decided by the wd policy and ScaleType)
};

// Scale vectors only (docs/SCALE_VECTORS.md §3): Input-type iff it can be folded exactly into an
// adjacent linear map (its role is optimization only); Output-type iff it restores a magnitude a
// normalization just removed (it carries expressivity). The module that places a scale derives
// this from what its output feeds; it is never set by hand per tensor.
enum class ScaleType { Input, Output };

const char* role_name(Role r);
const char* scale_type_name(ScaleType t);

struct ParamInfo {
  std::string name;        // e.g. "layers.0.attn.wq"
  std::vector<int> shape;  // row-major
  Role role = Role::Matrix;
  ScaleType scale_type = ScaleType::Input;  // meaningful for Role::Scale only
  double init_std = 0.0;                    // Normal(0, init_std) for matrices and embeddings
  double init_value = 1.0;                  // constant init for scale vectors
  std::string fold;   // scales: where an Input-type scale folds (e.g. "columns of attn.wq,
                      // attn.wk, attn.wv"); for an Output-type one, why it cannot
  std::string note;   // e.g. why this parameter's gradient is structurally zero
  size_t offset = 0;  // into the contiguous buffer (filled by ParamLayout::add)
  size_t numel = 0;
};

class ParamLayout {
 public:
  // Appends a tensor and returns its offset in the buffer. Names must be unique.
  size_t add(ParamInfo p);
  size_t total() const { return total_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  const ParamInfo& get(const std::string& name) const;   // throws Error if unknown
  const ParamInfo* find(const std::string& name) const;  // nullptr if unknown
  size_t count_role(Role r) const;                       // number of scalars with that role

 private:
  std::vector<ParamInfo> params_;
  size_t total_ = 0;
};

}  // namespace scalevec
