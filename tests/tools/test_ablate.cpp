// `scalevec ablate`, driven as a user would: the built binary runs micro grids (a one-layer model
// of width 32 on a small generated text, one thread) and the tests read what it writes.
//
// What they prove: a grid writes one result per run and the CSV, summary and plot; the summary's
// paired differences are the ones recomputed here from results.csv; running the grid again trains
// nothing; a grid stopped between runs and interrupted inside a run (SIGINT) ends with
// bit-identical results to an uninterrupted one; bad arms and arms with different token counts get
// a one-line error.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace {

using namespace cli;

// ------------------------------------------------------------------------------------------------
// Reading a grid's outputs.

struct CsvRow {
  std::string arm;
  uint64_t seed;
  double final_val_loss;
  int steps;
  long long tokens;
};

// results.csv keyed by (arm, seed); the test's arms have no commas or quotes in their flags.
std::map<std::pair<std::string, uint64_t>, CsvRow> read_csv(const fs::path& p) {
  std::map<std::pair<std::string, uint64_t>, CsvRow> rows;
  const auto lines = lines_of(read_file(p));
  EXPECT_FALSE(lines.empty()) << p;
  if (lines.empty()) return rows;
  EXPECT_EQ(lines[0], "arm,seed,final_val_loss,steps,tokens,seconds,sec_per_step,flags,device");
  for (size_t i = 1; i < lines.size(); i++) {
    std::vector<std::string> f;
    std::stringstream ss(lines[i]);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    // The device column ("cpu, 1 thread") is quoted and holds a comma; the rest are plain.
    EXPECT_NE(lines[i].find(",\"cpu, 1 thread\""), std::string::npos) << lines[i];
    EXPECT_GE(f.size(), 8u) << lines[i];
    if (f.size() < 8) continue;
    CsvRow r{f[0], std::stoull(f[1]), std::stod(f[2]), std::stoi(f[3]), std::stoll(f[4])};
    EXPECT_TRUE(rows.emplace(std::pair{r.arm, r.seed}, r).second) << "duplicate row " << lines[i];
  }
  return rows;
}

// The cells of the summary table's row for `arm`.
std::vector<std::string> summary_row(const std::string& md, const std::string& arm) {
  for (const auto& line : lines_of(md)) {
    if (line.rfind("| " + arm + " |", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    for (std::string c; std::getline(ss, c, '|');) {
      const size_t b = c.find_first_not_of(' '), e = c.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : c.substr(b, e - b + 1));
    }
    return cells;  // arm, flags, n, loss, Δ, t, lower in, ms/step, overhead
  }
  ADD_FAILURE() << "no row for arm '" << arm << "' in:\n" << md;
  return std::vector<std::string>(9);
}

// "3.0537 ± 0.0030" -> {3.0537, 0.0030}
std::pair<double, double> mean_pm_std(const std::string& cell) {
  const size_t pm = cell.find("±");
  EXPECT_NE(pm, std::string::npos) << cell;
  if (pm == std::string::npos) return {NAN, NAN};
  return {std::stod(cell.substr(0, pm)), std::stod(cell.substr(pm + std::strlen("±")))};
}

std::pair<double, double> mean_std(const std::vector<double>& v) {
  double m = 0, ss = 0;
  for (double x : v) m += x;
  m /= double(v.size());
  for (double x : v) ss += (x - m) * (x - m);
  return {m, std::sqrt(ss / double(v.size() - 1))};
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) n++;
  return n;
}

// ------------------------------------------------------------------------------------------------

// The model and training flags every grid here shares (given after --).
const Args kModel = {"--layers",  "1",  "--d-model", "32", "--heads",  "2", "--d-ff",         "32",
                     "--context", "32", "--batch",   "4",  "--warmup", "2", "--eval-batches", "1"};

class Ablate : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "scalevec_ablate_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    // Deterministic text over a small alphabet: learnable, 20 KB.
    std::string text;
    uint64_t x = 88172645463325252ull;
    const std::string alphabet = "the quick brown fox jumps over a lazy dog\n";
    for (int i = 0; i < 20000; i++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      text.push_back(alphabet[x % alphabet.size()]);
    }
    write_file(dir_ / "data.txt", text);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  Result run(const Args& args) { return Child(args).finish(); }

  // `scalevec ablate` into dir/<out> with `extra` ablate flags and the common train flags.
  Args grid(const std::string& out, const Args& extra, int steps, int eval_every) const {
    return Args{"ablate", "--out", path(out), "--threads", "1"} + extra +
           Args{"--",
                "--data",
                path("data.txt"),
                "--steps",
                std::to_string(steps),
                "--eval-every",
                std::to_string(eval_every)} +
           kModel;
  }
  // 2 arms × 2 seeds: the built-in baseline and none.
  Args two_by_two(const std::string& out, int steps, int eval_every, const Args& extra = {}) const {
    return grid(out, Args{"--arms", "baseline,none", "--seeds", "1,2"} + extra, steps, eval_every);
  }

  fs::path dir_;
};

