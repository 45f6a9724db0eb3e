#include "vector.h"

#include <fmt/ranges.h>

#include "../common.h"

namespace scalevec {

const char* scale_param_name(ScaleParam p) {
  switch (p) {
    case ScaleParam::None: return "none";
    case ScaleParam::Gamma: return "gamma";
    case ScaleParam::MagDir: return "magdir";
    case ScaleParam::MagDirNormalized: return "magdir-normalized";
  }
  return "?";
}

const std::vector<std::string>& scale_param_list() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (ScaleParam p : {ScaleParam::None, ScaleParam::Gamma, ScaleParam::MagDir, ScaleParam::MagDirNormalized})
      n.push_back(scale_param_name(p));
    return n;
  }();
  return names;
}

const char* scale_param_names() {
  static const std::string joined = fmt::format("{}", fmt::join(scale_param_list(), ", "));
  return joined.c_str();
}

ScaleParam parse_scale_param(const std::string& s) {
  for (ScaleParam p : {ScaleParam::None, ScaleParam::Gamma, ScaleParam::MagDir,
                       ScaleParam::MagDirNormalized})
    if (s == scale_param_name(p)) return p;
  throw Error(fmt::format("unknown scale parameterization '{}' (expected one of: {})", s,
                          scale_param_names()));
}

}  // namespace scalevec
