// scalevec ablate: a grid of arms × seeds in which every run sees the same number of tokens.
// An arm is a name and a set of `scalevec train` flags; each arm runs once per seed, paired by seed
// (same seed, same data order). Finished runs are skipped and interrupted ones resume from their
// checkpoint, so a grid can be stopped (Ctrl-C) and continued at any time. After every finished
// run the reports are rewritten (see ablate_report.h).
//
//   DIR/grid.json              the grid: arms (flags and what they resolve to), seeds, baseline,
//                              the command lines that built it
//   DIR/runs/<arm>/seed<k>/    a normal `scalevec train` run directory, plus result.json when done
//   DIR/results.csv, DIR/curves.csv, DIR/summary.md, DIR/curves.svg, DIR/delta.svg, DIR/paired.svg
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "ablate_report.h"
#include "commands.h"
#include "ref/common.h"
#include "ref/train/checkpoint.h"
#include "ref/train/trainer.h"

namespace scalevec {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Named arms for `--arms a,b,c` (and `--arm NAME`, and a line NAME in --arms-file): the
// `scalevec train` flags that define each. To add a named arm, add a row.
static const std::vector<std::pair<std::string, std::string>> kBuiltinArms = {
    {"baseline", ""},            // one shared γ per norm site (Llama): what the others are compared with
    {"none", "--scale none"},    // no scale vectors at all (docs/SCALE_VECTORS.md §1)
    {"iwd", "--wd-policy iwd"},  // weight decay on Input-type scale vectors only (the paper's rule)
    {"hg", "--scale hg"},        // branch-specific γ for q, k, v and gate, up
    {"dp", "--scale dp"},        // dual placement u ⊙ W(γ ⊙ n) on q, k, v, gate, up
    {"dnp", "--scale dnp"},      // DNP on q, k; DP on v, gate, up
    {"magdir", "--scale magdir"},  // γ = β α for every scale vector
    {"magdir-normalized", "--scale magdir-normalized"},  // γ = β α / rms(α)
    {"unified", "--scale unified"},  // hg + dnp + magdir, with --wd-policy iwd
    // The Output-Norm study (docs/SCALE_VECTORS.md §3): a QK-Norm model, decay on no gain, on the
    // Input-type gains only, or on every gain including the Output-type QK-Norm γ.
    {"qk", "--qk-norm"},
    {"qk-iwd", "--qk-norm --wd-policy iwd"},
    {"qk-all", "--qk-norm --wd-policy all"},
};

namespace {

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

struct ArmDef {
  std::string name, preset, common, flags;  // common: the flags every arm of the command shares
  ModelConfig model;
  TrainConfig train;  // its seed is replaced by each run's