// ================================================================================================

TEST_F(Ablate, GridWritesResultsSummaryAndPlot) {
  const Result r = run(two_by_two("g", 20, 5));
  ASSERT_EQ(r.code, 0) << r;

  const auto rows = read_csv(path("g/results.csv"));
  ASSERT_EQ(rows.size(), 4u);
  for (const char* arm : {"baseline", "none"})
    for (uint64_t seed : {1, 2}) {
      ASSERT_TRUE(rows.count({arm, seed})) << arm << " seed " << seed;
      const CsvRow& row = rows.at({arm, seed});
      EXPECT_EQ(row.steps, 20);
      EXPECT_EQ(row.tokens, 20 * 4 * 32);
      // The CSV's loss is the run's own: result.json's, and the last validation in metrics.jsonl.
      const std::string run_dir =
          path("g/runs/" + std::string(arm) + "/seed" + std::to_string(seed));
      const json res = json::parse(read_file(run_dir + "/result.json"));
      EXPECT_EQ(res.at("final_val_loss").get<double>(), row.final_val_loss);
      double last_val = NAN;
      for (const auto& line : lines_of(read_file(run_dir + "/metrics.jsonl"))) {
        const json j = json::parse(line);
        if (j.contains("val_loss")) last_val = j.at("val_loss").get<double>();
      }
      EXPECT_EQ(last_val, row.final_val_loss);
      EXPECT_EQ(res.at("val").size(), 4u) << "validations at steps 5, 10, 15, 20";
    }
  // The two seeds differ, and so do the two arms.
  EXPECT_NE(rows.at({"baseline", 1}).final_val_loss, rows.at({"baseline", 2}).final_val_loss);
  EXPECT_NE(rows.at({"baseline", 1}).final_val_loss, rows.at({"none", 1}).final_val_loss);

  // summary.md: loss mean ± std per arm, and none − baseline paired by seed, recomputed here.
  const std::string md = read_file(path("g/summary.md"));
  EXPECT_EQ(md, r.out) << "the summary is also printed";
  const double tol = 0.5e-4 + 1e-12;  // 4 decimals
  for (const char* arm : {"baseline", "none"}) {
    const auto cells = summary_row(md, arm);
    EXPECT_EQ(cells[2], "2") << md;
    const auto [m, s] = mean_pm_std(cells[3]);
    const auto [em, es] =
        mean_std({rows.at({arm, 1}).final_val_loss, rows.at({arm, 2}).final_val_loss});
    EXPECT_NEAR(m, em, tol) << md;
    EXPECT_NEAR(s, es, tol) << md;
  }
  std::vector<double> diff;
  for (uint64_t seed : {1, 2})
    diff.push_back(rows.at({"none", seed}).final_val_loss -
                   rows.at({"baseline", seed}).final_val_loss);
  const auto [dm, ds] = mean_std(diff);
  const auto cells = summary_row(md, "none");
  const auto [m, s] = mean_pm_std(cells[4]);
  EXPECT_NEAR(m, dm, tol) << md;
  EXPECT_NEAR(s, ds, tol) << "the spread of the per-seed differences (paired), not of the arms: "
                          << md;
  EXPECT_NEAR(std::stod(cells[5]), dm / (ds / std::sqrt(2.0)), 0.005 + 1e-9) << md;
  EXPECT_EQ(cells[6], std::to_string((diff[0] < 0) + (diff[1] < 0)) + "/2") << md;
  EXPECT_EQ(summary_row(md, "baseline")[4], "—") << md;
  EXPECT_NE(md.find("ablate --out"), std::string::npos) << "the command line: " << md;

  // curves.svg: a complete SVG with a line and a band per arm and both arms in the legend.
  const std::string svg = read_file(path("g/curves.svg"));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns='http://www.w3.org/2000/svg'"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(count(svg, "<polyline"), 2u);
  EXPECT_EQ(count(svg, "<polygon"), 2u);
  EXPECT_NE(svg.find(">baseline: "), std::string::npos);
  EXPECT_NE(svg.find(">none: "), std::string::npos);
  EXPECT_TRUE(fs::exists(path("g/grid.json")));
  // delta.svg: the baseline as the zero line (no band), none − baseline with its band, and the
  // legend's final Δ is the summary's paired difference.
  const std::string dsvg = read_file(path("g/delta.svg"));
  EXPECT_EQ(dsvg.substr(dsvg.size() - 7), "</svg>\n");
  EXPECT_EQ(count(dsvg, "<polyline"), 2u);
  EXPECT_EQ(count(dsvg, "<polygon"), 1u);
  EXPECT_NE(dsvg.find(">baseline: 0 by definition<"), std::string::npos) << dsvg;
  EXPECT_NE(dsvg.find(">none: " + cells[4] + " (n=2)<"), std::string::npos) << cells[4] << "\n"
                                                                            << dsvg;

  // Running the same grid again trains nothing: every run is skipped, no file of a run changes.
  std::map<fs::path, fs::file_time_type> mtimes;
  for (const auto& e : fs::recursive_directory_iterator(path("g/runs")))
    if (e.is_regular_file()) mtimes[e.path()] = e.last_write_time();
  const std::string csv = read_file(path("g/results.csv"));
  const Result again = run(two_by_two("g", 20, 5));
  EXPECT_OK(again);
  EXPECT_EQ(count(again.err, "finished earlier, skipped"), 4u) << again;
  EXPECT_EQ(count(again.err, "| step "), 0u) << "no training: " << again;
  for (const auto& [p, t] : mtimes) EXPECT_EQ(fs::last_write_time(p), t) << p << " was rewritten";
  EXPECT_EQ(read_file(path("g/results.csv")), csv);
}

