#include "vector.h"

#include <fmt/ranges.h>

#include "../common.h"

namespace scalevec {

std::string scale_param_help() {
  std::vector<std::string> parts;
  for (ScaleParam p : kScaleParams)
    parts.push_back(fmt::format("{} ({})", scale_param_name(p), scale_param_formula(p)));
  return fmt::format("{}", fmt::join(parts, ", "));
}

const std::vector<std::string>& scale_param_list() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (ScaleParam p : kScaleParams) n.push_back(scale_param_name(p));
    return n;
  }();
  return names;
}

const char* scale_param_names() {
  static const std::string joined = fmt::format("{}", fmt::join(scale_param_list(), ", "));
  return joined.c_str();
}

ScaleParam parse_scale_param(const std::string& s) {
  for (ScaleParam p : kScaleParams)
    if (s == scale_param_name(p)) return p;
  throw Error(fmt::format("unknown scale parameterization '{}' (expected one of: {})", s,
                          scale_param_names()));
}

}  // namespace scalevec
