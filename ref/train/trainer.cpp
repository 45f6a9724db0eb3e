#include "trainer.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "../common.h"
#include "../rng.h"
#include "checkpoint.h"
#include "optim.h"
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
      [&](const Batch& b, int n) { return double(model.forward(b.inputs.data(), b.targets.data(), n, Tn)); },
      split, Tn, B, batches);
}
template double evaluate<float>(Transformer<float>&, const std::vector<uint8_t>&, int, int);
template double evaluate<double>(Transformer<double>&, const std::vector<uint8_t>&, int, int);

// Progress on stderr: an in-place line on a terminal, every ~5% of the run otherwise.
class Progress {
 public:
  Progress(bool on, int total) : on_(on), tty_(isatty(2)), total_(total) {}
  void step(const StepRecord& r, double tok_s, double eta) {
    if (!on_) return;
    const int every = std::max(1, total_ / 20);
    if (!tty_ && r.step % every != 0 && r.step != total_) return;
    fmt::print(stderr, "{}step {:>5}/{} | loss {:.4f} | lr {:.2e} | {:.1f}k tok/s | ETA {}{}",
               tty_ ? "\r" : "", r.step, total_, r.loss, r.lr, tok_s / 1e3, format_duration(eta),
               tty_ ? "   " : "\n");
  }
  void line(const std::string& s) {
    if (on_) fmt::print(stderr, "{}{}\n", tty_ ? "\r" : "", s);
  }

 private:
  bool on_, tty_;
  int total_;
};

// Resuming: configs must agree, except that a run may be extended (more steps) and its data file
// may have moved (the data's checksum is compared instead of its path).
static void check_resume(const TrainConfig& saved, const TrainConfig& want, const std::string& dir) {
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
  if (opts.resume) {
    std::string model_crc;
    const int64_t mstep = load_model(model_path(opts.out_dir), model, &model_crc);
    TrainState st = load_state(state_path(opts.out_dir), *opt);
    require(st.step == mstep && st.model_crc32 == model_crc,
            "'{}': state.safetensors (step {}) does not belong to model.safetensors (step {}): "
            "they come from different saves", opts.out_dir, st.step, mstep);
    require(st.corpus_crc32 == data.crc32,
            "'{}' was trained on other data than {} (checksum {} vs {}): resume with the same data",
            opts.out_dir, data.source, st.corpus_crc32, data.crc32);
    check_resume(st.train, tcfg, opts.out_dir);
    require(st.step <= tcfg.steps, "'{}' is at step {}, past --steps {}", opts.out_dir, st.step, tcfg.steps);
    start = (int)st.step;
    data_rng.state = st.data_rng;
  } else {
    model.init(derive_seed(tcfg.seed, 0));
    if (files) std::filesystem::create_directories(opts.out_dir);
  }
  std::ofstream metrics;
  if (files) {
    metrics.open(opts.out_dir + "/metrics.jsonl", opts.resume ? std::ios::app : std::ios::trunc);
    require(metrics.good(), "cannot write '{}/metrics.jsonl'", opts.out_dir);
  }
  const std::unique_ptr<StepEngine> engine = (opts.engine ? opts.engine : make_cpu_engine)(model, *opt);
  auto sync_host = [&] { engine->store(model.params, *opt); };  // the record up to date
  auto save = [&](int step) {
    if (!files) return;
    sync_host();
    const std::string crc = save_model(model_path(opts.out_dir), model, step);
    save_state(state_path(opts.out_dir), *opt, TrainState{step, data_rng.state, tcfg, crc, data.crc32});
  };

  const Schedule sched = tcfg.lr_schedule();
  const int B = tcfg.batch, Tn = mcfg.context;
  Progress progress(opts.progress, tcfg.steps);
  TrainResult res;
  Batch batch;
  const auto t0 = Clock::now();
  auto val = [&](int step) {
    const double v = evaluate_with([&](const Batch& b, int n) { return engine->loss(b, n); }, data.val,
                                   Tn, B, tcfg.eval_batches);
    res.val.push_back({step, v});
    progress.line(fmt::format("step {:>5}: val loss {:.4f}", step, v));
    if (files) metrics << json{{"step", step}, {"val_loss", v}}.dump() << "\n" << std::flush;
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
    res.step_seconds += std::chrono::duration<double>(Clock::now() - step_t0).count();
    const double lr = sched.at(step);  // AdamW's (SGD's) learning rate, for the log
    step++;
    const StepRecord rec{step, loss, lr, lr_factor, norm};
    res.steps.push_back(rec);
    if (opts.on_step) opts.on_step(rec);
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const double tok_s = double(step - start) * B * Tn / elapsed;
    progress.step(rec, tok_s, elapsed / (step - start) * (tcfg.steps - step));
    if (files)
      metrics << json{{"step", step}, {"loss", loss}, {"lr", lr}, {"lr_factor", lr_factor},
                      {"grad_norm", norm}, {"tok_per_s", tok_s}}.dump() << "\n";
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