// A grid whose run directories are gone (as the replication grids in docs/ are kept) is redrawn by
// --report-only from results.csv and curves.csv alone, to the same files; --merge pairs two grids
// by seed; --report-only refuses the flags that would train.
TEST_F(Ablate, ReportOnlyRedrawsTheReportsFromTheCsvFiles) {
  ASSERT_EQ(run(two_by_two("g", 20, 5)).code, 0);
  const auto original = [&](const std::string& f) { return read_file(path("g/" + f)); };
  const std::string md = original("summary.md"), curves = original("curves.svg"),
                    delta = original("delta.svg"), paired = original("paired.svg"),
                    ccsv = original("curves.csv");
  EXPECT_EQ(lines_of(ccsv).size(), 1u + 4 * 4) << "a header and 4 validations of 4 runs: " << ccsv;
  EXPECT_EQ(count(paired, "<circle"), 2u) << "none − baseline for seeds 1 and 2: " << paired;
  fs::remove_all(path("g/runs"));

  const Result r = run({"ablate", "--out", path("g"), "--report-only", "--report-to", path("re")});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(r.out, md) << "the summary is printed";
  for (const char* f :
       {"summary.md", "results.csv", "curves.csv", "curves.svg", "delta.svg", "paired.svg"})
    EXPECT_EQ(read_file(path("re/" + std::string(f))), original(f)) << f << " redrawn differently";

  // Without curves.csv the curve plots cannot be drawn: they are not written, the rest is.
  fs::remove(path("g/curves.csv"));
  ASSERT_EQ(run({"ablate", "--out", path("g"), "--report-only", "--report-to", path("re2")}).code,
            0);
  EXPECT_EQ(read_file(path("re2/paired.svg")), paired);
  EXPECT_FALSE(fs::exists(path("re2/curves.svg")));
  EXPECT_FALSE(fs::exists(path("re2/delta.svg")));

  // A second grid with the same seeds and model pairs with the first: its arm against baseline.
  ASSERT_EQ(run(grid("h", Args{"--arm", "lowlr=--lr 1e-3", "--seeds", "1,2"}, 20, 5)).code, 0);
  const Result m = run({"ablate", "--out", path("g"), "--merge", path("h"), "--report-only",
                        "--report-to", path("re3"), "--arms", "lowlr"});
  ASSERT_EQ(m.code, 0) << m;
  const auto g_rows = read_csv(path("g/results.csv")), h_rows = read_csv(path("h/results.csv"));
  std::vector<double> diff;
  for (uint64_t seed : {1, 2})
    diff.push_back(h_rows.at({"lowlr", seed}).final_val_loss -
                   g_rows.at({"baseline", seed}).final_val_loss);
  const auto [dm, ds] = mean_std(diff);
  const auto cells = summary_row(m.out, "lowlr");
  ASSERT_GE(cells.size(), 5u) << m.out;
  const auto [mm, ms] = mean_pm_std(cells[4]);
  EXPECT_NEAR(mm, dm, 0.5e-4 + 1e-12) << m.out;
  EXPECT_NEAR(ms, ds, 0.5e-4 + 1e-12) << m.out;
  EXPECT_FALSE(summary_row(m.out, "baseline").empty())
      << "the baseline is shown with --arms: " << m.out;
  EXPECT_EQ(m.out.find("| none |"), std::string::npos) << "--arms chose the rows: " << m.out;

  // Merging a grid of another length is refused (not comparable); training flags are refused.
  ASSERT_EQ(run(grid("k", Args{"--arm", "short=", "--seeds", "1"}, 10, 5)).code, 0);
  const Result bad = run({"ablate", "--out", path("g"), "--merge", path("k"), "--report-only"});
  expect_error(bad, "different numbers of tokens");
  const Result seeds = run({"ablate", "--out", path("g"), "--report-only", "--seeds", "3"});
  expect_error(seeds, "--report-only trains nothing: --seeds does not apply");
  const Result orphan = run({"ablate", "--out", path("g"), "--report-to", path("x")});
  EXPECT_NE(orphan.code, 0) << "--report-to needs --report-only: " << orphan;
}

