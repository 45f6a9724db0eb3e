// The grid of `scalevec ablate` as a unit of its own: arms (a name and `scalevec train` flags,
// resolved into the configs train would build), seeds, the grid file (DIR/grid.json) and the rule
// that makes a grid a comparison (every arm sees the same data and tokens). tools/cmd_ablate.cpp
// runs a grid; tests/tools/test_ablate_grid.cpp tests this part without running anything.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "ref/model/config.h"
#include "ref/train/config.h"

namespace scalevec {

// Named arms for `--arms a,b,c` (and `--arm NAME`, and a line NAME in --arms-file): the
// `scalevec train` flags that define each (tools/ablate_grid.cpp; to add a named arm, add a row).
extern const std::vector<std::pair<std::string, std::string>> kBuiltinArms;

// Flag strings: an arm's flags are one string, split into words as a POSIX shell would
// (whitespace separates words; '...' is literal; "..." keeps \" and \\ escapes; a backslash
// outside quotes escapes the next character). `where` names the string in errors.
std::vector<std::string> split_words(const std::string& s, const std::string& where);
std::string join_words(const std::vector<std::string>& words);  // each word shell_quote'd

struct ArmDef {
  std::string name, preset, common, flags;  // common: the flags every arm of the command shares
  ModelConfig model;
  TrainConfig train;  // its seed is replaced by each run's

  // What the arm trains, as JSON: the configs without the seed.
  nlohmann::json resolved() const {
    nlohmann::json t = train.to_json();
    t.erase("seed");
    return {{"model", model.to_json()}, {"train", t}};
  }
};

// Why a `scalevec train` flag cannot be among an arm's flags (or the common flags); "" if it can.
std::string refused_flag(const std::string& flag, bool common);
// Applies `scalevec train` flags to the configs exactly as `scalevec train` parses them; returns
// the names of the flags given. Error (naming `where`) on a refused or unknown flag.
std::vector<std::string> apply_train_flags(const std::string& flags, bool common,
                                           const std::string& where, ModelConfig& m,
                                           TrainConfig& t);
bool valid_arm_name(const std::string& s);
// The arm's configs in the order `scalevec train` builds them: the preset, the common flags, the
// arm's own flags, the settings a preset implies, validation.
ArmDef resolve_arm(const std::string& name, const std::string& preset, const std::string& common,
                   const std::string& flags);
// "NAME=FLAGS", or the NAME of a built-in arm.
std::pair<std::string, std::string> parse_arm_spec(const std::string& spec);
// Lines as for --arm; blank lines and '#' comments are skipped.
std::vector<std::string> read_arms_file(const std::string& path);
// "1,2,3", "1-5" or a mix ("1-3,7"); Error on anything else, a repeated seed or an empty list.
std::vector<uint64_t> parse_seeds(const std::string& s);

// An arm as grid.json keeps it.
struct StoredArm {
  std::string name, preset, common, flags;
  nlohmann::json resolved;  // what the arm resolved to when it was defined
};

// DIR/grid.json: the arms, seeds, baseline and the command lines that built the grid.
struct Grid {
  std::vector<StoredArm> arms;
  std::vector<uint64_t> seeds;
  std::string baseline;
  bool allow_different_tokens = false;
  std::vector<std::string> commands;
};

nlohmann::json read_json(const std::string& path);  // Error naming the file on bad input
Grid read_grid(const std::string& path);
void write_grid(const std::string& path, const Grid& g);
// "train.lr: grid.json 0.002, now 0.001; ..." over the fields both have ("" when equal).
std::string resolved_differences(const nlohmann::json& stored, const nlohmann::json& now);
// Every arm must see as many tokens as every other (and the same data): Error naming two that
// do not (unless the grid allows different token counts).
void check_comparable(const Grid& g);
std::string run_dir(const std::string& out, const std::string& arm, uint64_t seed);
// Adds the arms to the grid; an arm it already has must resolve to the same configs as before,
// or with `force` its runs (in out/runs/<arm>) are deleted and it is redefined.
void merge_arms(Grid& g, const std::vector<ArmDef>& defs, bool force, const std::string& out);

}  // namespace scalevec
