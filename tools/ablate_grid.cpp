#include "ablate_grid.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "ablate_report.h"
#include "commands.h"
#include "ref/common.h"

namespace scalevec {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Named arms for `--arms a,b,c` (and `--arm NAME`, and a line NAME in --arms-file): the
// `scalevec train` flags that define each. To add a named arm, add a row.
const std::vector<std::pair<std::string, std::string>> kBuiltinArms = {
    {"baseline", ""},  // one shared γ per norm site (Llama): what the others are compared with
    {"none", "--scale none"},    // no scale vectors at all (docs/SCALE_VECTORS.md §1)
    {"iwd", "--wd-policy iwd"},  // weight decay on Input-type scale vectors only (the paper's rule)
    {"hg", "--scale hg"},        // branch-specific γ for q, k, v and gate, up
    {"dp", "--scale dp"},        // dual placement u ⊙ W(γ ⊙ n) on q, k, v, gate, up
    {"dnp", "--scale dnp"},      // DNP on q, k; DP on v, gate, up
    {"magdir", "--scale magdir"},                        // γ = β α for every scale vector
    {"magdir-normalized", "--scale magdir-normalized"},  // γ = β α / rms(α)
    {"unified", "--scale unified"},                      // hg + dnp + magdir, with --wd-policy iwd
    // The Output-Norm study (docs/SCALE_VECTORS.md §3): a QK-Norm model, decay on no gain, on the
    // Input-type gains only, or on every gain including the Output-type QK-Norm γ.
    {"qk", "--qk-norm"},
    {"qk-iwd", "--qk-norm --wd-policy iwd"},
    {"qk-all", "--qk-norm --wd-policy all"},
};

// ------------------------------------------------------------------------------------------------
// Flag strings: an arm's flags are one string, split into words as a POSIX shell would.

// Whitespace separates words; '...' is literal; "..." keeps \" and \\ escapes; a backslash outside
// quotes escapes the next character.
std::vector<std::string> split_words(const std::string& s, const std::string& where) {
  std::vector<std::string> words;
  std::string w;
  bool in_word = false;
  for (size_t i = 0; i < s.size(); i++) {
    const char c = s[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(w), w.clear(), in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\'') {
      const size_t end = s.find('\'', i + 1);
      require(end != std::string::npos, "{}: unterminated ' in '{}'", where, s);
      w += s.substr(i + 1, end - i - 1), i = end;
    } else if (c == '"') {
      for (i++; i < s.size() && s[i] != '"'; i++) {
        if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == '"' || s[i + 1] == '\\')) i++;
        w += s[i];
      }
      require(i < s.size(), "{}: unterminated \" in '{}'", where, s);
    } else if (c == '\\' && i + 1 < s.size()) {
      w += s[++i];
    } else {
      w += c;
    }
  }
  if (in_word) words.push_back(w);
  return words;
}

std::string join_words(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) {
    if (!s.empty()) s += ' ';
    s += shell_quote(w);
  }
  return s;
}

// ------------------------------------------------------------------------------------------------
// Arms: a name and flags, resolved into the configs `scalevec train` would build from them.

// Why a `scalevec train` flag cannot be among an arm's flags (or the common flags); "" if it can.
std::string refused_flag(const std::string& flag, bool common) {
  if (flag == "--seed") return "ablate runs every arm with each seed of --seeds";
  if (flag == "--data" && !common)
    return "all arms train on the same data: give --data once, as a common flag (after --)";
  if (flag == "--out" || flag == "--resume" || flag == "--force" || flag == "--stop-at")
    return "ablate chooses each run's directory and resumes runs itself";
  if (flag == "--preset" || flag == "--threads" || flag == "--device" || flag == "--precision")
    return "it is an option of ablate itself";
  return "";
}

// Applies `scalevec train` flags to the configs through the FlagSets the train command registers,
// so every train flag means the same here. Returns the names of the flags given.
std::vector<std::string> apply_train_flags(const std::string& flags, bool common,
                                           const std::string& where, ModelConfig& m,
                                           TrainConfig& t) {
  std::vector<std::string> words = split_words(flags, where);
  for (const auto& w : words) {
    if (w.rfind("--", 0) != 0) continue;
    const std::string flag = w.substr(0, w.find('='));
    const std::string why = refused_flag(flag, common);
    require(why.empty(), "{}: {} is not allowed here: {}", where, flag, why);
  }
  CLI::App app;
  app.set_help_flag();  // "--help" among the flags is an unknown flag, not a request for help
  app.allow_extras();   // collected, to be named in the order given (CLI11's own message reverses
                        // it)
  const FlagSet<ModelConfig> mf = model_flags(app);
  const FlagSet<TrainConfig> tf = train_flags(app);
  std::reverse(words.begin(), words.end());  // CLI11 takes a vector of arguments from its back
  try {
    app.parse(words);
  } catch (const CLI::ParseError& e) {
    throw Error(fmt::format("{}: {} (in '{}')", where, e.what(), flags));
  }
  require(app.remaining().empty(), "{}: not a `scalevec train` flag: {} (in '{}')", where,
          fmt::join(app.remaining(), " "), flags);
  mf.apply(m), tf.apply(t);
  std::vector<std::string> given = mf.given();
  for (const auto& g : tf.given()) given.push_back(g);
  return given;
}

