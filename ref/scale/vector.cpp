#include "vector.h"

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

const char* scale_param_names() { return "none, gamma, magdir, magdir-normalized"; }

ScaleParam parse_scale_param(const std::string& s) {
  for (ScaleParam p : {ScaleParam::None, ScaleParam::Gamma, ScaleParam::MagDir,
                       ScaleParam::MagDirNormalized})
    if (s == scale_param_name(p)) return p;
  throw Error(fmt::format("unknown scale parameterization '{}' (expected one of: {})", s,
                          scale_param_names()));
}

}  // namespace scalevec
