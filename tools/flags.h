// Command-line flags that override fields of a config struct (ModelConfig, TrainConfig).
//
// A flag changes its field only when it is given, so the base config can come from a preset or
// from a checkpoint, and a resumed run can tell exactly which fields the user asked to change.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace scalevec {

// ------------------------------------------------------------------------------------------------
// Values on the command line: one rule per kind of value, shared by every command that takes it.
// A number is the whole token, nothing before or after it: "3abc", " 3", "+3" and "0x10" are not
// numbers. Each check returns "" for a good value, else the reason in one line ("must be ..., got
// '...'"), which CLI11 prefixes with the flag ("--seed: must be ...").

// The token as a decimal integer of type I: digits, a '-' only where I is signed, in I's range
// (no wrap, no saturation).
template <class I>
bool parse_whole(const std::string& s, I& v) {
  const char* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, v);
  return ec == std::errc() && p == end;
}
// The token as a double: decimal or exponent notation, inf and nan included (the checks refuse
// them where they do not belong); a value beyond double's range is not parsed.
inline bool parse_number(const std::string& s, double& v) {
  const char* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, v);
  return ec == std::errc() && p == end;
}

// A whole number in [lo, hi].
template <class I>
std::string whole_number_error(const std::string& s, I lo, I hi) {
  I v{};
  if (parse_whole(s, v) && v >= lo && v <= hi) return "";
  return fmt::format("must be a whole number in [{}, {}], got '{}'", lo, hi, s);
}
template <class I>
CLI::Validator whole_number(I lo = std::numeric_limits<I>::min(),
                            I hi = std::numeric_limits<I>::max()) {
  return CLI::Validator([lo, hi](std::string& s) { return whole_number_error<I>(s, lo, hi); },
                        fmt::format("in [{}, {}]", lo, hi));
}

// A seed: any unsigned 64-bit value, in decimal. "-1" and 2^64 are refused, not wrapped or
// saturated to 2^64 - 1. (`ablate --seeds` reads each of its seeds by the same rule.)
inline std::string seed_error(const std::string& s) {
  return whole_number_error<uint64_t>(s, 0, std::numeric_limits<uint64_t>::max());
}
inline CLI::Validator seed() { return whole_number<uint64_t>(); }

// --threads: 0 (OpenMP's default, one per core) or 1 to 4 threads per logical CPU. More threads
// than CPUs only oversubscribe the cores, and a far oversubscribed OpenBLAS can stall (seen at 32
// threads under a memory limit); 4x leaves room to check on a small machine that results do not
// depend on the thread count.
inline int max_threads() {
  const unsigned cpus = std::thread::hardware_concurrency();  // 0: unknown
  return 4 * int(cpus > 0 ? std::min(cpus, 1024u) : 64u);
}
inline std::string thread_count_error(const std::string& s) {
  int v = 0;
  if (parse_whole(s, v) && v >= 0 && v <= max_threads()) return "";
  return fmt::format(
      "must be 0 (the OpenMP default) or a whole number in [1, {}] (4 per logical CPU: more "
      "threads only oversubscribe the cores), got '{}'",
      max_threads(), s);
}
inline CLI::Validator thread_count() {
  return CLI::Validator(thread_count_error, fmt::format("0 or 1 to {}", max_threads()));
}
// A comma-separated list of thread counts, each as thread_count() takes it (bench --threads 1,2).
inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = s.find(',', start);
    out.push_back(s.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}
inline std::string thread_counts_error(const std::string& s) {
  for (const std::string& item : split_commas(s))
    if (const std::string e = thread_count_error(item); !e.empty())
      return e + (s == item ? "" : fmt::format(" (in the list '{}')", s));
  return "";
}
inline CLI::Validator thread_counts() {
  return CLI::Validator(thread_counts_error, fmt::format("list of 0 or 1 to {}", max_threads()));
}
inline std::vector<int> parse_thread_counts(const std::string& s) {
  std::vector<int> out;
  for (const std::string& item : split_commas(s)) {
    int v = 0;
    if (const std::string e = thread_count_error(item); !e.empty() || !parse_whole(item, v))
      throw std::invalid_argument("--threads " + e);
    out.push_back(v);
  }
  return out;
}
// The help text of a --threads flag.
inline std::string threads_help(const std::string& what = "CPU threads") {
  return fmt::format(
      "{} (0 = OpenMP default, one per core; at most {} = 4 per logical CPU: more threads only "
      "oversubscribe the cores, and a far oversubscribed OpenBLAS can stall)",
      what, max_threads());
}

// A finite number > 0 (--peak-tflops, gradcheck's --h).
inline std::string finite_positive_error(const std::string& s) {
  double v = 0;
  if (parse_number(s, v) && std::isfinite(v) && v > 0) return "";
  return fmt::format("must be a finite number > 0, got '{}'", s);
}
inline CLI::Validator finite_positive() { return CLI::Validator(finite_positive_error, "> 0"); }

