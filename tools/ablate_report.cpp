#include "ablate_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "plot_svg.h"
#include "ref/common.h"

namespace scalevec {

namespace fs = std::filesystem;
using json = nlohmann::json;

json RunResult::to_json() const {
  json j = {{"arm", arm},
            {"seed", seed},
            {"final_val_loss", final_val_loss},
            {"steps", steps},
            {"tokens", tokens},
            {"seconds", seconds},
            {"sec_per_step", sec_per_step},
            {"val", val}};
  if (!device.empty()) j["device"] = device;
  return j;
}

RunResult RunResult::from_json(const json& j, const std::string& path) {
  RunResult r;
  try {
    r.arm = j.at("arm").get<std::string>();
    r.seed = j.at("seed").get<uint64_t>();
    r.final_val_loss = j.at("final_val_loss").get<double>();
    r.steps = j.at("steps").get<int>();
    r.tokens = j.at("tokens").get<int64_t>();
    r.seconds = j.at("seconds").get<double>();
    r.sec_per_step = j.at("sec_per_step").get<double>();
    r.val = j.at("val").get<std::vector<std::pair<int, double>>>();
    r.device = j.value("device", "");
  } catch (const json::exception& e) {
    throw Error(fmt::format("'{}' is not a valid run result: {}", path, e.what()));
  }
  return r;
}

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd s;
  s.n = (int)v.size();
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= s.n;
  if (s.n < 2) {
    s.std = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(ss / (s.n - 1));
  return s;
}

void write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    require(f.good(), "cannot write '{}'", tmp);
  }
  fs::rename(tmp, path);
}

namespace {

// The finished runs of one arm, by seed.
std::map<uint64_t, const RunResult*> runs_of(const GridReport& r, const std::string& arm) {
  std::map<uint64_t, const RunResult*> out;
  for (const auto& run : r.runs)
    if (run.arm == arm) out[run.seed] = &run;
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// Losses with {:.17g} (round-trip exact), so results.csv can be recomputed from bit for bit.
const char* const kResultsHeader =
    "arm,seed,final_val_loss,steps,tokens,seconds,sec_per_step,flags,device";
// Written by versions before the device column; still read.
const char* const kResultsHeaderV1 =
    "arm,seed,final_val_loss,steps,tokens,seconds,sec_per_step,flags";

std::string results_csv(const GridReport& r) {
  std::string csv = std::string(kResultsHeader) + "\n";
  for (const auto& arm : r.arms)
    for (const auto& [seed, run] : runs_of(r, arm.name))
      csv += fmt::format("{},{},{:.17g},{},{},{:.6g},{:.6g},{},{}\n", csv_field(arm.name), seed,
                         run->final_val_loss, run->steps, run->tokens, run->seconds,
                         run->sec_per_step, csv_field(arm.flags), csv_field(run->device));
  return csv;
}

// Every point of every validation curve, {:.17g} like the losses of results.csv.
std::string curves_csv(const GridReport& r) {
  std::string csv = "arm,seed,step,val_loss\n";
  for (const auto& arm : r.arms)
    for (const auto& [seed, run] : runs_of(r, arm.name))
      for (const auto& [step, loss] : run->val)
        csv += fmt::format("{},{},{},{:.17g}\n", csv_field(arm.name), seed, step, loss);
  return csv;
}

// The fields of one CSV line (quotes as csv_field writes them).
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); i++) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"')
      out.back() += '"', i++;
    else if (c == '"')
      quoted = !quoted;
    else if (c == ',' && !quoted)
      out.emplace_back();
    else
      out.back() += c;
  }
  return out;
}

// The data lines of a CSV file whose header is one of `headers`, split into fields.
std::vector<std::vector<std::string>> read_csv(const std::string& path,
                                               const std::vector<std::string>& headers) {
  std::ifstream f(path);
  require(f.good(), "cannot read '{}'", path);
  std::string line;
  require(std::getline(f, line) && std::find(headers.begin(), headers.end(), line) != headers.end(),
          "'{}' does not start with the header '{}'", path, headers.front());
  std::vector<std::vector<std::string>> rows;
  const size_t n = csv_fields(line).size();
  for (int k = 2; std::getline(f, line); k++) {
    if (line.empty()) continue;
    rows.push_back(csv_fields(line));
    require(rows.back().size() == n, "'{}' line {}: {} fields, expected {}", path, k,
            rows.back().size(), n);
  }
  return rows;
}

