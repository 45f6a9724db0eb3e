#include "vector.h"

#include "../common.h"

namespace scalevec {

const char* scale_param_name(ScaleParam p) {
  switch (p) {
    case ScaleParam::None: return "none";
    case ScaleParam::Gamma: return "gamma";
  }
  return "?";
}

ScaleParam parse_scale_param(const std::string& s) {
  if (s == "none") return ScaleParam::None;
  if (s == "gamma") return ScaleParam::Gamma;
  throw Error(fmt::format("unknown scale parameterization '{}' (expected none or gamma)", s));
}

}  // namespace scalevec
