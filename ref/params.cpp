#include "params.h"

#include "common.h"

namespace scalevec {

const char* role_name(Role r) {
  switch (r) {
    case Role::Embedding:
      return "embedding";
    case Role::Matrix:
      return "matrix";
    case Role::Head:
      return "head";
    case Role::Scale:
      return "scale";
  }
  return "?";
}

const char* scale_type_name(ScaleType t) { return t == ScaleType::Input ? "Input" : "Output"; }

size_t ParamLayout::add(ParamInfo p) {
  require(find(p.name) == nullptr, "duplicate parameter name '{}'", p.name);
  size_t n = 1;
  for (int s : p.shape) {
    require(s > 0, "parameter '{}' has a non-positive dimension {}", p.name, s);
    n *= (size_t)s;
  }
  p.numel = n;
  p.offset = total_;
  total_ += n;
  params_.push_back(std::move(p));
  return params_.back().offset;
}

const ParamInfo* ParamLayout::find(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

const ParamInfo& ParamLayout::get(const std::string& name) const {
  const ParamInfo* p = find(name);
  require(p != nullptr, "unknown parameter '{}'", name);
  return *p;
}

size_t ParamLayout::count_role(Role r) const {
  size_t n = 0;
  for (const auto& p : params_)
    if (p.role == r) n += p.numel;
  return n;
}

}  // namespace scalevec