double csv_number(const std::string& s, const std::string& path) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
  }
  require(used == s.size() && !s.empty(), "'{}': '{}' is not a number", path, s);
  return v;
}

// "3.0679 ± 0.0123" ("+0.0122 ± 0.0031" with sign), the mean alone for one value, "—" for none.
std::string pm(const MeanStd& s, bool sign = false) {
  if (s.n == 0) return "—";
  const std::string mean = sign ? fmt::format("{:+.4f}", s.mean) : fmt::format("{:.4f}", s.mean);
  return s.n < 2 ? mean : fmt::format("{} ± {:.4f}", mean, s.std);
}

// One row of the summary table.
std::string summary_row(const GridReport& r, const ReportArm& arm) {
  const auto runs = runs_of(r, arm.name), base = runs_of(r, r.baseline);
  std::vector<double> loss, sps, base_sps, diff;
  for (const auto& [seed, run] : runs) {
    loss.push_back(run->final_val_loss), sps.push_back(run->sec_per_step);
    // Paired by seed: the same seed gives both runs the same data order (and init seed), so
    // the per-seed difference removes that part of the seed-to-seed variation.
    if (base.count(seed)) diff.push_back(run->final_val_loss - base.at(seed)->final_val_loss);
  }
  for (const auto& [seed, run] : base) base_sps.push_back(run->sec_per_step);
  const MeanStd l = mean_std(loss), d = mean_std(diff), t = mean_std(sps), bt = mean_std(base_sps);
  const bool is_base = arm.name == r.baseline;
  std::string delta = "—", tstat = "—", lower = "—", ms = "—", overhead = "—";
  if (!is_base && d.n > 0) {
    delta = pm(d, true);
    if (d.n >= 2 && d.std > 0) tstat = fmt::format("{:.2f}", d.mean / (d.std / std::sqrt(d.n)));
    lower = fmt::format(
        "{}/{}", std::count_if(diff.begin(), diff.end(), [](double x) { return x < 0; }), d.n);
  }
  if (t.n > 0) ms = fmt::format("{:.3g}", t.mean * 1e3);
  if (!is_base && t.n > 0 && bt.n > 0 && bt.mean > 0)
    overhead = fmt::format("{:+.1f}%", (t.mean / bt.mean - 1) * 100);
  return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", arm.name,
                     arm.flags.empty() ? "(none)" : "`" + arm.flags + "`", l.n, pm(l), delta, tstat,
                     lower, ms, overhead);
}

