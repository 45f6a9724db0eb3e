// Model configuration: the architecture of SCALE_VECTORS.md §2 and the scale strategy.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "../scale/vector.h"

namespace scalevec {

struct ModelConfig {
  int vocab_size = 256;  // byte-level tokens
  int n_layer = 4;
  int d_model = 128;     // C
  int n_head = 4;        // NH; head size hs = C / NH (even, for RoPE)
  int d_ff = 384;        // F: SwiGLU hidden width
  int context = 128;     // maximum sequence length T
  double norm_eps = 1e-5;
  double rope_base = 10000.0;
  // Scale strategy preset (SCALE_VECTORS.md §4):
  //   baseline  one shared γ per norm site (attention input, MLP input, final), init 1
  //   none      no scale vectors at all (γ ≡ 1): the ablation of SCALE_VECTORS.md §1
  std::string scale = "baseline";

  int head_size() const { return d_model / n_head; }
  ScaleParam scale_param() const;  // parameterization every γ uses under this strategy

  void validate() const;  // throws Error naming the offending field
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);  // throws Error on missing/bad fields
  bool operator==(const ModelConfig&) const = default;
};

// Named architectures: "tiny" (laptop minutes) and "small".
ModelConfig model_preset(const std::string& name);
const char* model_preset_names();  // "tiny, small"
const char* scale_strategy_names();  // "baseline, none"

}  // namespace scalevec