TEST_F(Ablate, InterruptedGridEndsLikeAnUninterruptedOne) {
  // Long enough runs (1000 steps, ~1 s) that an interrupt lands inside one.
  const int steps = 1000, eval_every = 100;
  ASSERT_EQ(run(two_by_two("a", steps, eval_every)).code, 0);

  // Stopped between runs...
  const Result first = run(two_by_two("b", steps, eval_every, {"--stop-after-runs", "1"}));
  ASSERT_EQ(first.code, 0) << first;
  EXPECT_NE(first.err.find("stopped after 1 runs"), std::string::npos) << first;
  // Seed by seed: baseline seed 1, none seed 1, baseline seed 2, none seed 2.
  EXPECT_TRUE(fs::exists(path("b/runs/baseline/seed1/result.json")));
  EXPECT_FALSE(fs::exists(path("b/runs/none/seed1")));
  EXPECT_EQ(read_csv(path("b/results.csv")).size(), 1u) << "reports of the partial grid";

  // ...then interrupted inside the second run (Ctrl-C)...
  {
    Child c(two_by_two("b", steps, eval_every));
    ASSERT_GT(c.pid(), 0);
    ASSERT_TRUE(c.wait_for("run 2/4 none seed 1 | step 100/1000", 60)) << c.err_so_far();
    ASSERT_EQ(kill(c.pid(), SIGINT), 0);
    const Result r = c.finish();
    EXPECT_EQ(r.code, 130) << r;
    EXPECT_NE(r.err.find("interrupted: run 2/4 none seed 1 at step"), std::string::npos) << r;
    EXPECT_NE(r.err.find("resume with: scalevec ablate --out"), std::string::npos) << r;
    EXPECT_EQ(lines_of(r.err).back().rfind("interrupted; resume with: scalevec ablate --out", 0),
              0u)
        << r;
    ASSERT_TRUE(fs::exists(path("b/runs/none/seed1/model.safetensors"))) << r;
    ASSERT_FALSE(fs::exists(path("b/runs/none/seed1/result.json")))
        << "the run finished before the interrupt: " << r;
  }
  // ...and continued from grid.json alone: the second run resumes from its checkpoint.
  const Result rest = run({"ablate", "--out", path("b"), "--threads", "1"});
  ASSERT_EQ(rest.code, 0) << rest;
  EXPECT_NE(rest.err.find("run 1/4 baseline seed 1: finished earlier, skipped"), std::string::npos)
      << rest;
  EXPECT_NE(rest.err.find("run 2/4 none seed 1: resuming from its checkpoint"), std::string::npos)
      << rest;
  EXPECT_EQ(rest.err.find("run 2/4 none seed 1 | step 100/1000"), std::string::npos)
      << "the resumed run repeated steps done before the interrupt: " << rest;

  const auto a = read_csv(path("a/results.csv")), b = read_csv(path("b/results.csv"));
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);
  for (const auto& [key, row] : a) {
    ASSERT_TRUE(b.count(key)) << key.first << " seed " << key.second;
    EXPECT_EQ(b.at(key).final_val_loss, row.final_val_loss) << key.first << " seed " << key.second;
    const std::string run =
        "/runs/" + key.first + "/seed" + std::to_string(key.second) + "/result.json";
    const json ra = json::parse(read_file(path("a") + run)),
               rb = json::parse(read_file(path("b") + run));
    EXPECT_EQ(ra.at("val"), rb.at("val")) << "validation curves differ: " << run;
    EXPECT_GT(rb.at("sec_per_step").get<double>(), 0) << run;
    EXPECT_EQ(rb.value("device", "").rfind("cpu, ", 0), 0u) << "where the run trained: " << run;
  }
  EXPECT_NE(read_file(path("b/summary.md")).find("- **trained on**: cpu, "), std::string::npos);
}