std::string summary_md(const GridReport& r) {
  std::set<std::pair<int, int64_t>> lengths;  // (steps, tokens) of the finished runs
  for (const auto& run : r.runs) lengths.insert({run.steps, run.tokens});
  std::string md = fmt::format("# Ablation: {}\n\n{} arms × seeds {}; baseline arm `{}`. ",
                               r.name.empty() ? r.dir : r.name, r.arms.size(),
                               fmt::join(r.seeds, ", "), r.baseline);
  if (lengths.size() == 1)
    md += fmt::format("Every run: {} steps, {} tokens.\n\n", lengths.begin()->first,
                      lengths.begin()->second);
  else if (lengths.size() > 1)
    md += "Runs differ in length (--allow-different-tokens): see results.csv.\n\n";
  else
    md += "No run has finished yet.\n\n";

  md += fmt::format(
      "| arm | flags | n | final val loss | Δ vs {} | t | lower in | ms/step | "
      "overhead |\n|:--|:--|--:|--:|--:|--:|--:|--:|--:|\n",
      r.baseline);
  for (const auto& arm : r.arms) md += summary_row(r, arm);
  md +=
      "\n"
      "- **final val loss**: validation loss after the last step, mean ± sample standard "
      "deviation over the arm's finished seeds (n).\n"
      "- **Δ**: arm − baseline per seed (the same seed gives both the same data "
      "order), then mean ± sample standard deviation over the seeds both finished; negative: "
      "lower loss than the baseline. **t** = mean Δ / (std Δ / √n), the paired t statistic with "
      "n − 1 degrees of freedom: |t| above 12.71 (n = 2), 4.30 (n = 3), 3.18 (n = 4), 2.78 "
      "(n = 5), 2.26 (n = 10) is p < 0.05 two-sided. **lower in**: seeds where the arm's loss "
      "is below the baseline's.\n"
      "- **ms/step**: wall-clock milliseconds per optimizer step, evaluation and checkpoints "
      "excluded, mean over seeds; **overhead** = arm / baseline − 1. Comparable only between "
      "runs on the same machine, with the same --threads and a similar load.\n";
  std::map<std::string, int> devices;  // where the finished runs trained (their last part)
  for (const auto& run : r.runs) devices[run.device.empty() ? "not recorded" : run.device]++;
  if (!devices.empty()) {
    std::vector<std::string> parts;
    for (const auto& [d, n] : devices)
      parts.push_back(fmt::format("{} ({} run{})", d, n, n == 1 ? "" : "s"));
    md += fmt::format("- **trained on**: {}{}.\n", fmt::join(parts, "; "),
                      devices.size() > 1 ? ": the runs do not share one machine or precision" : "");
  }
  md += "\n";

  md += "Definitions (preset, flags every arm shares, the arm's own flags):\n\n";
  for (const auto& arm : r.arms)
    md += fmt::format("- `{}`: `--preset {}{}{}`{}\n", arm.name, arm.preset,
                      arm.common.empty() ? "" : " " + arm.common,
                      arm.flags.empty() ? "" : " " + arm.flags,
                      arm.name == r.baseline ? " (baseline)" : "");
  std::vector<std::string> missing;
  for (const auto& arm : r.arms) {
    const auto runs = runs_of(r, arm.name);
    for (uint64_t seed : r.seeds)
      if (!runs.count(seed)) missing.push_back(fmt::format("{} seed {}", arm.name, seed));
  }
  if (!missing.empty()) md += fmt::format("\nNot finished yet: {}.\n", fmt::join(missing, ", "));
  md += "\nProduced by:\n\n```\n";
  for (const auto& c : r.commands) md += c + "\n";
  return md + "```\n";
}

// One point of a line with a band: the mean of `values` and their min..max.
void add_point(PlotSeries& s, double x, const std::vector<double>& values) {
  s.x.push_back(x);
  s.y.push_back(mean_std(values).mean);
  s.lo.push_back(*std::min_element(values.begin(), values.end()));
  s.hi.push_back(*std::max_element(values.begin(), values.end()));
}

// Mean and min..max over seeds at every step where all of the arm's runs have a validation loss.
PlotSeries curve_of(const std::vector<const RunResult*>& runs) {
  std::map<int, std::vector<double>> at;
  for (const auto* run : runs)
    for (const auto& [step, loss] : run->val) at[step].push_back(loss);
  PlotSeries s;
  for (const auto& [step, losses] : at)
    if (losses.size() == runs.size()) add_point(s, step, losses);
  if (runs.size() < 2) s.lo.clear(), s.hi.clear();  // one seed: no band
  return s;
}

std::string grid_name(const GridReport& r) {
  return fs::path(r.name.empty() ? r.dir : r.name).lexically_normal().filename().string();
}