  // What the arm trains, as JSON: the configs without the seed.
  json resolved() const {
    json t = train.to_json();
    t.erase("seed");
    return {{"model", model.to_json()}, {"train", t}};
  }
};

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
                                           const std::string& where, ModelConfig& m, TrainConfig& t) {
  std::vector<std::string> words = split_words(flags, where);
  for (const auto& w : words) {
    if (w.rfind("--", 0) != 0) continue;
    const std::string flag = w.substr(0, w.find('='));
    const std::string why = refused_flag(flag, common);
    require(why.empty(), "{}: {} is not allowed here: {}", where, flag, why);
  }
  CLI::App app;
  app.set_help_flag();  // "--help" among the flags is an unknown flag, not a request for help
  app.allow_extras();   // collected, to be named in the order given (CLI11's own message reverses it)
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
  require(valid_arm_name(name), "arm name '{}' is not valid: use letters, digits, '-', '_', '.' "
          "(it names a directory)", name);
  ArmDef a{name, preset, common, flags, model_preset(preset), train_preset(preset)};
  std::vector<std::string> given = apply_train_flags(common, true, "common flags", a.model, a.train);
  for (const auto& g : apply_train_flags(flags, false, fmt::format("arm '{}'", name), a.model, a.train))
    given.push_back(g);
  apply_implied_settings(a.model, a.train, given);  // as `scalevec train` does (unified: iwd)
  // An absolute data path keeps meaning the same file when the grid is continued from elsewhere.
  if (!a.train.data.empty()) a.train.data = fs::absolute(a.train.data).lexically_normal().string();
  // A checkpoint now and then, so that a killed grid loses little (Ctrl-C saves one anyway).
  if (std::find(given.begin(), given.end(), "--ckpt-every") == given.end())
    a.train.ckpt_every = a.train.eval_every > 0 ? a.train.eval_every : std::max(1, a.train.steps / 10);
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
  auto number = [&](const std::string& w) -> uint64_t {
    require(!w.empty() && w.size() <= 18 && w.find_first_not_of("0123456789") == std::string::npos,
            "--seeds '{}': '{}' is not a seed (expected seeds like 1,2,3 or 1-5)", s, w);
    return std::stoull(w);
  };
  std::vector<uint64_t> seeds;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');) {
    const size_t dash = part.find('-');
    const uint64_t lo = number(part.substr(0, dash));
    const uint64_t hi = dash == std::string::npos ? lo : number(part.substr(dash + 1));
    require(lo <= hi && hi - lo < 1000, "--seeds '{}': '{}' is not a range like 1-5", s, part);
    for (uint64_t k = lo; k <= hi; k++) {
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

struct StoredArm {
  std::string name, preset, common, flags;
  json resolved;  // what the arm resolved to when it was defined
};

struct Grid {
  std::vector<StoredArm> arms;
  std::vector<uint64_t> seeds;
  std::string baseline;
  bool allow_different_tokens = false;
  std::vector<std::string> commands;
};

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
      g.arms.push_back({a.at("name"), a.at("preset"), a.at("common"), a.at("flags"), a.at("resolved")});
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
    arms.push_back({{"name", a.name}, {"preset", a.preset}, {"common", a.common},
                    {"flags", a.flags}, {"resolved", a.resolved}});
  const json j = {{"format", "scalevec-ablate"}, {"version", 1}, {"arms", arms},
                  {"seeds", g.seeds}, {"baseline", g.baseline},
                  {"allow_different_tokens", g.allow_different_tokens}, {"commands", g.commands}};
  write_file_atomically(path, j.dump(2) + "\n");
}

// "train.lr: grid.json 0.002, now 0.001; ..." over the fields both have. A field that grid.json
// lacks was added to the code after the grid was made, so it is not a difference.
std::string resolved_differences(const json& stored, const json& now) {
  std::vector<std::string> diffs;
  for (const char* part : {"model", "train"})
    for (const auto& [k, v] : now.at(part).items())
      if (stored.at(part).contains(k) && stored.at(part).at(k) != v)
        diffs.push_back(fmt::format("{}.{}: grid.json {}, now {}", part, k, stored.at(part).at(k).dump(), v.dump()));
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
    const std::string da = a.resolved.at("train").at("data"), db = b.resolved.at("train").at("data");
    require(da == db, "arms '{}' and '{}' train on different data ('{}' vs '{}'): give --data once, "
            "as a common flag", a.name, b.name, da, db);
    require(g.allow_different_tokens || shape(a) == shape(b),
            "arms '{}' and '{}' would see different numbers of tokens ({} vs {}): a comparison "
            "needs the same --steps, --batch and --context (or pass --allow-different-tokens)",
            a.name, b.name, shape(a), shape(b));
  }
}

std::string run_dir(const std::string& out, const std::string& arm, uint64_t seed) {
  return fmt::format("{}/runs/{}/seed{}", out, arm, seed);
}

// ------------------------------------------------------------------------------------------------
// Running.

// Training time summed over the invocations a run took (kept in timing.json while it is unfinished).
struct Timing {
  double seconds = 0, step_seconds = 0;
  int64_t steps = 0;  // optimizer steps timed
};

Timing read_timing(const std::string& dir) {
  Timing t;
  const std::string path = dir + "/timing.json";
  if (!fs::exists(path)) return t;
  const json j = read_json(path);
  t.seconds = j.value("seconds", 0.0), t.step_seconds = j.value("step_seconds", 0.0);
  t.steps = j.value("steps", int64_t(0));
  return t;
}

// The validation curve in a run's metrics.jsonl. A run resumed after a hard kill repeats the steps
// after its last checkpoint, so a later record of a step replaces an earlier one (they are equal:
// training is deterministic); a line cut short by the kill is skipped.
std::vector<std::pair<int, double>> read_val_curve(const std::string& path) {
  std::ifstream f(path);
  require(f.good(), "cannot read '{}'", path);
  std::map<int, double> val;
  for (std::string line; std::getline(f, line);) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("val_loss")) val[j.at("step").get<int>()] = j.at("val_loss").get<double>();
  }
  return {val.begin(), val.end()};
}