// A sampling temperature: finite, > 0 and a normal float32 (at least 2^-126 = 1.2e-38), so that
// logits / temperature stays finite in double for any float32 logits: a smaller one gives inf
// logits, NaN probabilities and NUL bytes instead of text.
inline std::string temperature_error(const std::string& s) {
  double v = 0;
  if (parse_number(s, v) && std::isfinite(v) && v >= double(std::numeric_limits<float>::min()) &&
      v <= double(std::numeric_limits<float>::max()))
    return "";
  return fmt::format(
      "must be a finite number > 0 (from 1.2e-38 to 3.4e38, the normal float32 range), got '{}'",
      s);
}
inline CLI::Validator temperature() { return CLI::Validator(temperature_error, "> 0, finite"); }

// Tolerances of a comparison. A relative one is in (0, 1): at 1 or more a result of all zeros
// passes against any reference (|0 - b| <= 1 * |b|), so the check proves nothing. An absolute one
// (a floor below which differences pass) is finite and >= 0: inf passes everything.
inline std::string relative_tolerance_error(const std::string& s) {
  double v = 0;
  if (parse_number(s, v) && v > 0 && v < 1) return "";
  return fmt::format(
      "must be a relative tolerance in (0, 1) (at 1 or more a result of all zeros passes), got "
      "'{}'",
      s);
}
inline CLI::Validator relative_tolerance() {
  return CLI::Validator(relative_tolerance_error, "in (0, 1)");
}
inline std::string absolute_tolerance_error(const std::string& s) {
  double v = 0;
  if (parse_number(s, v) && std::isfinite(v) && v >= 0) return "";
  return fmt::format("must be a finite absolute tolerance >= 0, got '{}'", s);
}
inline CLI::Validator absolute_tolerance() {
  return CLI::Validator(absolute_tolerance_error, ">= 0, finite");
}

// A finite number >= lo (counts: --length, --batch, --stop-at, ...; a fraction or an out-of-range
// integer is then refused by the conversion to the flag's integer type).
inline CLI::Validator at_least(double lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        double v = 0;
        if (!parse_number(s, v) || std::isnan(v)) return fmt::format("'{}' is not a number", s);
        return std::isfinite(v) && v >= lo ? std::string()
                                           : fmt::format("must be >= {}, got {}", lo, s);
      },
      fmt::format(">= {}", lo));
}

template <class Cfg>
class FlagSet {
 public:
  // `show_defaults` lists the field's value in each preset config, e.g. "[tiny: 4, small: 6]".
  explicit FlagSet(std::vector<std::pair<std::string, Cfg>> show_defaults = {})
      : presets_(std::move(show_defaults)) {}

  template <class V>
  CLI::Option* add(CLI::App& app, const std::string& name, V Cfg::*field, const std::string& help,
                   bool show_defaults = true) {
    auto value = std::make_shared<V>();
    const std::string text = help + (show_defaults ? defaults(field) : "");
    CLI::Option* opt;
    if constexpr (std::is_same_v<V, bool>)
      opt = app.add_flag(name, *value, text);
    else
      opt = app.add_option(name, *value, text);
    // Integers are whole tokens in the field's range ("-1" would wrap around an unsigned field,
    // 2^32 + 1 an int); seeds are the uint64_t fields, so seed() is this check for them.
    if constexpr (std::is_integral_v<V> && !std::is_same_v<V, bool>) opt->check(whole_number<V>());
    setters_.push_back([=](Cfg& c) {
      if (opt->count() > 0) c.*field = *value;
    });
    options_.push_back(opt);
    return opt;
  }

  // A flag whose value goes through `set` (for fields that need parsing or touch several fields).
  // A bool flag is declared with CLI11's negation syntax, e.g. "--hg,!--no-hg".
  template <class V>
  CLI::Option* add_custom(CLI::App& app, const std::string& name, const std::string& help,
                          std::function<void(Cfg&, const V&)> set) {
    auto value = std::make_shared<V>();
    CLI::Option* opt;
    if constexpr (std::is_same_v<V, bool>)
      opt = app.add_flag(name, *value, help);
    else
      opt = app.add_option(name, *value, help);
    setters_.push_back([=](Cfg& c) {
      if (opt->count() > 0) set(c, *value);
    });
    options_.push_back(opt);
    return opt;
  }

  void apply(Cfg& c) const {
    for (const auto& s : setters_) s(c);
  }
  // The flags the user gave, by name (e.g. to reject them where they cannot apply).
  std::vector<std::string> given() const {
    std::vector<std::string> out;
    for (auto* o : options_)
      if (o->count() > 0) out.push_back(o->get_name());
    return out;
  }

 private:
  template <class V>
  std::string defaults(V Cfg::*field) const {
    if (presets_.empty()) return "";
    std::string s = " [";
    for (size_t i = 0; i < presets_.size(); i++)
      s += fmt::format("{}{}: {}", i ? ", " : "", presets_[i].first, presets_[i].second.*field);
    return s + "]";
  }
  std::vector<std::pair<std::string, Cfg>> presets_;
  std::vector<std::function<void(Cfg&)>> setters_;
  std::vector<CLI::Option*> options_;
};

}  // namespace scalevec
