// Model configuration: the architecture of docs/SCALE_VECTORS.md §2 and the scale strategy of §4.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../scale/vector.h"

namespace scalevec {

// The linear branches fed by a normalization: q, k, v at the attention input, gate and up at the
// MLP input. Placements (DP, DNP) are chosen per branch.
enum class Branch { Q, K, V, Gate, Up };
inline constexpr Branch kAllBranches[] = {Branch::Q, Branch::K, Branch::V, Branch::Gate,
                                          Branch::Up};
const char* branch_name(Branch b);
// "q,k,v" -> {Q, K, V}; "" or "none" -> {}. Throws Error naming an unknown branch.
std::vector<Branch> parse_branches(const std::string& s);
std::string branches_to_string(const std::vector<Branch>& b);  // "q,k,v" or "none"

// Where the model's scale vectors are and how they are parameterized (docs/SCALE_VECTORS.md §4).
// Presets fill these fields; each field is also a flag of its own.
struct ScaleConfig {
  ScaleParam param = ScaleParam::Gamma;  // parameterization of every scale vector
  bool hg = false;          // HG: one γ per branch (q,k,v / gate,up) over one shared N(x)
  std::vector<Branch> dp;   // DP: y_f = u_f ⊙ (W_f a_f) on these branches
  std::vector<Branch> dnp;  // DNP: y_f = u_f ⊙ N(W_f a_f), per head for q and k
  bool qk_norm = false;     // architecture: QK-Norm, per-head RMSNorm + γ on q and k
  bool post_norm = false;   // architecture: γ ⊙ RMSNorm on each sublayer's output
  // Where a later normalization cancels a magnitude β (a scale whose every path passes a DNP,
  // QK-Norm or post-norm with only linear maps in between), use plain γ instead of magdir there
  // [choice; `unified` does this].
  bool skip_cancelled_magnitude = false;

  bool has(const std::vector<Branch>& set, Branch b) const;
  bool operator==(const ScaleConfig&) const = default;
};

struct ModelConfig {
  int vocab_size = 256;  // byte-level tokens
  int n_layer = 4;
  int d_model = 128;  // C
  int n_head = 4;     // NH; head size hs = C / NH (even, for RoPE)
  int d_ff = 384;     // F: SwiGLU hidden width
  int context = 128;  // maximum sequence length T
  double norm_eps = 1e-5;
  double rope_base = 10000.0;
  std::string scale = "baseline";  // name of the scale strategy preset (or "custom")
  ScaleConfig sc;                  // what the preset (and any component flags) selected

  int head_size() const { return d_model / n_head; }
  void set_scale(const std::string& preset);  // scale = preset, sc = scale_preset(preset)

  void validate() const;  // throws Error naming the offending field or combination
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);  // throws Error on missing/bad fields
  bool operator==(const ModelConfig&) const = default;
};

// Named architectures: "tiny" (laptop minutes) and "small".
ModelConfig model_preset(const std::string& name);
const char* model_preset_names();                     // "tiny, small, gpt2"
const std::vector<std::string>& model_preset_list();  // the same names, for flag checks

// Scale strategy presets (docs/SCALE_VECTORS.md §4):
//   baseline           one shared γ per norm site, init 1 (Llama)                     [paper]
//   none               no scale vectors at all (the ablation of §1)                   [paper]
//   hg                 branch-specific γ_q, γ_k, γ_v and γ_gate, γ_up                 [paper]
//   dp                 dual placement: u_f ⊙ W_f(γ ⊙ n) on q, k, v, gate, up         [paper; set:
//   choice] dnp                DNP on q, k (u ⊙ N_head(·)), DP on v, gate, up [choice] magdir γ = β
//   α for every scale vector                                 [paper] magdir-normalized  γ = β α /
//   rms(α) for every scale vector                       [choice] unified            hg + dnp +
//   magdir (+ iwd weight decay, a training setting)     [paper; forms: choice]
ScaleConfig scale_preset(const std::string& name);
const std::vector<std::string>& scale_strategy_names();
// The weight-decay policy a preset implies ("iwd" for unified, else "" = no opinion).
std::string scale_preset_wd_policy(const std::string& name);

}  // namespace scalevec
