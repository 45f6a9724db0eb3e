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

#include "ablate_grid.h"
#include "ablate_report.h"
#include "commands.h"
#include "ref/common.h"
#include "ref/train/checkpoint.h"
#include "ref/train/trainer.h"

namespace scalevec {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// ------------------------------------------------------------------------------------------------
// Running.

// Training time summed over the invocations a run took (kept in timing.json while it is
// unfinished).
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
    if (j.is_object() && j.contains("val_loss"))
      val[j.at("step").get<int>()] = j.at("val_loss").get<double>();
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
  GridProgress(int runs, int64_t steps_left)
      : tty_(isatty(2)), runs_(runs), steps_left_(steps_left) {}

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
    fmt::print(
        stderr, "{}{} | step {}/{} | loss {:.4f}{} | grid ETA {}{}", tty_ ? "\r\033[K" : "", label_,
        r.step, steps_, r.loss, std::isnan(val_) ? "" : fmt::format(" | val {:.4f}", val_),
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
    require(std::any_of(g.arms.begin(), g.arms.end(),
                        [&](const StoredArm& a) { return a.name == r.arm; }),
            "'{}/results.csv' has runs of arm '{}', which '{}/grid.json' does not define", out,
            r.arm, out);
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
      require(std::none_of(g.arms.begin(), g.arms.end(),
                           [&](const StoredArm& x) { return x.name == arm.name; }),
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
    return std::find_if(g.arms.begin(), g.arms.end(),
                        [&](const StoredArm& x) { return x.name == name; });
  };
  require(find(g.baseline) != g.arms.end(), "--baseline '{}' is not an arm of the grid",
          g.baseline);
  if (!a.arms.empty()) {
    std::vector<StoredArm> chosen;
    std::stringstream ss(a.arms);
    for (std::string name; std::getline(ss, name, ',');) {
      require(find(name) != g.arms.end(), "--arms: '{}' is not an arm of the grid", name);
      chosen.push_back(*find(name));
    }
    if (std::none_of(chosen.begin(), chosen.end(),
                     [&](const StoredArm& x) { return x.name == g.baseline; }))
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
    require(!stored.arms.empty(),
            "no arms: name them with --arm NAME=FLAGS, --arms NAME,NAME or "
            "--arms-file FILE");
    require(!preset_given && common.empty(),
            "--preset and common flags apply to the arms given "
            "on the command line (--arm, --arms, --arms-file); the grid's arms keep their own");
    for (const auto& s : stored.arms)
      defs.push_back(resolve_arm(s.name, s.preset, s.common, s.flags));
    return defs;
  }
  for (const auto& spec : specs) {
    const auto [name, flags] = parse_arm_spec(spec);
    for (const auto& d : defs) require(d.name != name, "arm '{}' is given twice", name);
    defs.push_back(resolve_arm(name, a.preset, common, flags));
  }
  return defs;
}

// What this command runs: its arms × seeds, and the grid (grid.json) they belong to.
struct Plan {
  Grid grid;
  std::vector<ArmDef> arms;
  std::vector<uint64_t> seeds;
};

// Reads the grid (if any), adds this command's arms and seeds, checks that the arms are comparable
// and writes grid.json back.
Plan define_grid(const Args& a, const std::vector<std::string>& argv, bool preset_given,
                 bool seeds_given) {
  const std::string grid_path = a.out + "/grid.json";
  Plan p;
  Grid& g = p.grid;
  if (fs::exists(grid_path)) g = read_grid(grid_path);
  p.arms = requested_arms(a, g, preset_given);
  merge_arms(g, p.arms, a.force, a.out);
  p.seeds = seeds_given        ? parse_seeds(a.seeds)
            : !g.seeds.empty() ? g.seeds
                               : std::vector<uint64_t>{1, 2, 3};
  for (uint64_t s : p.seeds)
    if (std::find(g.seeds.begin(), g.seeds.end(), s) == g.seeds.end()) g.seeds.push_back(s);
  g.allow_different_tokens = g.allow_different_tokens || a.allow_different_tokens;
  check_comparable(g);

  auto has_arm = [&](const std::string& name) {
    return std::any_of(g.arms.begin(), g.arms.end(),
                       [&](const StoredArm& s) { return s.name == name; });
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
  t.seconds += res.seconds, t.step_seconds += res.step_seconds,
      t.steps += (int64_t)res.steps.size();
  if (!res.finished) {
    write_file_atomically(
        dir + "/timing.json",
        json{{"seconds", t.seconds}, {"step_seconds", t.step_seconds}, {"steps", t.steps}}.dump() +
            "\n");
    progress.line(fmt::format("interrupted: {} at step {} (checkpoint saved)", progress.label(),
                              res.last_step));
    return false;
  }
  RunResult r = finished_run(arm, seed, dir, t);
  r.device = trained_on;
  write_file_atomically(dir + "/result.json", r.to_json().dump(1) + "\n");
  fs::remove(dir + "/timing.json");
  progress.line(fmt::format("{}: val loss {:.4f} after {} steps ({}, {:.3g} ms/step)",
                            progress.label(), r.final_val_loss, r.steps, format_duration(r.seconds),
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
  fmt::print(stderr,
             "scalevec ablate: {} arms × {} seeds = {} runs in {}, baseline '{}', {} threads\n",
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
    const bool finished = !interrupt_flag()->load() && train_run(arm, runs[i].seed, runs[i].dir,
                                                                 data.at(key), a.device, progress);
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
  fmt::print(stderr,
             "grid done: {0}/summary.md, {0}/results.csv, {0}/curves.svg, {0}/delta.svg, "
             "{0}/paired.svg\n",
             a.out);
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
  cmd->add_option("--arms", a->arms,
                  "built-in arms by name, comma-separated (e.g. baseline,none,iwd)");
  cmd->add_option("--arms-file", a->arms_file,
                  "a file of arms, one per line as for --arm ('#' starts a comment)");
  cmd->add_option("--seeds", a->seeds,
                  "seeds, run for every arm: 1,2,3 or 1-5 [default: the grid's; "
                  "for a new grid 1,2,3]");
  cmd->add_option("--preset", a->preset, "model and training preset the arms start from")
      ->check(CLI::IsMember(model_preset_list()))
      ->capture_default_str();
  cmd->add_option("--baseline", a->baseline,
                  "the arm the others are compared with [default: the "
                  "arm named baseline, else the first]");
  cmd->add_option("--common", a->common,
                  "train flags every arm shares, as one quoted string "
                  "(or after --); the arm's own flags override them");
  cmd->add_option("train-flags", a->common_words,
                  "train flags every arm shares, after -- (e.g. -- "
                  "--steps 300 --eval-every 50 --data FILE)");
  cmd->add_flag("--allow-different-tokens", a->allow_different_tokens,
                "allow arms that differ in --steps, --batch or --context");
  cmd->add_flag("--force", a->force,
                "redefine arms whose flags changed since grid.json, deleting "
                "their runs");
  cmd->add_option("--threads", a->threads, threads_help())->check(thread_count());
  add_device_options(cmd, a->device);
  cmd->add_option("--stop-after-runs", a->stop_after_runs,
                  "stop (resumably) after training this many runs")
      ->check(at_least(1));
  CLI::Option* report = cmd->add_flag(
      "--report-only", a->report_only,
      "train nothing: redraw the reports of the grid in --out from its runs' result.json files, or "
      "from its results.csv and curves.csv alone (how the grids in docs/replication are kept), and "
      "print the summary");
  cmd->add_option("--report-to", a->report_to,
                  "--report-only: write the reports here instead of --out")
      ->needs(report);
  cmd->add_option("--merge", a->merge,
                  "--report-only: also report the arms and runs of this grid (repeatable); its "
                  "seeds pair with the same seeds of --out")
      ->needs(report);
  std::string builtin;
  for (const auto& [name, flags] : kBuiltinArms)
    builtin +=
        fmt::format("\n  {:<18} {}", name, flags.empty() ? "(no flags: the preset as is)" : flags);
  cmd->footer(
      "An arm is a name and a set of `scalevec train` flags; every arm runs once per seed, in this "
      "process, one run after another. Finished runs are skipped and interrupted ones resume from "
      "their checkpoint: after Ctrl-C, or to add arms or seeds, run the command again (or just "
      "`scalevec ablate --out DIR`). After every run, DIR gets results.csv (one row per run), "
      "summary.md (per arm: final validation loss mean ± std over seeds, the paired difference to "
      "the baseline arm, time per step and its overhead, where the runs trained), curves.svg "
      "(validation loss curves, mean and min..max band over seeds; the points in curves.csv), "
      "delta.svg (each arm minus the baseline, seed by seed) and paired.svg (the final "
      "differences, a "
      "dot per seed). Runs live in DIR/runs/<arm>/seed<k>/; the grid's definition in "
      "DIR/grid.json.\n\n"
      "Built-in arms:" +
      builtin +
      "\n\nArm flags are parsed exactly as `scalevec train` parses them; --seed, --out, --resume, "
      "--preset, --threads, --device and --precision are ablate's own, and --data may only be a "
      "common flag. Every run sees the same tokens: arms that change --steps, --batch or --context "
      "are refused. An arm of an "
      "existing grid must keep its definition (or --force). Unless given, --ckpt-every is "
      "--eval-every, so a killed grid loses little.\n\nExamples:\n"
      "  scalevec ablate --out abl --arms baseline,none,iwd --seeds 1-3 -- --steps 300 "
      "--eval-every 50\n"
      "  scalevec ablate --out abl --arm baseline= --arm \"lowlr=--lr 1e-3\" --common \"--steps "
      "300\"\n"
      "  scalevec ablate --out abl          (continue the grid, e.g. after Ctrl-C)\n"
      "  scalevec ablate --out docs/replication/tiny-adamw --report-only --report-to /tmp/r\n"
      "  scalevec ablate --out docs/replication/tiny-adamw --merge docs/replication/tiny-qknorm "
      "--report-only --report-to /tmp/r --baseline qk --arms qk,dnp,unified");
  return [=]() -> int {
    if (a->report_only) {
      for (const char* o :
           {"--arm", "--arms-file", "--seeds", "--preset", "--common", "train-flags", "--force",
            "--allow-different-tokens", "--stop-after-runs"})
        require(cmd->get_option(o)->count() == 0,
                "--report-only trains nothing: {} does not apply "
                "(--arms chooses the arms shown, --baseline the arm they are compared with)",
                o);
      return report_only(*a);
    }
    set_num_threads(a->threads);
    a->device.validate();
    BusyMachineCheck busy(a->device, num_threads());
    fs::create_directories(a->out);
    const RunLock lock(a->out);  // one ablate per grid directory (each run locks its own too)
    const Plan plan = define_grid(*a, argv, cmd->get_option("--preset")->count() > 0,
                                  cmd->get_option("--seeds")->count() > 0);
    busy.report();
    return run_grid(*a, plan);
  };
}

}  // namespace scalevec
