// The training loop: sample a batch, forward, backward, clip, an optimizer step (AdamW, Muon or
// SGD) with the scheduled learning rate; evaluate, checkpoint, report progress; resume exactly
// where a run stopped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "../model/config.h"
#include "config.h"
#include "data.h"
#include "engine.h"
#include "sample.h"

namespace scalevec {

struct StepRecord;

struct TrainOptions {        // how to run, not what to train (not saved in checkpoints)
  std::string out_dir;       // checkpoints, metrics.jsonl, sample.txt ("" = write nothing)
  bool resume = false;       // continue from out_dir's newest checkpoint
  int keep_checkpoints = 2;  // complete checkpoints kept in out_dir/checkpoints (>= 1)
  int stop_at = 0;           // > 0: stop after this step (checkpoint, exit as interrupted)
  bool progress = true;      // live progress line on stderr
  SampleOptions sample;      // text sample at the end (length 0 = none)
  std::string prompt = "\n";
  const std::atomic<bool>* interrupt = nullptr;  // set by a Ctrl-C handler: checkpoint and stop
  // Called after each optimizer step and each validation: a caller's own progress display
  // (`scalevec ablate` shows a whole grid of runs; it turns `progress` off).
  std::function<void(const StepRecord&)> on_step;
  std::function<void(int step, double val_loss)> on_val;
  // Where the steps (and validation) run: the engine this makes for the trainer's model and
  // optimizer (gpu/engine.h: the CUDA mirror). Empty: the CPU reference, make_cpu_engine.
  EngineFactory engine;
};

struct StepRecord {
  int step;  // 1-based: the number of optimizer steps completed
  double loss;
  double lr;  // AdamW's (SGD's, Muon's AdamW part's) learning rate: TrainConfig::lr · lr_factor
  double lr_factor;  // the schedule's multiplier of every base learning rate
  double grad_norm;
};

struct TrainResult {
  std::vector<StepRecord> steps;            // the steps run in this invocation
  std::vector<std::pair<int, double>> val;  // (step, validation loss)
  int last_step = 0;                        // steps completed in total
  bool finished = false;                    // all configured steps done
  std::string sample;                       // generated text (finished runs)
  double seconds = 0, tokens_per_second = 0;
  double step_seconds = 0;  // part of `seconds` spent in optimizer steps (no evaluation,
                            // checkpoints or progress): the cost of the step itself
};

// A loss far above its recent level: more than 1 nat above, and 1.5 times, the median of the last
// 20 steps. The trainer flags it in the progress line and in metrics.jsonl ("spike": true) and
// goes on.
class SpikeDetector {
 public:
  // Records `loss`; returns the median of the 20 losses before it when it is a spike, else 0.
  double check(double loss);

 private:
  static constexpr size_t kWindow = 20;
  std::vector<double> recent_;
};

// Runs (or resumes) training. With opts.resume, the model and training configs must match the
// checkpoint's (a differing field is an Error naming it), except `steps`, which may grow.
TrainResult train(const ModelConfig& mcfg, const TrainConfig& tcfg, const TextData& data,
                  const TrainOptions& opts);

// Mean loss over up to `batches` fixed validation batches of B windows each.
template <class T>
double evaluate(Transformer<T>& model, const std::vector<uint8_t>& split, int B, int batches);

}  // namespace scalevec
