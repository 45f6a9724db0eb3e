// What `scalevec ablate` writes about a grid of runs (arms × seeds), rewritten after every finished
// run so that a partial grid can be looked at:
//   results.csv   one row per finished run
//   summary.md    per arm: final validation loss mean ± std over seeds, the paired difference to
//                 the baseline arm (per seed, then mean ± std and a paired t statistic), time per
//                 optimizer step and its overhead over the baseline; the command lines used
//   curves.csv    the validation curve of every finished run (arm, seed, step, val_loss)
//   curves.svg    validation loss against step: per arm the mean over seeds and a min..max band
//   delta.svg     each arm's validation loss minus the baseline's, paired by seed, against step
//   paired.svg    each arm's final validation loss minus the baseline's, a dot per seed
// results.csv and curves.csv hold everything the other reports are drawn from, so a grid's
// reports can be redrawn from those two files alone (`scalevec ablate --report-only`).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace scalevec {

// One finished run: DIR/runs/<arm>/seed<k>/result.json.
struct RunResult {
  std::string arm;
  uint64_t seed = 0;
  double final_val_loss = 0;
  int steps = 0;
  int64_t tokens = 0;       // steps · batch · context
  double seconds = 0;       // wall-clock in train(), evaluation and checkpoints included
  double sec_per_step = 0;  // the optimizer step alone (evaluation and checkpoints excluded)
  std::vector<std::pair<int, double>> val;  // validation loss curve (step, loss)
  std::string device;  // where its last part trained: "cpu, 2 threads" or the CUDA
                       // engine's name with its precision ("" in results of old versions)

  nlohmann::json to_json() const;
  static RunResult from_json(const nlohmann::json& j,
                             const std::string& path);  // Error on bad input
};

struct ReportArm {
  std::string name;
  std::string flags;           // the arm's own `scalevec train` flags
  std::string preset, common;  // the preset and the flags shared with the other arms
};

struct GridReport {
  std::string dir;              // where the reports go
  std::string name;             // the grid as titles name it (its directory; "" = dir)
  std::vector<ReportArm> arms;  // in display order
  std::vector<uint64_t> seeds;
  std::string baseline;               // the arm every other arm is compared with
  std::vector<RunResult> runs;        // the finished runs, any order
  std::vector<std::string> commands;  // the command lines that built the grid
};

// Mean and sample standard deviation (n − 1 in the denominator; NaN for fewer than 2 values).
struct MeanStd {
  int n = 0;
  double mean = 0, std = 0;
};
MeanStd mean_std(const std::vector<double>& v);

// Writes the file through a temporary beside it and a rename, so a reader (or a crash) never
// sees half a file.
void write_file_atomically(const std::string& path, const std::string& text);

// Writes results.csv, curves.csv, summary.md, paired.svg and, when the runs have validation
// curves, curves.svg and delta.svg into r.dir (each atomically). Returns the summary.
std::string write_reports(const GridReport& r);

// The runs of a results.csv (their curves empty), and the curves of a curves.csv added to the runs
// they belong to (a run without a row in results.csv is an error). Error on malformed input.
std::vector<RunResult> read_results_csv(const std::string& path);
void read_curves_csv(const std::string& path, std::vector<RunResult>& runs);

}  // namespace scalevec
