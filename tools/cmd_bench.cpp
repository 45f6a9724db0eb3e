// scalevec bench: training throughput of the CPU reference on the tiny and small presets, side by
// side with the same model written in PyTorch (tools/torch_ref.py), on the same weights, the same
// batch and the same number of threads. One invocation measures both and prints the ratio.
//
// What a step is, on both sides: forward on a fixed batch, zero the gradients, backward, clip the
// global gradient norm, one AdamW update (the body of the loop in ref/train/trainer.cpp, minus
// drawing a new batch). The step time is the median over --steps steps after --warmup untimed
// ones. Model FLOP/s = Transformer::flops_per_token(T) * tokens/s (6 FLOPs per matrix weight per
// token for forward + backward, plus attention's 12·L·T·C), the same count for both sides.
//
// The PyTorch side also reports the loss of the initial weights on the batch, which must equal
// ours to float32 round-off: the two programs are then known to compute the same model.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "ref/common.h"
#include "ref/ops/blas.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"
#include "ref/train/data.h"
#include "ref/train/optim.h"
#include "ref/train/safetensors.h"
#include "gpu/precision.h"  // header-only: the precision names and roundoffs, in any build

namespace scalevec {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string presets = "tiny,small";
  std::string threads = "0";  // a list: each count is measured in turn (1,2 prints the scaling)
  int steps = 5, warmup = 2, rounds = 3;
  bool no_torch = false;
  std::string python = SCALEVEC_PYTHON;
  std::string json_out;
  std::string keep_dir;  // "" = temporary directories, removed at the end
  DeviceChoice where;    // cpu | cuda, and on cuda the precision of the matrix products, both sides
  bool torch_compile = false;  // also time PyTorch with torch.compile
  double peak_tflops = 0;      // > 0: print model FLOP utilisation against this peak
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One side's measurement: the timed steps of every round, then their summary.
struct Timing {
  double loss0 = 0;                         // loss of the initial weights on the batch
  std::vector<double> times;                // every timed step in seconds, rounds in order
  std::vector<double> round_medians;        // median step time of each round
  double step_s = 0, min_s = 0, max_s = 0;  // median, fastest and slowest timed step
  double tokens_per_s = 0, flops_per_s = 0;

