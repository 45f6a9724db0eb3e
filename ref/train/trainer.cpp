#include "trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "../common.h"
#include "../rng.h"
#include "checkpoint.h"
#include "optim.h"
#include "safetensors.h"
#include "schedule.h"

namespace scalevec {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// The mean of loss_of(batch, n) over the split's first B·batches windows, n rows at a time.
static double evaluate_with(const std::function<double(const Batch&, int)>& loss_of,
                            const std::vector<uint8_t>& split, int Tn, int B, int batches) {
  const size_t windows = window_count(split, Tn);
  Batch batch;
  double total = 0;
  size_t rows = 0;
  for (size_t first = 0; first < windows && first < (size_t)B * batches; first += B) {
    const int n = (int)std::min<size_t>(B, windows - first);
    window_batch(batch, split, Tn, first, n);
    total += loss_of(batch, n) * n;
    rows += n;
  }
  return total / double(rows);
}

template <class T>
double evaluate(Transformer<T>& model, const std::vector<uint8_t>& split, int B, int batches) {
  const int Tn = model.config().context;
  return evaluate_with(
      [&](const Batch& b, int n) {
        return double(model.forward(b.inputs.data(), b.targets.data(), n, Tn));
      },
      split, Tn, B, batches);
}
template double evaluate<float>(Transformer<float>&, const std::vector<uint8_t>&, int, int);
template double evaluate<double>(Transformer<double>&, const std::vector<uint8_t>&, int, int);

// Progress on stderr: an in-place line on a terminal, every ~5% of the run otherwise.
class Progress {
 public:
  Progress(bool on, int total) : on_(on), tty_(isatty(2)), total_(total) {}
  // spike_median > 0: the loss is a spike above that recent median (always printed, on its own
  // line).
  void step(const StepRecord& r, double tok_s, double eta, double spike_median) {
    if (!on_) return;
    const int every = std::max(1, total_ / 20);
    if (!tty_ && r.step % every != 0 && r.step != total_ && spike_median == 0) return;
    fmt::print(stderr, "{}step {:>5}/{} | loss {:.4f} | lr {:.2e} | {:.1f}k tok/s | ETA {}{}{}",
               tty_ ? "\r" : "", r.step, total_, r.loss, r.lr, tok_s / 1e3, format_duration(eta),
               spike_median > 0 ? fmt::format(" | spike (recent median {:.4f})", spike_median) : "",
               tty_ && spike_median == 0 ? "   " : "\n");
  }
  void line(const std::string& s) {
    if (on_) fmt::print(stderr, "{}{}\n", tty_ ? "\r" : "", s);
  }

 private:
  bool on_, tty_;
  int total_;
};

// metrics.jsonl: one JSON object per line, each written to the file at once (no buffering in the
// process: a kill loses nothing written before it), flushed to disk at every checkpoint. A write
// error (a full disk) is an Error, not a silently missing line.
class MetricsLog {
 public:
  // On a resume, the lines of steps after `keep_through` (written after the checkpoint resumed
  // from, and about to be run again) and any torn last line are dropped first.
  MetricsLog(const std::string& path, bool resume, int keep_through) : path_(path) {
    if (resume) truncate_after(keep_through);
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (resume ? 0 : O_TRUNC),
                 0644);
    require(fd_ >= 0, "cannot write '{}': {}", path, std::strerror(errno));
  }
  ~MetricsLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const json& j) {
    const std::string line = j.dump() + "\n";
    write_fully(fd_, line.data(), line.size(), path_);
  }
  void sync() { require(::fsync(fd_) == 0, "cannot flush '{}': {}", path_, std::strerror(errno)); }

 private:
  void truncate_after(int step) {
    std::ifstream in(path_);
    if (!in) return;
    std::string kept, line;
    while (std::getline(in, line)) {
      json j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("step") ||
          !j["step"].is_number_integer())
        continue;  // a line torn by a kill
      if (j["step"].get<int64_t>() <= step) kept += line + "\n";
    }
    in.close();
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << kept;
      out.flush();
      require(out.good(), "cannot write '{}'", tmp);
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path_, ec);
    require(!ec, "cannot replace '{}': {}", path_, ec.message());
  }
  std::string path_;
  int fd_ = -1;
};