TEST_F(Ablate, BadArmsAreOneLineErrors) {
  auto arm = [&](const std::string& spec) { return run(grid("g", {"--arm", spec}, 20, 5)); };
  expect_error(arm("x=--no-such-flag 3"), "arm 'x'");
  expect_error(arm("x=--no-such-flag 3"), "--no-such-flag");
  expect_error(arm("x=--scale nosuch"), "arm 'x'");
  expect_error(arm("x=--lr"), "arm 'x'");
  expect_error(arm("x=--warmup 50"), "arm 'x'");  // more warmup than the 20 steps
  expect_error(arm("x=--seed 3"), "--seed");
  expect_error(arm("x=--data other.txt"), "--data");
  expect_error(arm("x=--out elsewhere"), "--out");
  expect_error(arm("x=--resume"), "--resume");
  expect_error(arm("x=--scale 'none"), "unterminated");
  expect_error(arm("bad/name=--lr 1e-3"), "arm name");
  expect_error(arm("nosuch"), "nosuch");
  expect_error(run(grid("g", {"--arms", "baseline,nosuch"}, 20, 5)), "nosuch");
  expect_error(run(grid("g", {"--arm", "x=", "--arm", "x=--lr 1e-3"}, 20, 5)), "twice");
  expect_error(run(grid("g", {"--arm", "x=", "--seeds", "1,x"}, 20, 5)), "--seeds");
  expect_error(run(grid("g", {"--arm", "x=", "--baseline", "y"}, 20, 5)), "'y'");
  expect_error(run({"ablate", "--out", path("g"), "--seeds", "1"}), "no arms");
  EXPECT_FALSE(fs::exists(path("g/runs"))) << "nothing may run after a bad definition";
}

TEST_F(Ablate, ArmsWithDifferentTokenCountsAreRefused) {
  for (const char* flags : {"--steps 30", "--batch 8", "--context 16"}) {
    const Result r = run(grid("g", {"--arm", "a=", "--arm", std::string("b=") + flags}, 20, 5));
    expect_error(r, "different numbers of tokens");
    expect_error(r, "'b'");
  }
  EXPECT_FALSE(fs::exists(path("g/runs")));
  // Unless asked for.
  const Result ok = run(grid(
      "g", {"--arm", "a=", "--arm", "b=--steps 30", "--seeds", "1", "--allow-different-tokens"}, 20,
      10));
  ASSERT_EQ(ok.code, 0) << ok;
  const auto rows = read_csv(path("g/results.csv"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows.at({"b", 1}).steps, 30);
}

TEST_F(Ablate, RedefiningAnArmNeedsForce) {
  ASSERT_EQ(run(grid("g", {"--arm", "a=", "--seeds", "1"}, 20, 10)).code, 0);
  expect_error(run(grid("g", {"--arm", "a=--lr 1e-3", "--seeds", "1"}, 20, 10)),
               "defined differently");
  // Other common flags change every arm's definition too.
  expect_error(run(grid("g", {"--arm", "a=", "--seeds", "1"}, 20, 5)), "eval_every");
  // The same definition in other words is the same arm; a new arm joins the grid.
  const Result more =
      run(grid("g", {"--arm", "a=--lr 0.002", "--arm", "b=--lr 1e-3", "--seeds", "1"}, 20, 10));
  ASSERT_EQ(more.code, 0) << more;
  EXPECT_NE(more.err.find("a seed 1: finished earlier, skipped"), std::string::npos) << more;
  const auto old = json::parse(read_file(path("g/runs/a/seed1/result.json")));
  const Result forced = run(grid("g", {"--arm", "a=--lr 1e-3", "--seeds", "1", "--force"}, 20, 10));
  ASSERT_EQ(forced.code, 0) << forced;
  EXPECT_NE(forced.err.find("redefined"), std::string::npos) << forced;
  const auto rows = read_csv(path("g/results.csv"));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(rows.at({"a", 1}).final_val_loss, old.at("final_val_loss").get<double>());
  // With --lr 1e-3, a and b are now the same arm: the same seed gives the same loss.
  EXPECT_EQ(rows.at({"a", 1}).final_val_loss, rows.at({"b", 1}).final_val_loss);
}

TEST_F(Ablate, Help) {
  const Result r = run({"ablate", "--help"});
  EXPECT_OK(r);
  for (const char* s : {"--arm", "--arms", "--seeds", "--baseline", "--allow-different-tokens",
                        "Built-in arms", "iwd", "summary.md", "curves.svg"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << ": " << r;
}

}  // namespace