RunResult finished_run(const ArmDef& arm, uint64_t seed, const std::string& dir, const Timing& t) {
  RunResult r;
  r.arm = arm.name, r.seed = seed, r.steps = arm.train.steps;
  r.tokens = int64_t(arm.train.steps) * arm.train.batch * arm.model.context;
  r.seconds = t.seconds;
  r.sec_per_step = t.steps > 0 ? t.step_seconds / double(t.steps) : 0;
  r.val = read_val_curve(dir + "/metrics.jsonl");
  require(!r.val.empty() && r.val.back().first == r.steps,
          "'{}/metrics.jsonl' lacks the validation loss of the last step {}", dir, r.steps);
  r.final_val_loss = r.val.back().second;
  return r;
}

// One progress line for the whole grid: "run 5/24 dnp seed 2 | step 300/1000 | loss 1.2345 |
// val 1.4567 | grid ETA 1h02m". In place on a terminal, else every 10% of a run. The ETA is the
// grid's steps still to run times the mean wall-clock per step so far (evaluation included).
class GridProgress {
 public:
  GridProgress(int runs, int64_t steps_left) : tty_(isatty(2)), runs_(runs), steps_left_(steps_left) {}

  void start(int index, const std::string& arm, uint64_t seed, int steps) {
    label_ = fmt::format("run {}/{} {} seed {}", index, runs_, arm, seed);
    steps_ = steps, first_ = true, val_ = NAN;
    if (steps_here_ == 0) t0_ = std::chrono::steady_clock::now();
  }
  void step(const StepRecord& r) {
    if (first_) steps_left_ -= r.step - 1, first_ = false;  // a resumed run starts past step 1
    steps_left_--, steps_here_++;
    const int every = std::max(1, steps_ / 10);
    if (!tty_ && r.step % every != 0 && r.step != steps_) return;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    fmt::print(stderr, "{}{} | step {}/{} | loss {:.4f}{} | grid ETA {}{}", tty_ ? "\r\033[K" : "",
               label_, r.step, steps_, r.loss, std::isnan(val_) ? "" : fmt::format(" | val {:.4f}", val_),
               format_duration(elapsed / double(steps_here_) * double(steps_left_)), tty_ ? "" : "\n");
  }
  void val(double v) { val_ = v; }
  void line(const std::string& s) const { fmt::print(stderr, "{}{}\n", tty_ ? "\r\033[K" : "", s); }
  const std::string& label() const { return label_; }

 private:
  bool tty_;
  int runs_, steps_ = 0;
  int64_t steps_left_, steps_here_ = 0;
  bool first_ = true;
  double val_ = NAN;
  std::string label_;
  std::chrono::steady_clock::time_point t0_;
};