std::string curves_svg(const GridReport& r) {
  LinePlot p;
  const std::string grid_name = scalevec::grid_name(r);
  p.title = grid_name.empty() ? "Validation loss" : "Validation loss: " + grid_name;
  p.subtitle =
      "line: mean over seeds, band: min..max over seeds. y axis: from the lowest loss to "
      "the loss at 10% of the run (earlier, higher losses are cut off)";
  p.xlabel = "step";
  p.ylabel = "validation loss (nats per byte)";
  p.legend_title = "arm: final val loss, mean ± std";
  double lo = INFINITY, hi = -INFINITY, xmax = 1;
  for (const auto& arm : r.arms) {
    std::vector<const RunResult*> runs;
    for (const auto& [seed, run] : runs_of(r, arm.name)) runs.push_back(run);
    if (runs.empty()) continue;
    PlotSeries s = curve_of(runs);
    if (s.x.empty()) continue;
    std::vector<double> finals;
    for (const auto* run : runs) finals.push_back(run->final_val_loss);
    const MeanStd f = mean_std(finals);
    s.label = fmt::format("{}: {} (n={})", arm.name, pm(f), f.n);
    s.emphasize = arm.name == r.baseline;
    // The y range: everything down to the lowest point, and up to where the curve is at 10% of
    // the run, where the early steep drop (uninteresting, and it would flatten the rest) ends.
    const int steps = runs.front()->steps;
    xmax = std::max(xmax, (double)steps);
    const auto& low = s.lo.empty() ? s.y : s.lo;
    lo = std::min(lo, *std::min_element(low.begin(), low.end()));
    size_t k = 0;
    while (k + 1 < s.x.size() && s.x[k] < 0.1 * steps) k++;
    hi = std::max(hi, s.y[k]);
    const auto& high = s.hi.empty() ? s.y : s.hi;
    hi = std::max(hi, high.back());  // the end of every band stays visible
    p.series.push_back(std::move(s));
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (!(hi > lo)) hi = lo + std::max(1e-3, 0.05 * std::abs(lo));
  const double pad = 0.04 * (hi - lo);
  p.xmin = 0, p.xmax = xmax, p.ymin = lo - pad, p.ymax = hi + pad;
  return render_svg(p);
}

// Each arm minus the baseline, seed by seed (the same seed gives both the same data order), at
// every step where both have a validation loss: the mean over the seeds both finished and the
// min..max band, with the baseline as the zero line. Differences of a few thousandths, which the
// scale of curves.svg hides, are the point of this plot.
std::string delta_svg(const GridReport& r) {
  LinePlot p;
  const std::string grid_name = scalevec::grid_name(r);
  p.title = "Validation loss minus the baseline's" + (grid_name.empty() ? "" : ": " + grid_name);
  p.subtitle =
      "arm − baseline seed by seed; line: mean over the seeds both finished, band: "
      "min..max; below 0: lower loss than the baseline. From 10% of the run on";
  p.xlabel = "step";
  p.ylabel = "Δ validation loss (nats per byte)";
  p.legend_title = "arm: final Δ, mean ± std";
  const auto base = runs_of(r, r.baseline);
  double lo = 0, hi = 0, xmax = 1;
  for (const auto& [seed, run] : base) xmax = std::max(xmax, (double)run->steps);
  for (const auto& arm : r.arms) {
    if (arm.name == r.baseline) continue;
    std::map<int, std::vector<double>> at;  // step -> per-seed differences
    std::vector<double> finals;
    int paired = 0, steps = 0;
    for (const auto& [seed, run] : runs_of(r, arm.name)) {
      if (!base.count(seed)) continue;
      paired++, steps = std::max(steps, run->steps);
      finals.push_back(run->final_val_loss - base.at(seed)->final_val_loss);
      const std::map<int, double> b(base.at(seed)->val.begin(), base.at(seed)->val.end());
      for (const auto& [step, loss] : run->val)
        if (b.count(step)) at[step].push_back(loss - b.at(step));
    }
    PlotSeries s;
    for (const auto& [step, d] : at)
      if ((int)d.size() == paired && step >= 0.1 * steps) add_point(s, step, d);
    if (s.x.empty()) continue;
    if (paired < 2) s.lo.clear(), s.hi.clear();  // one seed: no band
    const auto& low = s.lo.empty() ? s.y : s.lo;
    const auto& high = s.hi.empty() ? s.y : s.hi;
    lo = std::min(lo, *std::min_element(low.begin(), low.end()));
    hi = std::max(hi, *std::max_element(high.begin(), high.end()));
    const MeanStd f = mean_std(finals);
    s.label = fmt::format("{}: {} (n={})", arm.name, pm(f, true), f.n);
    p.series.push_back(std::move(s));
  }
  PlotSeries zero;  // the baseline itself
  zero.label = r.baseline + ": 0 by definition";
  zero.emphasize = true;
  zero.x = {0, xmax}, zero.y = {0, 0};
  p.series.insert(p.series.begin(), zero);
  if (!(hi > lo)) hi = lo + 1e-3;
  const double pad = 0.06 * (hi - lo);
  p.xmin = 0, p.xmax = xmax, p.ymin = lo - pad, p.ymax = hi + pad;
  return render_svg(p);
}

// The final validation loss of each arm minus the baseline's, a dot per seed both finished, with
// the mean and ± one standard deviation: the paired comparison of summary.md, drawn.
std::string paired_svg(const GridReport& r) {
  DotPlot p;
  const std::string name = grid_name(r);
  p.title = "Final validation loss minus the baseline's, seed by seed" +
            (name.empty() ? "" : ": " + name);
  p.subtitle = fmt::format(
      "a dot per seed (arm − {} with the same seed), bar: mean, whisker: ± one "
      "standard deviation; left of 0: lower loss than the baseline",
      r.baseline);
  p.xlabel = "Δ final validation loss (nats per byte)";
  const auto base = runs_of(r, r.baseline);
  for (const auto& arm : r.arms) {
    if (arm.name == r.baseline) continue;
    DotRow row{arm.name, "", {}};
    for (const auto& [seed, run] : runs_of(r, arm.name))
      if (base.count(seed))
        row.values.push_back(run->final_val_loss - base.at(seed)->final_val_loss);
    const MeanStd d = mean_std(row.values);
    const auto lower =
        std::count_if(row.values.begin(), row.values.end(), [](double x) { return x < 0; });
    row.note = d.n == 0 ? "no pair"
                        : fmt::format("{} (n={}), lower in {}/{}", pm(d, true), d.n, lower, d.n);
    p.rows.push_back(std::move(row));
  }
  return render_dot_svg(p);
}

}  // namespace

