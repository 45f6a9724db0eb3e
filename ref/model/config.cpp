#include "config.h"

#include <cmath>

#include "../common.h"

namespace scalevec {

const char* model_preset_names() { return "tiny, small"; }
const char* scale_strategy_names() { return "baseline, none"; }

ModelConfig model_preset(const std::string& name) {
  ModelConfig c;
  if (name == "tiny") {  // ~0.9M parameters
    c.n_layer = 4, c.d_model = 128, c.n_head = 4, c.d_ff = 384, c.context = 128;
  } else if (name == "small") {  // ~10.8M parameters
    c.n_layer = 6, c.d_model = 384, c.n_head = 6, c.d_ff = 1024, c.context = 256;
  } else {
    throw Error(fmt::format("unknown preset '{}' (expected one of: {})", name, model_preset_names()));
  }
  return c;
}

ScaleParam ModelConfig::scale_param() const {
  if (scale == "baseline") return ScaleParam::Gamma;
  if (scale == "none") return ScaleParam::None;
  throw Error(fmt::format("unknown scale strategy '{}' (expected one of: {})", scale,
                          scale_strategy_names()));
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
  require(std::isfinite(norm_eps) && std::isfinite(rope_base), "norm_eps and rope_base must be finite");
  require(norm_eps > 0 && norm_eps < 1, "norm_eps = {} must be in (0, 1)", norm_eps);
  require(rope_base > 1, "rope_base = {} must be > 1", rope_base);
  (void)scale_param();  // throws on an unknown strategy
}

nlohmann::json ModelConfig::to_json() const {
  return {{"vocab_size", vocab_size}, {"n_layer", n_layer},   {"d_model", d_model},
          {"n_head", n_head},         {"d_ff", d_ff},         {"context", context},
          {"norm_eps", norm_eps},     {"rope_base", rope_base}, {"scale", scale}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  ModelConfig c;
  try {
    c.vocab_size = j.at("vocab_size").get<int>();
    c.n_layer = j.at("n_layer").get<int>();
    c.d_model = j.at("d_model").get<int>();
    c.n_head = j.at("n_head").get<int>();
    c.d_ff = j.at("d_ff").get<int>();
    c.context = j.at("context").get<int>();
    c.norm_eps = j.at("norm_eps").get<double>();
    c.rope_base = j.at("rope_base").get<double>();
    c.scale = j.at("scale").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("bad model config: {}", e.what()));
  }
  c.validate();
  return c;
}

}  // namespace scalevec