// The finished runs of a grid: each run's result.json; for a grid whose run directories were not
// kept (the replication grids in docs/), the rows of its results.csv and the curves of its
// curves.csv (if it has one).
std::vector<RunResult> stored_runs(const std::string& out, const Grid& g) {
  std::vector<RunResult> runs;
  for (const auto& a : g.arms)
    for (uint64_t seed : g.seeds) {
      const std::string path = run_dir(out, a.name, seed) + "/result.json";
      if (fs::exists(path)) runs.push_back(RunResult::from_json(read_json(path), path));
    }
  if (!runs.empty() || !fs::exists(out + "/results.csv") || fs::exists(out + "/runs")) return runs;
  runs = read_results_csv(out + "/results.csv");
  if (fs::exists(out + "/curves.csv")) read_curves_csv(out + "/curves.csv", runs);
  for (const auto& r : runs)
    require(std::any_of(g.arms.begin(), g.arms.end(), [&](const StoredArm& a) { return a.name == r.arm; }),
            "'{}/results.csv' has runs of arm '{}', which '{}/grid.json' does not define", out, r.arm, out);
  return runs;
}

GridReport grid_report(const std::string& dir, const std::string& name, const Grid& g,
                       std::vector<RunResult> runs) {
  GridReport r;
  r.dir = dir, r.name = name, r.seeds = g.seeds, r.baseline = g.baseline, r.commands = g.commands;
  for (const auto& a : g.arms) r.arms.push_back({a.name, a.flags, a.preset, a.common});
  r.runs = std::move(runs);
  return r;
}

std::string write_grid_reports(const std::string& out, const Grid& g) {
  return write_reports(grid_report(out, out, g, stored_runs(out, g)));
}

struct Args {
  std::string out, arms, arms_file, seeds, preset = "tiny", baseline, common, report_to;
  DeviceChoice device;
  std::vector<std::string> arm, common_words, merge;
  bool allow_different_tokens = false, force = false, report_only = false;
  int threads = 0, stop_after_runs = 0;
};

// --report-only: the reports of the grid in --out redrawn from what it holds, trains nothing.
// --merge adds the arms and runs of other grids (same seeds pair across grids: the same seed gives
// the same initial weights and batches whatever the arm), --arms chooses and orders the arms
// shown, --baseline the arm they are compared with; the reports go to --report-to (default --out)
// and the summary to standard output.
int report_only(const Args& a) {
  Grid g = read_grid(a.out + "/grid.json");
  std::vector<RunResult> runs = stored_runs(a.out, g);
  for (const auto& dir : a.merge) {
    const Grid h = read_grid(dir + "/grid.json");
    for (const auto& arm : h.arms) {
      require(std::none_of(g.arms.begin(), g.arms.end(), [&](const StoredArm& x) { return x.name == arm.name; }),
              "--merge {}: arm '{}' is also an arm of {}", dir, arm.name, a.out);
      g.arms.push_back(arm);
    }
    for (uint64_t s : h.seeds)
      if (std::find(g.seeds.begin(), g.seeds.end(), s) == g.seeds.end()) g.seeds.push_back(s);
    g.commands.insert(g.commands.end(), h.commands.begin(), h.commands.end());
    g.allow_different_tokens = g.allow_different_tokens || h.allow_different_tokens;
    for (auto& r : stored_runs(dir, h)) runs.push_back(std::move(r));
  }
  check_comparable(g);  // merged grids too: the same data and tokens, or no comparison
  if (!a.baseline.empty()) g.baseline = a.baseline;
  auto find = [&](const std::string& name) {
    return std::find_if(g.arms.begin(), g.arms.end(), [&](const StoredArm& x) { return x.name == name; });
  };
  require(find(g.baseline) != g.arms.end(), "--baseline '{}' is not an arm of the grid", g.baseline);
  if (!a.arms.empty()) {
    std::vector<StoredArm> chosen;
    std::stringstream ss(a.arms);
    for (std::string name; std::getline(ss, name, ',');) {
      require(find(name) != g.arms.end(), "--arms: '{}' is not an arm of the grid", name);
      chosen.push_back(*find(name));
    }
    if (std::none_of(chosen.begin(), chosen.end(), [&](const StoredArm& x) { return x.name == g.baseline; }))
      chosen.insert(chosen.begin(), *find(g.baseline));  // the Δ column needs it
    g.arms = chosen;
  }
  std::sort(g.seeds.begin(), g.seeds.end());
  const std::string dir = a.report_to.empty() ? a.out : a.report_to;
  fs::create_directories(dir);
  std::string name = a.out;
  for (const auto& m : a.merge) name += " + " + m;
  fmt::print("{}", write_reports(grid_report(dir, name, g, runs)));
  return 0;
}

