// Strict reads of JSON fields (configs and checkpoint metadata): a field of the wrong type, a
// number out of range, a fraction where an integer belongs, a string of digits with anything
// after them, each throws Error naming the field, instead of nlohmann's silent conversions
// (get<int> of 4294967298 is 2; a double read from an integer field truncates).
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "common.h"

namespace scalevec {

inline const nlohmann::json& json_field(const nlohmann::json& j, const std::string& key) {
  require(j.is_object() && j.contains(key), "'{}' is missing", key);
  return j.at(key);
}

// An integer field in [lo, hi] (JSON integers only: 3.0 and "3" are refused).
inline int64_t json_int(const nlohmann::json& j, const std::string& key, int64_t lo, int64_t hi) {
  const nlohmann::json& v = json_field(j, key);
  require(v.is_number_integer(), "'{}' must be an integer, got {}", key, v.dump());
  require(!v.is_number_unsigned() || v.get<uint64_t>() <= (uint64_t)hi,
          "'{}' must be in [{}, {}], got {}", key, lo, hi, v.dump());
  const int64_t x = v.get<int64_t>();
  require(x >= lo && x <= hi, "'{}' must be in [{}, {}], got {}", key, lo, hi, v.dump());
  return x;
}

inline uint64_t json_uint64(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json& v = json_field(j, key);
  require(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0),
          "'{}' must be an unsigned 64-bit integer, got {}", key, v.dump());
  return v.get<uint64_t>();
}

// A finite number (an integer is accepted: 1 for 1.0).
inline double json_double(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json& v = json_field(j, key);
  require(v.is_number(), "'{}' must be a number, got {}", key, v.dump());
  const double x = v.get<double>();
  require(std::isfinite(x), "'{}' must be finite, got {}", key, v.dump());
  return x;
}

inline bool json_bool(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json& v = json_field(j, key);
  require(v.is_boolean(), "'{}' must be true or false, got {}", key, v.dump());
  return v.get<bool>();
}

inline std::string json_string(const nlohmann::json& j, const std::string& key) {
  const nlohmann::json& v = json_field(j, key);
  require(v.is_string(), "'{}' must be a string, got {}", key, v.dump());
  return v.get<std::string>();
}

// A decimal integer written as a string (safetensors metadata values are strings): digits only,
// an optional leading '-' where lo < 0, nothing before or after, in [lo, hi].
inline int64_t parse_int_strict(const std::string& s, const std::string& what, int64_t lo,
                                int64_t hi) {
  const bool neg = !s.empty() && s[0] == '-';
  bool digits = s.size() > (neg ? 1u : 0u) && s.size() <= 20;
  for (size_t i = neg ? 1 : 0; i < s.size(); i++) digits = digits && s[i] >= '0' && s[i] <= '9';
  require(digits && (!neg || lo < 0), "{} must be an integer in [{}, {}], got '{}'", what, lo, hi,
          s);
  errno = 0;
  const long long x = std::strtoll(s.c_str(), nullptr, 10);
  require(errno == 0 && x >= lo && x <= hi, "{} must be an integer in [{}, {}], got '{}'", what, lo,
          hi, s);
  return x;
}
inline uint64_t parse_uint64_strict(const std::string& s, const std::string& what) {
  bool digits = !s.empty() && s.size() <= 20;
  for (char c : s) digits = digits && c >= '0' && c <= '9';
  require(digits, "{} must be an unsigned 64-bit integer, got '{}'", what, s);
  errno = 0;
  const unsigned long long x = std::strtoull(s.c_str(), nullptr, 10);
  require(errno == 0, "{} must be an unsigned 64-bit integer, got '{}'", what, s);
  return x;
}

}  // namespace scalevec
