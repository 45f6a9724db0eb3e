// Command-line flags that override fields of a config struct (ModelConfig, TrainConfig).
//
// A flag changes its field only when it is given, so the base config can come from a preset or
// from a checkpoint, and a resumed run can tell exactly which fields the user asked to change.
#pragma once

#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace scalevec {

// Numeric checks with one-line messages ("--steps: must be >= 1, got 0").
inline CLI::Validator at_least(double lo) {
  return CLI::Validator(
      [lo](std::string& s) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(s, &used);
          if (used != s.size()) return fmt::format("'{}' is not a number", s);
        } catch (const std::exception&) {
          return fmt::format("'{}' is not a number", s);
        }
        return v >= lo ? std::string() : fmt::format("must be >= {}, got {}", lo, s);
      },
      fmt::format(">= {}", lo));
}
inline CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        try {
          size_t used = 0;
          const double v = std::stod(s, &used);
          if (used == s.size() && v > 0) return "";
        } catch (const std::exception&) {
        }
        return fmt::format("must be a number > 0, got '{}'", s);
      },
      "> 0");
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
    if constexpr (std::is_unsigned_v<V> && !std::is_same_v<V, bool>)  // "-1" would wrap around
      opt->check(at_least(0));
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