  void add_round(const std::vector<double>& t) {
    times.insert(times.end(), t.begin(), t.end());
    round_medians.push_back(median(t));
  }
  void summarize(double tokens_per_step, double flops_per_token) {
    step_s = median(times);
    min_s = *std::min_element(times.begin(), times.end());
    max_s = *std::max_element(times.begin(), times.end());
    tokens_per_s = tokens_per_step / step_s;
    flops_per_s = flops_per_token * tokens_per_s;
  }
  json to_json() const {
    return {{"loss", loss0},
            {"step_s", step_s},
            {"step_s_min", min_s},
            {"step_s_max", max_s},
            {"round_step_s", round_medians},
            {"tokens_per_s", tokens_per_s},
            {"flops_per_s", flops_per_s}};
  }
};

// Runs a /bin/sh command; returns its stdout and sets *status to its exit status (-1 if it did
// not exit normally). stderr is not captured: the child's progress lines reach the terminal.
std::string capture(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  require(p != nullptr, "cannot run '{}'", cmd);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// The environment PyTorch runs in: the OpenMP build of OpenBLAS first on the library path (it
// shares libgomp's pool with torch's own OpenMP loops, like ours does) and our thread count. The
// spin count scalevec chooses for itself (ref/common.h, configure_runtime) is taken away
// again: PyTorch runs with libgomp's own default, as a user starts it.
std::string python_env(int threads) {
  const bool ours = std::getenv("SCALEVEC_DEFAULT_SPINCOUNT") != nullptr;
  return fmt::format(
      "{}LD_LIBRARY_PATH={}\"${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\" OMP_NUM_THREADS={} ",
      ours ? "env -u GOMP_SPINCOUNT -u SCALEVEC_DEFAULT_SPINCOUNT " : "",
      shell_quote(SCALEVEC_OPENBLAS_LIBDIR), threads);
}

// The machine's matrix-product ceiling at the current thread count: GFLOP/s of a large square
// sgemm (kCeilingN³, 2·n³ FLOPs) through the same gemm<float> and BLAS as the model, the median of
// three calls after one untimed. Measured in every round, beside the steps it is compared with.
constexpr int kCeilingN = 2048;
double sgemm_flops_per_s() {
  static std::vector<float> A, B, C;
  const size_t n = kCeilingN;
  if (A.empty()) {
    A.resize(n * n), B.resize(n * n), C.resize(n * n);
    Rng rng(7);
    for (auto& x : A) x = float(rng.uniform() - 0.5);
    for (auto& x : B) x = float(rng.uniform() - 0.5);
  }
  std::vector<double> t;
  for (int i = 0; i < 4; i++) {
    const auto t0 = Clock::now();
    gemm<float>(false, true, kCeilingN, kCeilingN, kCeilingN, 1.0f, A.data(), kCeilingN, B.data(),
                kCeilingN, 0.0f, C.data(), kCeilingN);
    if (i > 0) t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 2.0 * double(n) * n * n / median(t);
}

// The PyTorch peer in the source tree; SCALEVEC_SOURCE_DIR in the environment overrides the tree
// this binary was built from (a binary carried to another machine, see tools/gpu-check.sh).
std::string torch_script() {
  const char* env = std::getenv("SCALEVEC_SOURCE_DIR");
  return std::string(env && *env ? env : SCALEVEC_SOURCE_DIR) + "/tools/torch_ref.py";
}

// Fails early, in one line, when the PyTorch side cannot run. Returns torch's version.
std::string check_torch(const std::string& python, int threads) {
  require(fs::exists(torch_script()),
          "PyTorch reference '{}' not found (pass --no-torch to "
          "benchmark scalevec alone)",
          torch_script());
  int status = 0;
  std::string v = capture(python_env(threads) + shell_quote(python) +
                              " -c 'import torch; print(torch.__version__)' 2>/dev/null",
                          &status);
  v.erase(std::remove(v.begin(), v.end(), '\n'), v.end());
  require(status == 0 && !v.empty(),
          "'{}' cannot import torch (install Debian's python3-torch and use /usr/bin/python3 via "
          "--python, or pass --no-torch to benchmark scalevec alone)",
          python);
  return v;
}

std::vector<std::string> split_presets(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  require(!out.empty(), "--presets '{}' names no preset (expected a list like tiny,small)", s);
  for (const auto& p : out)
    require(p == "tiny" || p == "small" || p == "gpt2",
            "unknown preset '{}' in --presets (expected {})", p, model_preset_names());
  return out;
}

// A fixed batch: B random windows of the default corpus (as training sees), or random bytes if
// the corpus is not installed (the timing does not depend on the token values).
Batch bench_batch(int B, int Tn, uint64_t seed, std::string* source) {
  Batch batch;
  Rng rng(derive_seed(seed, 1));
  try {
    const TextData data = load_data("", Tn);
    sample_batch(batch, data.train, B, Tn, rng);
    *source = data.source;
  } catch (const Error& e) {
    batch.B = B, batch.T = Tn;
    batch.inputs.resize((size_t)B * Tn), batch.targets.resize((size_t)B * Tn);
    for (auto& t : batch.inputs) t = (int32_t)rng.below(256);
    for (auto& t : batch.targets) t = (int32_t)rng.below(256);
    *source = "random bytes (" + std::string(e.what()) + ")";
  }
  return batch;
}

class Progress {
 public:
  void show(const std::string& s) {
    if (tty_)
      fmt::print(stderr, "\r{:<78}", s);
    else
      fmt::print(stderr, "{}\n", s);
  }
  void done() {
    if (tty_) fmt::print(stderr, "\n");
  }

 private:
  bool tty_ = isatty(2);
};

// Times `step` (one training step, returning its loss): --warmup untimed calls, then --steps
// timed ones, with a progress line. Returns the times of the timed steps.
std::vector<double> time_steps(const std::function<double()>& step, const BenchArgs& a,
                               const std::string& what, const std::string& impl) {
  Progress progress;
  std::vector<double> times;
  for (int i = 0; i < a.warmup + a.steps; i++) {
    const auto t0 = Clock::now();
    const double loss = step();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    if (i >= a.warmup) times.push_back(dt);
    progress.show(fmt::format("[bench] {}: {} {} {}/{}: {:.1f} ms, loss {:.4f}", what, impl,
                              i < a.warmup ? "warmup" : "step", i + 1, a.warmup + a.steps, dt * 1e3,
                              loss));
  }
  progress.done();
  return times;
}

// The same steps in PyTorch: torch_ref.py bench on the checkpoint and batch in `dir`, a fresh
// process each round, starting from the initial weights. Returns its initial loss and step times.
std::pair<double, std::vector<double>> time_torch(const std::string& dir, const TrainConfig& tcfg,
                                                  const BenchArgs& a, int threads, bool compile) {
  const std::string cmd = fmt::format(
      "{}{} {} bench --dir {} --steps {} --warmup {} --threads {} --lr {:.17g} --beta1 {:.17g} "
      "--beta2 {:.17g} --eps {:.17g} --weight-decay {:.17g} --wd-policy {} --grad-clip {:.17g}{}",
      python_env(threads), shell_quote(a.python), shell_quote(torch_script()), shell_quote(dir),
      a.steps, a.warmup, threads, tcfg.lr, tcfg.beta1, tcfg.beta2, tcfg.adam_eps, tcfg.weight_decay,
      wd_policy_name(tcfg.wd_policy), tcfg.grad_clip, tcfg.wd_embed ? " --decay-embeddings" : "");
  const std::string full = cmd + " --device " + a.where.device + " --precision " +
                           a.where.precision + (compile ? " --compile" : "");
  int status = 0;
  const std::string out = capture(full, &status);
  require(status == 0, "the PyTorch benchmark failed (exit {}): {}", status, full);
  // The result is the last line of stdout, one JSON object.
  const size_t start = out.rfind('{');
  require(start != std::string::npos, "no JSON result from the PyTorch benchmark: '{}'", out);
  json j;
  try {
    j = json::parse(out.substr(start));
  } catch (const json::exception& e) {
    throw Error(fmt::format("bad JSON from the PyTorch benchmark ({}): '{}'", e.what(), out));
  }
  try {
    return {j.at("loss").get<double>(), j.at("step_times").get<std::vector<double>>()};
  } catch (const json::exception& e) {
    throw Error(
        fmt::format("unexpected JSON from the PyTorch benchmark ({}): '{}'", e.what(), out));
  }
}

// Where a preset's checkpoint and batch go: a fresh temporary directory (removed on exit), or
// --keep DIR/<preset> so that `torch_ref.py` can be rerun on them by hand (e.g. under a profiler).
struct WorkDir {
  std::string path;
  bool temporary = true;
  explicit WorkDir(const std::string& keep) {
    if (!keep.empty()) {
      path = keep, temporary = false;
      fs::create_directories(path);
      return;
    }
    std::string tmpl = (fs::temp_directory_path() / "scalevec-bench-XXXXXX").string();
    require(mkdtemp(tmpl.data()) != nullptr, "cannot create a temporary directory in {}",
            fs::temp_directory_path().string());
    path = tmpl;
  }
  ~WorkDir() {
    std::error_code ec;
    if (temporary) fs::remove_all(path, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
};

// Loss parity at the initial weights. In fp32 both sides compute the same float32 model, so the
// tolerance is a multiple of float32's unit roundoff (the same rule as `torch_ref.py check`). With
// tf32 or bf16 matrix products the two round differently (PyTorch's autocast also rounds each
// product's output to bf16), so the multiple is of the operands' roundoff (2^-10 for tf32, whose
// rounding cuBLAS leaves open; 2^-8 for bf16): still far below what a different model gives.
double loss_tolerance(double loss, const std::string& precision) {
  const gpu::Precision p = gpu::parse_precision(precision);
  return (p == gpu::Precision::fp32 ? 256.0 : 8.0) * gpu::tolerance_roundoff(p) *
         std::max(1.0, std::fabs(loss));
}

struct PresetResult {
  std::string preset, batch_source;
  int B = 0, Tn = 0;
  size_t params = 0;
  double flops_per_token = 0;
  Timing ours, torch, torch_compiled;
  bool has_torch = false, has_compiled = false;
  std::string device;
  int threads = 0;
  std::vector<double> round_ceilings;  // CPU: the sgemm ceiling measured in each round (FLOP/s)
  double ceiling = 0;                  // their median; 0 on the GPU (see --peak-tflops)
};

PresetResult bench_preset(const std::string& name, const BenchArgs& a, int threads) {
  const ModelConfig mcfg = model_preset(name);
  const TrainConfig tcfg = train_preset(name);
  PresetResult r;
  r.preset = name, r.B = tcfg.batch, r.Tn = mcfg.context;
  r.device = a.where.device, r.threads = threads;
  // The host model holds the weights (initialised as the trainer does, saved for PyTorch); it
  // needs activations only where the engine steps it (the CPU).
  Transformer<float> model(mcfg, a.where.steps_host_model() ? r.B : 0);
  model.init(derive_seed(tcfg.seed, 0));  // the trainer's initialization
  r.params = model.layout().total();
  r.flops_per_token = model.flops_per_token(r.Tn);
  const Batch batch = bench_batch(r.B, r.Tn, tcfg.seed, &r.batch_source);
  fmt::print(stderr, "[bench] {}: {} parameters, batch {}x{} from {}\n", name, r.params, r.B, r.Tn,
             r.batch_source);
  TrainConfig t = tcfg;
  t.optimizer = OptimizerKind::AdamW;  // both sides: AdamW at the preset's peak learning rate
  const auto opt = make_optimizer<float>(model.layout(), t);
  const std::unique_ptr<StepEngine> engine = make_engine(a.where, t)(model, *opt);
  const double loss0 = engine->loss(batch, r.B);

  // Save the initial weights and the batch before our steps change the weights.
  WorkDir dir(a.keep_dir.empty() ? "" : a.keep_dir + "/" + name);
  if (!a.no_torch || !a.keep_dir.empty()) {
    save_model(model_path(dir.path), model, 0);
    StFile f;
    f.tensors.push_back({"inputs", make_tensor(batch.inputs.data(), {r.B, r.Tn})});
    f.tensors.push_back({"targets", make_tensor(batch.targets.data(), {r.B, r.Tn})});
    write_safetensors(dir.path + "/batch.safetensors", f);
  }
  // Rounds alternate the two sides, and which one goes first, so that a slow phase of a shared
  // machine (other jobs, other tenants of the host, the first seconds after idling) is less
  // likely to hit only one of them.
  r.ours.loss0 = loss0;
  r.has_torch = !a.no_torch;
  r.has_compiled = r.has_torch && a.torch_compile;
  // Our training step: the trainer's step on a fixed batch, at the preset's peak learning rate
  // (factor 1; the schedule costs nothing and changes no timing). The engine's step returns when
  // its work is done (on the GPU: every kernel), so the time covers all of it.
  const std::function<double()> step = [&] {
    double norm = 0;
    return engine->step(batch, 1.0, tcfg.grad_clip, &norm);
  };
  auto run_ours = [&](const std::string& what) {
    return time_steps(step, a, what, "scalevec " + a.where.device);
  };
  for (int round = 1; round <= a.rounds; round++) {
    const std::string what =
        a.rounds > 1 ? fmt::format("{} round {}/{}", name, round, a.rounds) : name;
    auto run_torch = [&] {
      fmt::print(stderr, "[bench] {}: PyTorch ({})\n", what, torch_script());
      auto [torch_loss, times] = time_torch(dir.path, tcfg, a, threads, false);
      r.torch.loss0 = torch_loss;
      r.torch.add_round(times);
      if (r.has_compiled) {
        fmt::print(stderr, "[bench] {}: PyTorch with torch.compile\n", what);
        try {  // torch.compile needs a working Triton; without it the eager row still stands
          auto [closs, ctimes] = time_torch(dir.path, tcfg, a, threads, true);
          r.torch_compiled.loss0 = closs;
          r.torch_compiled.add_round(ctimes);
        } catch (const Error& e) {
          fmt::print(stderr, "[bench] {}: torch.compile failed, its row is left out: {}\n", what,
                     e.what());
          r.has_compiled = false;
        }
      }
    };
    const bool torch_first = r.has_torch && round % 2 == 0;
    if (torch_first) run_torch();
    if (a.where.device == "cpu") {
      fmt::print(stderr, "[bench] {}: matrix-product ceiling (sgemm {}^3)\n", what, kCeilingN);
      r.round_ceilings.push_back(sgemm_flops_per_s());
    }
    r.ours.add_round(run_ours(what));
    if (r.has_torch && !torch_first) run_torch();
  }
  const double tokens = double(r.B) * r.Tn;
  r.ours.summarize(tokens, r.flops_per_token);
  if (r.has_torch) r.torch.summarize(tokens, r.flops_per_token);
  if (r.has_compiled) r.torch_compiled.summarize(tokens, r.flops_per_token);
  if (!r.round_ceilings.empty()) r.ceiling = median(r.round_ceilings);
  return r;
}

void print_table(const std::vector<PresetResult>& results, int threads, const BenchArgs& a) {
  const bool cuda = a.where.device == "cuda";
  fmt::print(
      "\nscalevec bench: {}; median of {} training steps ({} round{} of {} after {} "
      "warmup); model FLOPs/token = 6*(matrix+head weights) + 12*L*T*C\n",
      cuda ? engine_description(a.where)
           : fmt::format("{} threads, {}, {}", threads, blas_kernel_description(),
                         openmp_wait_description()),
      a.steps * a.rounds, a.rounds, a.rounds > 1 ? "s" : "", a.steps, a.warmup);
  const bool ceil = !cuda && !results.empty() && results[0].ceiling > 0;
  if (ceil) {
    std::string per;
    for (const auto& r : results)
      per += fmt::format("{}{} {:.1f}", per.empty() ? "" : ", ", r.preset, r.ceiling / 1e9);
    fmt::print(
        "matrix-product ceiling: sgemm {}x{}x{} through the same BLAS and threads, median of 3 "
        "calls in each round, GFLOP/s: {}; 'ceil' = GFLOP/s / ceiling\n",
        kCeilingN, kCeilingN, kCeilingN, per);
  }
  const bool mfu = a.peak_tflops > 0;
  fmt::print("{:<6} {:>8} {:>8} {:<15} {:>9} {:>9} {:>10} {:>9} {:>9}{}{}\n", "preset", "params",
             "batch", "impl", "step ms", "min ms", "tok/s", "GFLOP/s", "loss@init",
             ceil ? fmt::format(" {:>6}", "ceil") : "", mfu ? fmt::format(" {:>6}", "MFU") : "");
  for (const auto& r : results) {
    auto row = [&](const std::string& impl, const Timing& t, const std::string& pre) {
      fmt::print(
          "{:<6} {:>8} {:>8} {:<15} {:>9.1f} {:>9.1f} {:>10.0f} {:>9.1f} {:>9.5f}{}{}\n", pre,
          pre.empty() ? "" : fmt::format("{:.2f}M", r.params / 1e6),
          pre.empty() ? "" : fmt::format("{}x{}", r.B, r.Tn), impl, t.step_s * 1e3, t.min_s * 1e3,
          t.tokens_per_s, t.flops_per_s / 1e9, t.loss0,
          ceil ? fmt::format(" {:>5.1f}%", 100 * t.flops_per_s / r.ceiling) : "",
          mfu ? fmt::format(" {:>5.1f}%", 100 * t.flops_per_s / (a.peak_tflops * 1e12)) : "");
    };
    auto ratio = [&](const std::string& label, const Timing& peer) {
      const double diff = std::fabs(r.ours.loss0 - peer.loss0);
      fmt::print("{:<6} {:>8} {:>8} {:<15} {:>8.3f}x {:>9} {:>9.3f}x {:>9} |diff| {:.2e} {}\n", "",
                 "", "", label, r.ours.step_s / peer.step_s, "",
                 r.ours.tokens_per_s / peer.tokens_per_s, "", diff,
                 diff <= loss_tolerance(r.ours.loss0, a.where.precision) ? "ok" : "MISMATCH");
    };
    row(cuda ? "scalevec-cuda" : "scalevec", r.ours, r.preset);
    if (!r.has_torch) continue;
    row("pytorch", r.torch, "");
    if (r.has_compiled) row("pytorch-compile", r.torch_compiled, "");
    ratio("ratio", r.torch);
    if (r.has_compiled) ratio("ratio-compile", r.torch_compiled);
  }
  if (std::any_of(results.begin(), results.end(), [](const auto& r) { return r.has_torch; }))
    fmt::print(
        "ratio = scalevec / pytorch: step time below 1x and tok/s above 1x mean scalevec "
        "is faster; |diff| = loss difference at the initial weights\n");
}

// With more than one thread count: each preset's median step time per count and the speed-up from
// the first count to each other (step time at the first / step time at this one), for both sides,
// and the same for the sgemm ceiling (its GFLOP/s, speed-up = GFLOP/s at N / at the first).
void print_scaling(const std::vector<std::vector<PresetResult>>& runs) {
  if (runs.size() < 2) return;
  const int t0 = runs[0][0].threads;
  std::string head;
  for (const auto& run : runs) head += fmt::format(" {:>9}", fmt::format("{} thr", run[0].threads));
  for (size_t i = 1; i < runs.size(); i++)
    head += fmt::format(" {:>9}", fmt::format("{}->{}", t0, runs[i][0].threads));
  fmt::print(
      "\nthread scaling: median step time (ms) or ceiling (GFLOP/s) at each count, and the "
      "speed-up from {} thread{}\n",
      t0, t0 == 1 ? "" : "s");
  fmt::print("{:<6} {:<15}{}\n", "preset", "impl", head);
  for (size_t p = 0; p < runs[0].size(); p++) {
    // time(r): seconds per unit of work (a step, a FLOP), so the speed-up is time(first) /
    // time(this); shown(r): what the cell prints.
    auto line = [&](const std::string& impl, auto time, auto shown) {
      std::string cells;
      for (const auto& run : runs) cells += fmt::format(" {:>9.1f}", shown(run[p]));
      for (size_t i = 1; i < runs.size(); i++)
        cells += fmt::format(" {:>8.2f}x", time(runs[0][p]) / time(runs[i][p]));
      fmt::print("{:<6} {:<15}{}\n", impl == "scalevec ms" ? runs[0][p].preset : "", impl, cells);
    };
    auto ours = [](const PresetResult& r) { return r.ours.step_s; };
    auto torch = [](const PresetResult& r) { return r.torch.step_s; };
    auto ms = [](auto f) { return [f](const PresetResult& r) { return f(r) * 1e3; }; };
    line("scalevec ms", ours, ms(ours));
    if (runs[0][p].has_torch) line("pytorch ms", torch, ms(torch));
    if (runs[0][p].ceiling > 0)
      line(
          "sgemm GFLOP/s", [](const PresetResult& r) { return 1.0 / r.ceiling; },
          [](const PresetResult& r) { return r.ceiling / 1e9; });
  }
}

// One thread count's results (the top level of the file holds the first count's, and "by_threads"
// every count's).
json results_json(const std::vector<PresetResult>& results) {
  json out = json::array();
  for (const auto& r : results) {
    json e = {{"preset", r.preset},
              {"batch", {r.B, r.Tn}},
              {"params", r.params},
              {"flops_per_token", r.flops_per_token},
              {"batch_source", r.batch_source},
              {"scalevec", r.ours.to_json()}};
    if (r.ceiling > 0) {
      e["ceiling_flops_per_s"] = r.ceiling;
      e["round_ceiling_flops_per_s"] = r.round_ceilings;
      e["ceiling_share"] = r.ours.flops_per_s / r.ceiling;
    }
    if (r.has_torch) {
      e["torch"] = r.torch.to_json();
      e["ratio_tokens_per_s"] = r.ours.tokens_per_s / r.torch.tokens_per_s;
      e["ratio_step_time"] = r.ours.step_s / r.torch.step_s;
      e["loss_diff"] = r.ours.loss0 - r.torch.loss0;
      if (r.ceiling > 0) e["torch_ceiling_share"] = r.torch.flops_per_s / r.ceiling;
    }
    if (r.has_compiled) {
      e["torch_compile"] = r.torch_compiled.to_json();
      e["ratio_tokens_per_s_compile"] = r.ours.tokens_per_s / r.torch_compiled.tokens_per_s;
    }
    out.push_back(e);
  }
  return out;
}

json to_json(const std::vector<std::vector<PresetResult>>& runs, const BenchArgs& a,
             const std::string& torch_version) {
  json j = {{"threads", runs[0].empty() ? 0 : runs[0][0].threads},
            {"steps", a.steps},
            {"warmup", a.warmup},
            {"rounds", a.rounds},
            {"torch_version", torch_version},
            {"device", a.where.device},
            {"precision", a.where.precision},
            {"blas", blas_kernel_description()},
            {"openmp_wait", openmp_wait_description()},
            {"results", results_json(runs[0])},
            {"by_threads", json::array()}};
  if (a.where.device == "cuda") j["device_name"] = engine_description(a.where);
  if (a.peak_tflops > 0) j["peak_tflops"] = a.peak_tflops;
  for (const auto& run : runs)
    j["by_threads"].push_back(
        {{"threads", run.empty() ? 0 : run[0].threads}, {"results", results_json(run)}});
  return j;
}

}  // namespace

Action add_bench(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Measure training speed (tokens/s, model FLOP/s) on the tiny and small presets (or gpt2 on a "
      "GPU), and the same model in PyTorch on the same batch and device; prints the ratio and the "
      "loss parity");
  cmd->footer(
      "A step is: forward on a fixed batch (the preset's training batch B x context, drawn from "
      "the default corpus), zero_grad, backward, global gradient-norm clipping and one AdamW "
      "update, as in `scalevec train`. Reported: the median step time over --steps steps after "
      "--warmup untimed ones (times --rounds), tokens/s = B*T / step time, and model FLOP/s = "
      "tokens/s * "
      "(6 * matrix weights + 12*L*T*C). PyTorch (tools/torch_ref.py, run with --python, "
      "LD_LIBRARY_PATH set to the OpenMP OpenBLAS and OMP_NUM_THREADS = --threads) starts from the "
      "same checkpoint; its loss at the initial weights must equal ours to float32 round-off "
      "(exit 1 otherwise).");
  auto a = std::make_shared<BenchArgs>();
  cmd->add_option("--presets", a->presets, "comma-separated presets to measure")
      ->capture_default_str();
  cmd->add_option("--threads", a->threads,
                  threads_help("CPU threads for both sides, or a comma-separated list of counts "
                               "measured in turn (1,2 adds a thread-scaling table)"))
      ->check(thread_counts())
      ->capture_default_str();
  cmd->add_option("--steps", a->steps, "timed training steps per round, preset and side")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "untimed steps before them")
      ->check(at_least(0))
      ->capture_default_str();
  cmd->add_option("--rounds", a->rounds,
                  "alternate scalevec and PyTorch this many times per preset (more robust on a "
                  "noisy machine); the median is over all rounds' steps")
      ->check(at_least(1))
      ->capture_default_str();
  cmd->add_flag("--no-torch", a->no_torch, "measure scalevec only (no PyTorch comparison)");
  cmd->add_option("--python", a->python, "Python interpreter with PyTorch")->capture_default_str();
  cmd->add_option("--json", a->json_out, "also write the results to this JSON file");
  add_device_options(
      cmd, a->where,
      "where scalevec and PyTorch train: cpu, or cuda (the GPU mirror against PyTorch "
      "on the same GPU; needs a build with CUDA and a device)",
      "matrix products on the GPU, the same on both sides: fp32 (PyTorch without "
      "TF32), tf32 (PyTorch with TF32 allowed) or bf16 (ours: bf16 operands, fp32 "
      "sums and outputs; PyTorch: autocast to bfloat16). cpu is fp32 only");
  cmd->add_flag(
      "--torch-compile", a->torch_compile,
      "also time PyTorch with torch.compile (a third row; compiling happens in its warmup)");
  cmd->add_option("--peak-tflops", a->peak_tflops,
                  "the device's peak FLOP/s in TFLOP/s for this precision: adds a model FLOP "
                  "utilisation (MFU) column; finite and > 0")
      ->check(finite_positive());
  cmd->add_option("--keep", a->keep_dir,
                  "keep each preset's initial checkpoint and batch in DIR/<preset> (to rerun "
                  "tools/torch_ref.py on them by hand)");

  return [=]() -> int {
    const std::vector<std::string> presets = split_presets(a->presets);
    a->where.validate();
    make_engine(a->where,
                train_preset("tiny"));  // refuses --device cuda here and now if it cannot run
    if (a->where.device == "cuda") fmt::print(stderr, "[bench] {}\n", engine_description(a->where));
    const std::vector<int> counts = parse_thread_counts(a->threads);
    set_num_threads(counts[0]);
    BusyMachineCheck(a->where, num_threads()).report();
    // Check the PyTorch side before spending minutes on ours.
    const std::string torch_version = a->no_torch ? "" : check_torch(a->python, num_threads());
    if (!a->no_torch) fmt::print(stderr, "[bench] PyTorch {} via {}\n", torch_version, a->python);
    std::vector<std::vector<PresetResult>> runs;
    for (const int n : counts) {
      set_num_threads(n);
      const int threads = num_threads();
      fmt::print(stderr, "[bench] {} threads\n", threads);
      std::vector<PresetResult> results;
      for (const auto& p : presets) results.push_back(bench_preset(p, *a, threads));
      runs.push_back(results);
    }
    for (const auto& results : runs) print_table(results, results[0].threads, *a);
    print_scaling(runs);
    if (!a->json_out.empty()) {
      std::ofstream out(a->json_out);
      out << to_json(runs, *a, torch_version).dump(2) << "\n";
      require(out.good(), "cannot write '{}'", a->json_out);
    }
    for (const auto& results : runs)
      for (const auto& r : results)
        if (r.has_torch && std::fabs(r.ours.loss0 - r.torch.loss0) >
                               loss_tolerance(r.ours.loss0, a->where.precision)) {
          fmt::print(stderr,
                     "error: {}: PyTorch's loss at the initial weights differs from ours by "
                     "{:.3e} (tolerance {:.3e}): the two programs do not compute the same model\n",
                     r.preset, std::fabs(r.ours.loss0 - r.torch.loss0),
                     loss_tolerance(r.ours.loss0, a->where.precision));
          return 1;
        }
    return 0;
  };
}

}  // namespace scalevec
