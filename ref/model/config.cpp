#include "config.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "../common.h"
#include "../json.h"

namespace scalevec {

const char* branch_name(Branch b) {
  switch (b) {
    case Branch::Q:
      return "q";
    case Branch::K:
      return "k";
    case Branch::V:
      return "v";
    case Branch::Gate:
      return "gate";
    case Branch::Up:
      return "up";
  }
  return "?";
}

std::vector<Branch> parse_branches(const std::string& s) {
  std::vector<Branch> out;
  if (s.empty() || s == "none") return out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = std::min(s.find(',', start), s.size());
    const std::string name = s.substr(start, comma - start);
    bool found = false;
    for (Branch b : kAllBranches)
      if (name == branch_name(b)) {
        require(std::find(out.begin(), out.end(), b) == out.end(),
                "branch '{}' listed twice in '{}'", name, s);
        out.push_back(b), found = true;
      }
    require(found,
            "unknown branch '{}' in '{}' (expected a comma-separated subset of q,k,v,gate,up)",
            name, s);
    start = comma + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string branches_to_string(const std::vector<Branch>& b) {
  if (b.empty()) return "none";
  std::string s;
  for (Branch x : b) {
    if (!s.empty()) s += ',';
    s += branch_name(x);
  }
  return s;
}

bool ScaleConfig::has(const std::vector<Branch>& set, Branch b) const {
  return std::find(set.begin(), set.end(), b) != set.end();
}

const std::vector<std::string>& model_preset_list() {
  static const std::vector<std::string> names{"tiny", "small", "gpt2"};
  return names;
}

const char* model_preset_names() {
  static const std::string joined = fmt::format("{}", fmt::join(model_preset_list(), ", "));
  return joined.c_str();
}

ModelConfig model_preset(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") {  // ~0.9M parameters
    c.n_layer = 4, c.d_model = 128, c.n_head = 4, c.d_ff = 384, c.context = 128;
  } else if (name == "small") {  // ~10.8M parameters
    c.n_layer = 6, c.d_model = 384, c.n_head = 6, c.d_ff = 1024, c.context = 256;
  } else if (name == "gpt2") {  // ~113M parameters, GPT-2-small-sized: for GPUs
    c.n_layer = 12, c.d_model = 768, c.n_head = 12, c.d_ff = 3072, c.context = 1024;
  } else {
    throw Error(
        fmt::format("unknown preset '{}' (expected one of: {})", name, model_preset_names()));
  }
  return c;
}

const std::vector<std::string>& scale_strategy_names() {
  static const std::vector<std::string> names = {
      "baseline", "none", "hg", "dp", "dnp", "magdir", "magdir-normalized", "unified"};
  return names;
}

// [snippet:scale_presets]
ScaleConfig scale_preset(const std::string& name) {
  using enum Branch;
  ScaleConfig s;  // baseline: one shared γ per norm site
  if (name == "baseline") return s;
  if (name == "none")
    s.param = ScaleParam::None;
  else if (name == "hg")
    s.hg = true;
  else if (name == "dp")
    s.dp = {Q, K, V, Gate, Up};
  else if (name == "dnp")
    s.dnp = {Q, K}, s.dp = {V, Gate, Up};
  else if (name == "magdir")
    s.param = ScaleParam::MagDir;
  else if (name == "magdir-normalized")
    s.param = ScaleParam::MagDirNormalized;
  else if (name == "unified") {
    s.hg = true, s.dnp = {Q, K}, s.dp = {V, Gate, Up};
    s.param = ScaleParam::MagDir, s.skip_cancelled_magnitude = true;
  } else
    throw Error(fmt::format("unknown scale strategy '{}' (expected one of: {})", name,
                            fmt::join(scale_strategy_names(), ", ")));
  return s;
}
// [end]

void ModelConfig::set_scale(const std::string& preset) {
  sc = scale_preset(preset);
  scale = preset;
}

std::string scale_preset_wd_policy(const std::string& name) {
  return name == "unified" ? "iwd" : "";
}

void ModelConfig::validate() const {
  auto in_range = [](const char* name, long v, long lo, long hi) {
    require(v >= lo && v <= hi, "{} = {} is out of range [{}, {}]", name, v, lo, hi);
  };
  require(vocab_size == 256, "vocab_size = {}: the byte-level tokenizer needs 256", vocab_size);
  in_range("layers", n_layer, 1, 256);
  in_range("d_model", d_model, 2, 16384);
  in_range("heads", n_head, 1, 256);
  require(d_model % n_head == 0, "d_model = {} is not divisible by heads = {}", d_model, n_head);
  require(head_size() % 2 == 0, "head size d_model/heads = {} must be even (RoPE rotates pairs)",
          head_size());
  in_range("d_ff", d_ff, 1, 65536);
  in_range("context", context, 2, 65536);
  require_float32("norm_eps", norm_eps);
  require_float32("rope_base", rope_base);
  require(norm_eps > 0 && norm_eps < 1, "norm_eps = {} must be in (0, 1)", norm_eps);
  require(rope_base > 1, "rope_base = {} must be > 1", rope_base);
  require(float(rope_base) > 1.0f,  // every RoPE frequency would be 1 in float32
          "rope_base = {} is not usable in float32: it is 1 there", rope_base);
  // Combinations that make no sense are refused rather than silently reinterpreted.
  const bool no_scales = sc.param == ScaleParam::None;
  require(!(no_scales && (sc.hg || !sc.dp.empty() || !sc.dnp.empty())),
          "scale parameterization 'none' has no scale vectors to place: drop --hg/--dp/--dnp or "
          "choose --scale-param gamma");
  for (Branch b : sc.dp)
    require(!sc.has(sc.dnp, b),
            "branch '{}' cannot have both DP and DNP (DNP already places a "
            "scale after its linear map)",
            branch_name(b));
  for (Branch b : {Branch::Q, Branch::K})
    require(!(sc.qk_norm && sc.has(sc.dnp, b)),
            "DNP on q/k already is a QK-Norm with a learnable scale: use either --qk-norm or --dnp "
            "with q,k, not both");
}

nlohmann::json ModelConfig::to_json() const {
  return {{"vocab_size", vocab_size},
          {"n_layer", n_layer},
          {"d_model", d_model},
          {"n_head", n_head},
          {"d_ff", d_ff},
          {"context", context},
          {"norm_eps", norm_eps},
          {"rope_base", rope_base},
          {"scale", scale},
          {"scale_param", scale_param_name(sc.param)},
          {"hg", sc.hg},
          {"dp", branches_to_string(sc.dp)},
          {"dnp", branches_to_string(sc.dnp)},
          {"qk_norm", sc.qk_norm},
          {"post_norm", sc.post_norm},
          {"skip_cancelled_magnitude", sc.skip_cancelled_magnitude}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  ModelConfig c;
  // Strict reads (ref/json.h): the type, the integer range, finiteness; validate() then checks
  // the values as it checks the flags.
  const int64_t big = std::numeric_limits<int>::max();
  try {
    c.vocab_size = (int)json_int(j, "vocab_size", 1, big);
    c.n_layer = (int)json_int(j, "n_layer", 1, big);
    c.d_model = (int)json_int(j, "d_model", 1, big);
    c.n_head = (int)json_int(j, "n_head", 1, big);
    c.d_ff = (int)json_int(j, "d_ff", 1, big);
    c.context = (int)json_int(j, "context", 1, big);
    c.norm_eps = json_double(j, "norm_eps");
    c.rope_base = json_double(j, "rope_base");
    c.scale = json_string(j, "scale");
    // Checkpoints written before the scale components existed only name baseline or none.
    if (j.contains("scale_param")) {
      c.sc.param = parse_scale_param(json_string(j, "scale_param"));
      c.sc.hg = json_bool(j, "hg");
      c.sc.dp = parse_branches(json_string(j, "dp"));
      c.sc.dnp = parse_branches(json_string(j, "dnp"));
      c.sc.qk_norm = json_bool(j, "qk_norm");
      c.sc.post_norm = json_bool(j, "post_norm");
      c.sc.skip_cancelled_magnitude = json_bool(j, "skip_cancelled_magnitude");
    } else {
      c.sc = scale_preset(c.scale);
    }
  } catch (const Error& e) {
    throw Error(fmt::format("bad model config: {}", e.what()));
  }
  c.validate();
  return c;
}

}  // namespace scalevec