// The arms this command names, resolved; or, when it names none, the grid's own arms again.
std::vector<ArmDef> requested_arms(const Args& a, const Grid& stored, bool preset_given) {
  std::vector<std::string> specs;
  if (!a.arms.empty()) {
    std::stringstream ss(a.arms);
    for (std::string name; std::getline(ss, name, ',');) specs.push_back(name);
  }
  if (!a.arms_file.empty())
    for (const auto& s : read_arms_file(a.arms_file)) specs.push_back(s);
  specs.insert(specs.end(), a.arm.begin(), a.arm.end());
  std::string common = a.common;
  if (!a.common.empty() && !a.common_words.empty()) common += ' ';
  common += join_words(a.common_words);

  std::vector<ArmDef> defs;
  if (specs.empty()) {
    require(!stored.arms.empty(), "no arms: name them with --arm NAME=FLAGS, --arms NAME,NAME or "
            "--arms-file FILE");
    require(!preset_given && common.empty(), "--preset and common flags apply to the arms given "
            "on the command line (--arm, --arms, --arms-file); the grid's arms keep their own");
    for (const auto& s : stored.arms) defs.push_back(resolve_arm(s.name, s.preset, s.common, s.flags));
    return defs;
  }
  for (const auto& spec : specs) {
    const auto [name, flags] = parse_arm_spec(spec);
    for (const auto& d : defs) require(d.name != name, "arm '{}' is given twice", name);
    defs.push_back(resolve_arm(name, a.preset, common, flags));
  }
  return defs;
}

// Adds the requested arms to the grid. An arm it already has must resolve to the same configs as
// before: its runs were trained with those. With --force, a changed arm's runs are deleted instead.
void merge_arms(Grid& g, const std::vector<ArmDef>& defs, bool force, const std::string& out) {
  for (const auto& d : defs) {
    auto it = std::find_if(g.arms.begin(), g.arms.end(), [&](const StoredArm& s) { return s.name == d.name; });
    const StoredArm now{d.name, d.preset, d.common, d.flags, d.resolved()};
    if (it == g.arms.end()) {
      g.arms.push_back(now);
      continue;
    }
    const std::string diff = resolved_differences(it->resolved, now.resolved);
    if (diff.empty()) continue;
    require(force, "arm '{}' is defined differently than in {}/grid.json ({}): give it another "
            "name, or pass --force to delete its runs and redefine it", d.name, out, diff);
    fs::remove_all(fmt::format("{}/runs/{}", out, d.name));
    fmt::print(stderr, "arm '{}' redefined (--force): its earlier runs are deleted\n", d.name);
    *it = now;
  }
}

// What this command runs: its arms × seeds, and the grid (grid.json) they belong to.
struct Plan {
  Grid grid;
  std::vector<ArmDef> arms;
  std::vector<uint64_t> seeds;
};