std::string write_reports(const GridReport& r) {
  write_file_atomically(r.dir + "/results.csv", results_csv(r));
  const std::string md = summary_md(r);
  write_file_atomically(r.dir + "/summary.md", md);
  write_file_atomically(r.dir + "/paired.svg", paired_svg(r));
  const bool curves =
      std::any_of(r.runs.begin(), r.runs.end(), [](const RunResult& x) { return !x.val.empty(); });
  if (curves) {  // a grid redrawn from a results.csv without curves keeps the plots it has
    write_file_atomically(r.dir + "/curves.csv", curves_csv(r));
    write_file_atomically(r.dir + "/curves.svg", curves_svg(r));
    write_file_atomically(r.dir + "/delta.svg", delta_svg(r));
  }
  return md;
}

std::vector<RunResult> read_results_csv(const std::string& path) {
  std::vector<RunResult> runs;
  for (const auto& f : read_csv(path, {kResultsHeader, kResultsHeaderV1})) {
    RunResult r;
    r.arm = f[0];
    r.seed = (uint64_t)csv_number(f[1], path);
    r.final_val_loss = csv_number(f[2], path);
    r.steps = (int)csv_number(f[3], path);
    r.tokens = (int64_t)csv_number(f[4], path);
    r.seconds = csv_number(f[5], path);
    r.sec_per_step = csv_number(f[6], path);
    if (f.size() > 8) r.device = f[8];
    runs.push_back(std::move(r));
  }
  return runs;
}

void read_curves_csv(const std::string& path, std::vector<RunResult>& runs) {
  for (const auto& f : read_csv(path, {"arm,seed,step,val_loss"})) {
    const uint64_t seed = (uint64_t)csv_number(f[1], path);
    auto it = std::find_if(runs.begin(), runs.end(),
                           [&](const RunResult& x) { return x.arm == f[0] && x.seed == seed; });
    require(it != runs.end(), "'{}': a curve of {} seed {}, which has no row in results.csv", path,
            f[0], seed);
    it->val.push_back({(int)csv_number(f[2], path), csv_number(f[3], path)});
  }
}

}  // namespace scalevec