double SpikeDetector::check(double loss) {
  double median = 0;
  if (recent_.size() == kWindow) {
    std::vector<double> sorted(recent_.begin(), recent_.end());
    std::nth_element(sorted.begin(), sorted.begin() + kWindow / 2, sorted.end());
    median = sorted[kWindow / 2];
  }
  recent_.push_back(loss);
  if (recent_.size() > kWindow) recent_.erase(recent_.begin());
  return median > 0 && loss > median + 1.0 && loss > 1.5 * median ? median : 0;
}

// Resuming: configs must agree, except that a run may be extended (more steps) and its data file
// may have moved (the data's checksum is compared instead of its path).
static void check_resume(const TrainConfig& saved, const TrainConfig& want,
                         const std::string& dir) {
  json a = saved.to_json(), b = want.to_json();
  for (const char* k : {"steps", "data"}) a.erase(k), b.erase(k);
  const std::string diff = config_differences(a, b);
  require(diff.empty(), "cannot resume '{}' with a different training config: {}", dir, diff);
}

TrainResult train(const ModelConfig& mcfg, const TrainConfig& tcfg, const TextData& data,
                  const TrainOptions& opts) {
  mcfg.validate();
  tcfg.validate();
  const bool files = !opts.out_dir.empty();
  require(!opts.resume || files, "resuming needs a run directory");
  Transformer<float> model(mcfg, tcfg.batch);
  std::unique_ptr<Optimizer<float>> opt = make_optimizer<float>(model.layout(), tcfg);
  Rng data_rng(derive_seed(tcfg.seed, 1));
  int start = 0;
  std::unique_ptr<RunLock> lock;  // one writer per run directory, for the life of this run
  if (files) {
    if (!opts.resume) std::filesystem::create_directories(opts.out_dir);
    require(std::filesystem::is_directory(opts.out_dir), "'{}' is not a directory", opts.out_dir);
    lock = std::make_unique<RunLock>(opts.out_dir);
    clean_interrupted_saves(opts.out_dir);
    if (!opts.resume) {  // a new run (the caller has checked that starting over is wanted)
      std::error_code ec;
      std::filesystem::remove_all(opts.out_dir + "/checkpoints", ec);
      for (const char* f : {"model.safetensors", "state.safetensors", "sample.txt"})
        std::filesystem::remove(opts.out_dir + "/" + f, ec);
    }
  }
  if (opts.resume) {
    std::string model_crc;
    const int64_t mstep = load_model(model_path(opts.out_dir), model, &model_crc);
    TrainState st = load_state(state_path(opts.out_dir), *opt);
    require(st.step == mstep && st.model_crc32 == model_crc,
            "'{}': state.safetensors (step {}) does not belong to model.safetensors (step {}): "
            "they come from different saves",
            opts.out_dir, st.step, mstep);
    require(st.corpus_crc32 == data.crc32,
            "'{}' was trained on other data than {} (checksum {} vs {}): resume with the same data",
            opts.out_dir, data.source, st.corpus_crc32, data.crc32);
    check_resume(st.train, tcfg, opts.out_dir);
    require(st.step <= tcfg.steps, "'{}' is at step {}, past --steps {}", opts.out_dir, st.step,
            tcfg.steps);
    start = (int)st.step;
    data_rng.state = st.data_rng;
  } else {
    model.init(derive_seed(tcfg.seed, 0));
  }
  std::unique_ptr<MetricsLog> metrics;
  if (files)
    metrics = std::make_unique<MetricsLog>(opts.out_dir + "/metrics.jsonl", opts.resume, start);
  int saved_step = opts.resume ? start : -1;  // the newest checkpoint of this run
  const std::unique_ptr<StepEngine> engine =
      (opts.engine ? opts.engine : make_cpu_engine)(model, *opt);
  auto sync_host = [&] { engine->store(model.params, *opt); };  // the record up to date
  auto save = [&](int step) {
    if (!files || step == saved_step) return;
    sync_host();
    metrics->sync();
    save_checkpoint(opts.out_dir, model, *opt,
                    TrainState{step, data_rng.state, tcfg, "", data.crc32}, opts.keep_checkpoints);
    saved_step = step;
  };
  // A non-finite loss or gradient stops the run before anything is saved from it: the newest
  // checkpoint is the last good one.
  auto diverged = [&](int step, const char* what, double v) {
    throw Error(fmt::format(
        "training diverged at step {}: the {} is {}; stopped without saving{}", step, what, v,
        !files || saved_step < 0
            ? std::string()
            : fmt::format(" (the last checkpoint, step {}, is intact: resume from it with a lower "
                          "--lr or --grad-clip)",
                          saved_step)));
  };

  const Schedule sched = tcfg.lr_schedule();
  const int B = tcfg.batch, Tn = mcfg.context;
  Progress progress(opts.progress, tcfg.steps);
  SpikeDetector spikes;
  TrainResult res;
  Batch batch;
  const auto t0 = Clock::now();
  auto val = [&](int step) {
    const double v = evaluate_with([&](const Batch& b, int n) { return engine->loss(b, n); },
                                   data.val, Tn, B, tcfg.eval_batches);
    res.val.push_back({step, v});
    progress.line(fmt::format("step {:>5}: val loss {:.4f}", step, v));
    if (!std::isfinite(v)) diverged(step, "validation loss", v);
    if (files) metrics->write(json{{"step", step}, {"val_loss", v}});
    if (opts.on_val) opts.on_val(step, v);
  };

  int step = start;
  while (step < tcfg.steps) {
    if (opts.interrupt && opts.interrupt->load()) break;
    const auto step_t0 = Clock::now();
    // [snippet:train_step]
    sample_batch(batch, data.train, B, Tn, data_rng);
    const double lr_factor = sched.factor(step);  // ∈ [0, 1], times each base learning rate
    double norm = 0;
    const double loss = engine->step(batch, lr_factor, tcfg.grad_clip, &norm);
    // [end]
    if (!std::isfinite(loss)) diverged(step + 1, "loss", loss);
    if (!std::isfinite(norm)) diverged(step + 1, "gradient norm", norm);
    res.step_seconds += std::chrono::duration<double>(Clock::now() - step_t0).count();
    const double lr = sched.at(step);  // AdamW's (SGD's) learning rate, for the log
    step++;
    const StepRecord rec{step, loss, lr, lr_factor, norm};
    res.steps.push_back(rec);
    if (opts.on_step) opts.on_step(rec);
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const double tok_s = double(step - start) * B * Tn / elapsed;
    const double spike_median = spikes.check(loss);
    progress.step(rec, tok_s, elapsed / (step - start) * (tcfg.steps - step), spike_median);
    if (files) {
      json line{{"step", step},           {"loss", loss},      {"lr", lr},
                {"lr_factor", lr_factor}, {"grad_norm", norm}, {"tok_per_s", tok_s}};
      if (spike_median > 0) line["spike"] = true;
      metrics->write(line);
    }
    if (tcfg.eval_every > 0 && step % tcfg.eval_every == 0 && step < tcfg.steps) val(step);
    if (tcfg.ckpt_every > 0 && step % tcfg.ckpt_every == 0) save(step);
    if (opts.stop_at > 0 && step >= opts.stop_at) break;
  }
  res.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.tokens_per_second = res.seconds > 0 ? double(step - start) * B * Tn / res.seconds : 0;
  res.last_step = step;
  res.finished = step >= tcfg.steps;
  if (res.finished && (res.val.empty() || res.val.back().first != step)) val(step);
  save(step);
  sync_host();
  if (res.finished && opts.sample.length > 0) {
    Rng srng(derive_seed(tcfg.seed, 2));
    res.sample = generate(model, opts.prompt, opts.sample, srng);
    if (files) std::ofstream(opts.out_dir + "/sample.txt") << opts.prompt << res.sample;
  }
  return res;
}

}  // namespace scalevec