bool valid_arm_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.' || s[0] == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
  });
}

// Builds the arm's configs in the order `scalevec train` does: the preset, then the flags (the
// arm's own after the common ones, so they win), then validation.
ArmDef resolve_arm(const std::string& name, const std::string& preset, const std::string& common,
                   const std::string& flags) {
  require(valid_arm_name(name),
          "arm name '{}' is not valid: use letters, digits, '-', '_', '.' "
          "(it names a directory)",
          name);
  ArmDef a{name, preset, common, flags, model_preset(preset), train_preset(preset)};
  std::vector<std::string> given =
      apply_train_flags(common, true, "common flags", a.model, a.train);
  for (const auto& g :
       apply_train_flags(flags, false, fmt::format("arm '{}'", name), a.model, a.train))
    given.push_back(g);
  apply_implied_settings(a.model, a.train, given);  // as `scalevec train` does (unified: iwd)
  // An absolute data path keeps meaning the same file when the grid is continued from elsewhere.
  if (!a.train.data.empty()) a.train.data = fs::absolute(a.train.data).lexically_normal().string();
  // A checkpoint now and then, so that a killed grid loses little (Ctrl-C saves one anyway).
  if (std::find(given.begin(), given.end(), "--ckpt-every") == given.end())
    a.train.ckpt_every =
        a.train.eval_every > 0 ? a.train.eval_every : std::max(1, a.train.steps / 10);
  try {
    a.model.validate();
    a.train.validate();
  } catch (const Error& e) {
    throw Error(fmt::format("arm '{}': {}", name, e.what()));
  }
  return a;
}

// "NAME=FLAGS", or the NAME of a built-in arm.
std::pair<std::string, std::string> parse_arm_spec(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq != std::string::npos) return {spec.substr(0, eq), spec.substr(eq + 1)};
  for (const auto& [name, flags] : kBuiltinArms)
    if (name == spec) return {name, flags};
  std::vector<std::string> names;
  for (const auto& b : kBuiltinArms) names.push_back(b.first);
  throw Error(fmt::format("arm '{}' is neither NAME=FLAGS nor a built-in arm ({})", spec,
                          fmt::join(names, ", ")));
}

// Lines as for --arm; blank lines and '#' comments are skipped.
std::vector<std::string> read_arms_file(const std::string& path) {
  std::ifstream f(path);
  require(f.good(), "cannot read arms file '{}'", path);
  std::vector<std::string> specs;
  for (std::string line; std::getline(f, line);) {
    if (const size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    const size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
    if (b != std::string::npos) specs.push_back(line.substr(b, e - b + 1));
  }
  return specs;
}

// "1,2,3", "1-5" or a mix ("1-3,7").
std::vector<uint64_t> parse_seeds(const std::string& s) {
  auto number = [&](const std::string& w) -> uint64_t {  // the rule of every --seed (flags.h)
    uint64_t v = 0;
    require(seed_error(w).empty() && parse_whole(w, v),
            "--seeds '{}': '{}' is not a seed (expected seeds like 1,2,3 or 1-5; a seed is a whole "
            "number in [0, 2^64 - 1])",
            s, w);
    return v;
  };
  std::vector<uint64_t> seeds;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');) {
    const size_t dash = part.find('-');
    const uint64_t lo = number(part.substr(0, dash));
    const uint64_t hi = dash == std::string::npos ? lo : number(part.substr(dash + 1));
    require(lo <= hi && hi - lo < 1000, "--seeds '{}': '{}' is not a range like 1-5", s, part);
    for (uint64_t i = 0; i <= hi - lo; i++) {  // not k <= hi: hi may be 2^64 - 1
      const uint64_t k = lo + i;
      require(std::find(seeds.begin(), seeds.end(), k) == seeds.end(),
              "--seeds '{}': seed {} is listed twice", s, k);
      seeds.push_back(k);
    }
  }
  require(!seeds.empty(), "--seeds '{}': no seeds", s);
  return seeds;
}