// Reads the grid (if any), adds this command's arms and seeds, checks that the arms are comparable
// and writes grid.json back.
Plan define_grid(const Args& a, const std::vector<std::string>& argv, bool preset_given, bool seeds_given) {
  const std::string grid_path = a.out + "/grid.json";
  Plan p;
  Grid& g = p.grid;
  if (fs::exists(grid_path)) g = read_grid(grid_path);
  p.arms = requested_arms(a, g, preset_given);
  merge_arms(g, p.arms, a.force, a.out);
  p.seeds = seeds_given ? parse_seeds(a.seeds) : !g.seeds.empty() ? g.seeds : std::vector<uint64_t>{1, 2, 3};
  for (uint64_t s : p.seeds)
    if (std::find(g.seeds.begin(), g.seeds.end(), s) == g.seeds.end()) g.seeds.push_back(s);
  g.allow_different_tokens = g.allow_different_tokens || a.allow_different_tokens;
  check_comparable(g);

  auto has_arm = [&](const std::string& name) {
    return std::any_of(g.arms.begin(), g.arms.end(), [&](const StoredArm& s) { return s.name == name; });
  };
  if (!a.baseline.empty()) g.baseline = a.baseline;
  if (g.baseline.empty()) g.baseline = has_arm("baseline") ? "baseline" : g.arms.front().name;
  require(has_arm(g.baseline), "--baseline '{}' is not an arm of the grid", g.baseline);
  const std::string command = join_words(argv);
  if (g.commands.empty() || g.commands.back() != command) g.commands.push_back(command);
  fs::create_directories(a.out);
  write_grid(grid_path, g);
  return p;
}

// Trains (or resumes) one run; true when it finished, false when it was interrupted (Ctrl-C).
// A finished run gets result.json; an interrupted one keeps its training time in timing.json.
bool train_run(const ArmDef& arm, uint64_t seed, const std::string& dir, const TextData& data,
               const DeviceChoice& device, GridProgress& progress) {
  const bool resume = fs::exists(model_path(dir)) && fs::exists(state_path(dir));
  if (resume) progress.line(progress.label() + ": resuming from its checkpoint");
  TrainConfig tcfg = arm.train;
  tcfg.seed = seed;
  TrainOptions opts;
  opts.out_dir = dir, opts.resume = resume, opts.progress = false, opts.sample.length = 0;
  opts.interrupt = interrupt_flag();
  opts.on_step = [&](const StepRecord& r) { progress.step(r); };
  opts.on_val = [&](int, double v) { progress.val(v); };
  std::string trained_on;  // the engine's name, for result.json
  const EngineFactory make = make_engine(device, tcfg);
  opts.engine = [&](Transformer<float>& m, Optimizer<float>& o) {
    auto e = make(m, o);
    trained_on = e->name();
    return e;
  };
  const TrainResult res = train(arm.model, tcfg, data, opts);

  Timing t = read_timing(dir);
  t.seconds += res.seconds, t.step_seconds += res.step_seconds, t.steps += (int64_t)res.steps.size();
  if (!res.finished) {
    write_file_atomically(dir + "/timing.json", json{{"seconds", t.seconds},
        {"step_seconds", t.step_seconds}, {"steps", t.steps}}.dump() + "\n");
    progress.line(fmt::format("interrupted: {} at step {} (checkpoint saved)", progress.label(),
                              res.last_step));
    return false;
  }
  RunResult r = finished_run(arm, seed, dir, t);
  r.device = trained_on;
  write_file_atomically(dir + "/result.json", r.to_json().dump(1) + "\n");
  fs::remove(dir + "/timing.json");
  progress.line(fmt::format("{}: val loss {:.4f} after {} steps ({}, {:.3g} ms/step)", progress.label(),
                            r.final_val_loss, r.steps, format_duration(r.seconds),
                            r.sec_per_step * 1e3));
  return true;
}