// ------------------------------------------------------------------------------------------------
// The grid file.

json read_json(const std::string& path) {
  std::ifstream f(path);
  require(f.good(), "cannot read '{}'", path);
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not valid JSON: {}", path, e.what()));
  }
}

Grid read_grid(const std::string& path) {
  const json j = read_json(path);
  Grid g;
  try {
    require(j.at("format") == "scalevec-ablate" && j.at("version") == 1,
            "'{}' is not a scalevec ablate grid (version 1)", path);
    for (const auto& a : j.at("arms"))
      g.arms.push_back(
          {a.at("name"), a.at("preset"), a.at("common"), a.at("flags"), a.at("resolved")});
    g.seeds = j.at("seeds").get<std::vector<uint64_t>>();
    g.baseline = j.at("baseline");
    g.allow_different_tokens = j.at("allow_different_tokens");
    g.commands = j.at("commands").get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not a valid grid file: {}", path, e.what()));
  }
  return g;
}

void write_grid(const std::string& path, const Grid& g) {
  json arms = json::array();
  for (const auto& a : g.arms)
    arms.push_back({{"name", a.name},
                    {"preset", a.preset},
                    {"common", a.common},
                    {"flags", a.flags},
                    {"resolved", a.resolved}});
  const json j = {{"format", "scalevec-ablate"},
                  {"version", 1},
                  {"arms", arms},
                  {"seeds", g.seeds},
                  {"baseline", g.baseline},
                  {"allow_different_tokens", g.allow_different_tokens},
                  {"commands", g.commands}};
  write_file_atomically(path, j.dump(2) + "\n");
}

// "train.lr: grid.json 0.002, now 0.001; ..." over the fields both have. A field that grid.json
// lacks was added to the code after the grid was made, so it is not a difference.
std::string resolved_differences(const json& stored, const json& now) {
  std::vector<std::string> diffs;
  for (const char* part : {"model", "train"})
    for (const auto& [k, v] : now.at(part).items())
      if (stored.at(part).contains(k) && stored.at(part).at(k) != v)
        diffs.push_back(fmt::format("{}.{}: grid.json {}, now {}", part, k,
                                    stored.at(part).at(k).dump(), v.dump()));
  return fmt::format("{}", fmt::join(diffs, "; "));
}

// Every arm must see as many tokens as every other (and the same data), or the comparison says
// more about training length than about the arms.
void check_comparable(const Grid& g) {
  const StoredArm& a = g.arms.front();
  auto shape = [](const StoredArm& x) {
    const json &m = x.resolved.at("model"), &t = x.resolved.at("train");
    return fmt::format("{} steps × batch {} × context {}", t.at("steps").get<int>(),
                       t.at("batch").get<int>(), m.at("context").get<int>());
  };
  for (const StoredArm& b : g.arms) {
    const std::string da = a.resolved.at("train").at("data"),
                      db = b.resolved.at("train").at("data");
    require(da == db,
            "arms '{}' and '{}' train on different data ('{}' vs '{}'): give --data once, "
            "as a common flag",
            a.name, b.name, da, db);
    require(g.allow_different_tokens || shape(a) == shape(b),
            "arms '{}' and '{}' would see different numbers of tokens ({} vs {}): a comparison "
            "needs the same --steps, --batch and --context (or pass --allow-different-tokens)",
            a.name, b.name, shape(a), shape(b));
  }
}

std::string run_dir(const std::string& out, const std::string& arm, uint64_t seed) {
  return fmt::format("{}/runs/{}/seed{}", out, arm, seed);
}

// Adds the requested arms to the grid. An arm it already has must resolve to the same configs as
// before: its runs were trained with those. With --force, a changed arm's runs are deleted instead.
void merge_arms(Grid& g, const std::vector<ArmDef>& defs, bool force, const std::string& out) {
  for (const auto& d : defs) {
    auto it = std::find_if(g.arms.begin(), g.arms.end(),
                           [&](const StoredArm& s) { return s.name == d.name; });
    const StoredArm now{d.name, d.preset, d.common, d.flags, d.resolved()};
    if (it == g.arms.end()) {
      g.arms.push_back(now);
      continue;
    }
    const std::string diff = resolved_differences(it->resolved, now.resolved);
    if (diff.empty()) continue;
    require(force,
            "arm '{}' is defined differently than in {}/grid.json ({}): give it another "
            "name, or pass --force to delete its runs and redefine it",
            d.name, out, diff);
    fs::remove_all(fmt::format("{}/runs/{}", out, d.name));
    fmt::print(stderr, "arm '{}' redefined (--force): its earlier runs are deleted\n", d.name);
    *it = now;
  }
}

}  // namespace scalevec