// Runs the plan's runs one after another (skipping finished ones), rewriting the reports after
// each. Returns the exit code: 0, or 130 when interrupted.
int run_grid(const Args& a, const Plan& p) {
  struct Run {
    const ArmDef* arm;
    uint64_t seed;
    std::string dir;
  };
  // Seed by seed, every arm within a seed: each finished round adds a complete set of pairs to
  // the reports, and a slow drift of the machine's speed is spread evenly over the arms.
  std::vector<Run> runs;
  int64_t steps_left = 0;
  for (uint64_t seed : p.seeds)
    for (const auto& arm : p.arms) {
      runs.push_back({&arm, seed, run_dir(a.out, arm.name, seed)});
      if (!fs::exists(runs.back().dir + "/result.json")) steps_left += arm.train.steps;
    }
  fmt::print(stderr, "scalevec ablate: {} arms × {} seeds = {} runs in {}, baseline '{}', {} threads\n",
             p.arms.size(), p.seeds.size(), runs.size(), a.out, p.grid.baseline, num_threads());
  write_grid_reports(a.out, p.grid);  // the grid may have changed (arms, seeds, baseline)

  const std::string resume_hint = "scalevec ablate --out " + shell_quote(a.out);
  std::map<std::pair<std::string, int>, TextData> data;  // loaded once per (file, context)
  GridProgress progress((int)runs.size(), steps_left);
  install_interrupt_handler();
  int trained = 0;
  for (size_t i = 0; i < runs.size(); i++) {
    const ArmDef& arm = *runs[i].arm;
    progress.start((int)i + 1, arm.name, runs[i].seed, arm.train.steps);
    if (fs::exists(runs[i].dir + "/result.json")) {
      progress.line(progress.label() + ": finished earlier, skipped");
      continue;
    }
    const auto key = std::pair{arm.train.data, arm.model.context};
    if (!data.count(key)) data.emplace(key, load_data(key.first, key.second));
    const bool finished = !interrupt_flag()->load() && train_run(arm, runs[i].seed, runs[i].dir, data.at(key), a.device, progress);
    write_grid_reports(a.out, p.grid);
    if (!finished) {
      progress.line("interrupted; resume with: " + resume_hint);
      return 130;
    }
    if (a.stop_after_runs > 0 && ++trained >= a.stop_after_runs && i + 1 < runs.size()) {
      progress.line(fmt::format("stopped after {} runs (--stop-after-runs); continue with: {}",
                                trained, resume_hint));
      return 0;
    }
  }
  fmt::print("{}", write_grid_reports(a.out, p.grid));
  fmt::print(stderr, "grid done: {0}/summary.md, {0}/results.csv, {0}/curves.svg, {0}/delta.svg, "
             "{0}/paired.svg\n", a.out);
  return 0;
}

}  // namespace

Action add_ablate(CLI::App& app, std::vector<std::string> argv) {
  CLI::App* cmd = app.add_subcommand(
      "ablate",
      "Run a grid of arms (train flags) × seeds at the same token count and compare the arms with "
      "a baseline arm: summary.md, results.csv, curves.csv, curves.svg, delta.svg, paired.svg");
  auto a = std::make_shared<Args>();
  cmd->add_option("--out", a->out, "the grid's directory")->required();
  cmd->add_option("--arm", a->arm,
                  "an arm: NAME=FLAGS with its train flags as one quoted string (--arm "
                  "\"lowlr=--lr 1e-3\"; --arm plain= for no flags), or a built-in NAME; repeatable")
      ->allow_extra_args(false);
  cmd->add_option("--arms", a->arms, "built-in arms by name, comma-separated (e.g. baseline,none,iwd)");
  cmd->add_option("--arms-file", a->arms_file,
                  "a file of arms, one per line as for --arm ('#' starts a comment)");
  cmd->add_option("--seeds", a->seeds, "seeds, run for every arm: 1,2,3 or 1-5 [default: the grid's; "
                  "for a new grid 1,2,3]");
  cmd->add_option("--preset", a->preset, "model and training preset the arms start from")
      ->check(CLI::IsMember(model_preset_list()))
      ->capture_default_str();
  cmd->add_option("--baseline", a->baseline, "the arm the others are compared with [default: the "
                  "arm named baseline, else the first]");
  cmd->add_option("--common", a->common, "train flags every arm shares, as one quoted string "
                  "(or after --); the arm's own flags override them");
  cmd->add_option("train-flags", a->common_words, "train flags every arm shares, after -- (e.g. -- "
                  "--steps 300 --eval-every 50 --data FILE)");
  cmd->add_flag("--allow-different-tokens", a->allow_different_tokens,
                "allow arms that differ in --steps, --batch or --context");
  cmd->add_flag("--force", a->force, "redefine arms whose flags changed since grid.json, deleting "
                "their runs");
  cmd->add_option("--threads", a->threads, "CPU threads (0 = OpenMP default)")->check(at_least(0));
  add_device_options(cmd, a->device);
  cmd->add_option("--stop-after-runs", a->stop_after_runs,
                  "stop (resumably) after training this many runs")->check(at_least(1));
  CLI::Option* report = cmd->add_flag(
      "--report-only", a->report_only,
      "train nothing: redraw the reports of the grid in --out from its runs' result.json files, or "
      "from its results.csv and curves.csv alone (how the grids in docs/replication are kept), and "
      "print the summary");
  cmd->add_option("--report-to", a->report_to, "--report-only: write the reports here instead of --out")
      ->needs(report);
  cmd->add_option("--merge", a->merge,
                  "--report-only: also report the arms and runs of this grid (repeatable); its "
                  "seeds pair with the same seeds of --out")
      ->needs(report);
  std::string builtin;
  for (const auto& [name, flags] : kBuiltinArms)
    builtin += fmt::format("\n  {:<18} {}", name, flags.empty() ? "(no flags: the preset as is)" : flags);
  cmd->footer(
      "An arm is a name and a set of `scalevec train` flags; every arm runs once per seed, in this "
      "process, one run after another. Finished runs are skipped and interrupted ones resume from "
      "their checkpoint: after Ctrl-C, or to add arms or seeds, run the command again (or just "
      "`scalevec ablate --out DIR`). After every run, DIR gets results.csv (one row per run), "
      "summary.md (per arm: final validation loss mean ± std over seeds, the paired difference to "
      "the baseline arm, time per step and its overhead, where the runs trained), curves.svg "
      "(validation loss curves, mean and min..max band over seeds; the points in curves.csv), "
      "delta.svg (each arm minus the baseline, seed by seed) and paired.svg (the final differences, a "
      "dot per seed). Runs live in DIR/runs/<arm>/seed<k>/; the grid's definition in "
      "DIR/grid.json.\n\n"
      "Built-in arms:" + builtin +
      "\n\nArm flags are parsed exactly as `scalevec train` parses them; --seed, --out, --resume, "
      "--preset, --threads, --device and --precision are ablate's own, and --data may only be a "
      "common flag. Every run sees the same tokens: arms that change --steps, --batch or --context are refused. An arm of an "
      "existing grid must keep its definition (or --force). Unless given, --ckpt-every is "
      "--eval-every, so a killed grid loses little.\n\nExamples:\n"
      "  scalevec ablate --out abl --arms baseline,none,iwd --seeds 1-3 -- --steps 300 --eval-every 50\n"
      "  scalevec ablate --out abl --arm baseline= --arm \"lowlr=--lr 1e-3\" --common \"--steps 300\"\n"
      "  scalevec ablate --out abl          (continue the grid, e.g. after Ctrl-C)\n"
      "  scalevec ablate --out docs/replication/tiny-adamw --report-only --report-to /tmp/r\n"
      "  scalevec ablate --out docs/replication/tiny-adamw --merge docs/replication/tiny-qknorm "
      "--report-only --report-to /tmp/r --baseline qk --arms qk,dnp,unified");
  return [=]() -> int {
    if (a->report_only) {
      for (const char* o : {"--arm", "--arms-file", "--seeds", "--preset", "--common", "train-flags",
                            "--force", "--allow-different-tokens", "--stop-after-runs"})
        require(cmd->get_option(o)->count() == 0, "--report-only trains nothing: {} does not apply "
                "(--arms chooses the arms shown, --baseline the arm they are compared with)", o);
      return report_only(*a);
    }
    set_num_threads(a->threads);
    a->device.validate();
    const Plan plan = define_grid(*a, argv, cmd->get_option("--preset")->count() > 0,
                                  cmd->get_option("--seeds")->count() > 0);
    return run_grid(*a, plan);
  };
}

}  // namespace scalevec
