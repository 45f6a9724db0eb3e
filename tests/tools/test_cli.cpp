// The `scalevec` command line, driven as a user would drive it: the built binary is run as a child
// process and its exit status, stdout and stderr are checked.
//
// The rule these tests prove: bad input gets a clear one-line error ("error: ...", the last line
// of stderr) and a non-zero exit, never a crash or a silent default. That covers missing, empty or
// too-short data, unknown flags and out-of-range values, missing / truncated / corrupted /
// wrong-version checkpoints, checkpoints that do not match the requested model or run; and an
// interrupted run (Ctrl-C) saves a checkpoint that resumes exactly.
//
// Every run uses a tiny model (one layer, width 32) on a small generated text and one thread, so
// the whole suite takes a few seconds.
#include <atomic>
#include <thread>
#include <tuple>

#include "cli_util.h"

namespace {

using namespace cli;

// ------------------------------------------------------------------------------------------------
// Fixtures.

// The run-directory fixture (cli_util.h), plus a training that must succeed.
class Cli : public RunDirTest {
 protected:
  // Trains and asserts success.
  void train_ok(const std::string& out, const Args& extra) {
    const Result r = run(train_args(out, extra));
    ASSERT_TRUE(r.exited && r.code == 0) << r;
  }
};

// Per-step records and validation losses of a run's metrics.jsonl.
struct Metrics {
  std::map<int, json> steps;                // step -> its record (loss, lr, grad_norm, ...)
  std::vector<std::pair<int, double>> val;  // (step, val_loss) in file order
  int duplicate_steps = 0;
};

Metrics read_metrics(const fs::path& p) {
  Metrics m;
  std::ifstream f(p);
  EXPECT_TRUE(f.good()) << "no " << p;
  for (std::string line; std::getline(f, line);) {
    if (line.empty()) continue;
    const json j = json::parse(line);
    if (j.contains("val_loss")) {
      m.val.push_back({j.at("step").get<int>(), j.at("val_loss").get<double>()});
    } else if (j.contains("loss")) {
      if (!m.steps.emplace(j.at("step").get<int>(), j).second) m.duplicate_steps++;
    }
  }
  return m;
}

// ================================================================================================
// Data.

TEST_F(Cli, DataMissingFile) {
  expect_error(run(train_args("run", {"--steps", "5", "--data", path("no_such_file.txt")})),
               "does not exist");
}

TEST_F(Cli, DataEmptyFile) {
  write_file(path("empty.txt"), "");
  expect_error(run(train_args("run", {"--steps", "5", "--data", path("empty.txt")})), "empty");
}

TEST_F(Cli, DataShorterThanOneContext) {
  write_file(path("short.txt"), "only twenty bytes!!\n");  // context is 32
  expect_error(run(train_args("run", {"--steps", "5", "--data", path("short.txt")})), "too short");
}

TEST_F(Cli, DataTooShortForBothSplits) {
  // Longer than one context, but the held-out 10% is not: still an error, not a crash.
  write_file(path("short.txt"), make_text(100));
  expect_error(run(train_args("run", {"--steps", "5", "--data", path("short.txt")})), "too short");
}

TEST_F(Cli, DataIsADirectory) {
  fs::create_directory(path("adir"));
  expect_error(run(train_args("run", {"--steps", "5", "--data", path("adir")})),
               "not a regular file");
}

// ================================================================================================
// Flags.

TEST_F(Cli, UnknownFlag) {
  expect_error(run(train_args("run", {"--steps", "5", "--bogus"})), "--bogus");
}

TEST_F(Cli, NoSubcommand) { expect_error(run({}), "subcommand"); }

TEST_F(Cli, UnknownSubcommand) { expect_error(run({"frobnicate"}), "frobnicate"); }

// --device cuda: without a usable GPU (or without CUDA in the build) a one-line error that says
// why, for every command that takes it; with a GPU the short run trains.
TEST_F(Cli, DeviceCuda) {
  const Result r = run(train_args("gpu", {"--steps", "3", "--warmup", "1", "--device", "cuda"}));
  if (r.exited && r.code == 0) {
    EXPECT_TRUE(fs::exists(fs::path(path("gpu")) / "model.safetensors")) << r;
    return;
  }
  expect_error(r, "--device cuda");
  expect_error(run({"gradcheck", "--device", "cuda", "--layers", "1", "--d-model", "16", "--heads",
                    "2", "--d-ff", "16"}),
               "--device cuda");
  expect_error(run({"bench", "--device", "cuda", "--no-torch", "--presets", "tiny"}),
               "--device cuda");
}

// tf32 and bf16 are GPU precisions: on the CPU every command that takes --precision refuses them.
TEST_F(Cli, ReducedPrecisionNeedsCuda) {
  expect_error(run(train_args("run", {"--steps", "3", "--precision", "bf16"})),
               "needs --device cuda");
  expect_error(run({"gradcheck", "--precision", "tf32", "--layers", "1", "--d-model", "16",
                    "--heads", "2", "--d-ff", "16"}),
               "needs --device cuda");
  expect_error(run({"bench", "--precision", "bf16", "--no-torch", "--presets", "tiny"}),
               "needs --device cuda");
  expect_error(run({"ablate", "--out", path("abl"), "--arms", "baseline", "--precision", "bf16",
                    "--", "--steps", "3"}),
               "needs --device cuda");
  expect_error(run(train_args("run", {"--steps", "3", "--precision", "fp16"})), "fp16");
}

TEST_F(Cli, DeviceUnknown) {
  expect_error(run(train_args("run", {"--steps", "5", "--device", "tpu"})), "tpu");
}

TEST_F(Cli, LayersZero) {
  expect_error(run(train_args("run", {"--steps", "5", "--layers", "0"})), "layers");
}

TEST_F(Cli, HeadsNotDividingDModel) {
  expect_error(run(train_args("run", {"--steps", "5", "--heads", "3"})), "heads = 3");
}

TEST_F(Cli, OddHeadSize) {
  // d_model 30 / 2 heads = 15: RoPE needs an even head size.
  expect_error(run(train_args("run", {"--steps", "5", "--d-model", "30"})), "head size");
}

TEST_F(Cli, NegativeLearningRate) {
  expect_error(run(train_args("run", {"--steps", "5", "--lr", "-1"})), "lr");
}

TEST_F(Cli, BatchZero) {
  expect_error(run(train_args("run", {"--steps", "5", "--batch", "0"})), "batch");
}

TEST_F(Cli, StepsZero) { expect_error(run(train_args("run", {"--steps", "0"})), "steps"); }

TEST_F(Cli, WarmupLongerThanRun) {
  expect_error(run(train_args("run", {"--steps", "5", "--warmup", "6"})), "warmup");
}

TEST_F(Cli, WdPolicyUnknown) {
  expect_error(run(train_args("run", {"--steps", "5", "--wd-policy", "foo"})), "foo");
}

TEST_F(Cli, ScaleStrategyUnknown) {
  expect_error(run(train_args("run", {"--steps", "5", "--scale", "foo"})), "foo");
}

TEST_F(Cli, ContextOne) {
  expect_error(run(train_args("run", {"--steps", "5", "--context", "1"})), "context");
}

TEST_F(Cli, StepsNotANumber) { expect_error(run(train_args("run", {"--steps", "abc"})), "abc"); }

TEST_F(Cli, ThreadsNegative) {
  expect_error(run(train_args("run", {"--steps", "5", "--threads", "-1"})), "--threads");
}

TEST_F(Cli, StopAtZero) {
  expect_error(run(train_args("run", {"--steps", "5", "--stop-at", "0"})), "--stop-at");
}

TEST_F(Cli, SeedNegativeIsNotWrappedSilently) {
  // --seed is unsigned: "-1" must be refused, not silently become 18446744073709551615.
  expect_error(run(train_args("run", {"--steps", "2", "--seed", "-1"})), "seed");
}

TEST_F(Cli, NonFiniteAdamEps) {
  // eps = inf makes every update zero: the run "trains" without learning, silently.
  expect_error(run(train_args("run", {"--steps", "2", "--adam-eps", "inf"})), "adam_eps");
}

TEST_F(Cli, NonFiniteLearningRate) {
  expect_error(run(train_args("run", {"--steps", "2", "--lr", "nan"})), "lr");
}

TEST_F(Cli, SampleTemperatureZero) {
  train_ok("run", {"--steps", "2"});
  expect_error(run({"sample", path("run"), "--length", "4", "--temperature", "0"}), "temperature");
}

// ================================================================================================
// Input bounds: one rule per kind of value (tools/flags.h), the same in every command that takes
// it. A bad value is refused while parsing, before any work, in one line naming the flag and the
// value; the configs refuse what float32 cannot use.

const std::string kSeedRule = "must be a whole number in [0, 18446744073709551615], got '";
// gradcheck and bench on the smallest work and one thread, so that a value wrongly accepted fails
// the test fast.
const Args kGradcheck = {
    "gradcheck", "--layers", "1", "--d-model", "8", "--heads",   "2", "--d-ff",    "8", "--context",
    "8",         "--batch",  "1", "--seq",     "4", "--samples", "2", "--threads", "1"};
const Args kBench = {"bench",    "--no-torch", "--presets", "tiny", "--steps",   "1",
                     "--warmup", "0",          "--rounds",  "1",    "--threads", "1"};

TEST_F(Cli, SeedOutOfRangeIsRefusedByEveryCommand) {
  // (A tiny grid: were a seed accepted, the run would be short.)
  const Args tiny_run = Args{"--data", data_, "--steps", "2", "--warmup", "0", "--batch", "2"} +
                        kModel + Args{"--eval-batches", "1"};
  auto ablate = [&](const std::string& seeds) {
    const Args grid = {"ablate",  "--out", path("grid"), "--arms", "baseline",
                       "--seeds", seeds,   "--threads",  "1",      "--"};
    return run(grid + tiny_run);
  };
  for (const std::string bad : {"-1", "18446744073709551616", "+5", "3abc", "1e3"}) {
    const std::string message = "--seed: " + kSeedRule + bad + "'";
    expect_error(run(train_args("run", {"--steps", "2", "--seed", bad})), message);
    expect_error(run({"sample", path("run"), "--seed", bad}), message);
    expect_error(run(kGradcheck + Args{"--seed", bad}), message);
    expect_error(run({"trace", "--seed", bad}), message);
    expect_error(ablate(bad), "--seeds '" + bad + "'");  // ("-1" reads as a range from "" to 1)
  }
  expect_error(ablate("1,18446744073709551616"), "'18446744073709551616' is not a seed");
  EXPECT_FALSE(fs::exists(path("run"))) << "a refused run wrote nothing";
  // The largest seed is a seed: neither wrapped nor refused.
  train_ok("run", {"--steps", "2", "--seed", "18446744073709551615"});
  EXPECT_OK(run({"sample", path("run"), "--length", "4", "--threads", "1", "--seed",
                 "18446744073709551615"}));
}

TEST_F(Cli, SampleTemperatureNotFiniteOrTooSmall) {
  for (const std::string bad : {"inf", "nan", "-1", "1e-300", "1e39"}) {
    const std::string rule =
        "--temperature: must be a finite number > 0 (from 1.2e-38 to 3.4e38, the normal "
        "float32 range), got '" +
        bad + "'";
    expect_error(run({"sample", path("run"), "--length", "4", "--temperature", bad}), rule);
    // train's end-of-run sample: refused before training, not after it
    expect_error(run(train_args("run", {"--steps", "2", "--temperature", bad})), rule);
  }
  expect_error(run(train_args("run", {"--steps", "2", "--sample-len", "-1"})), "--sample-len");
  EXPECT_FALSE(fs::exists(path("run")));
}

TEST_F(Cli, FloatFieldsThatFloat32CannotUse) {
  // --norm-eps 1e-300 is an eps of 0 in float32: NaN from step 2.
  expect_error(run(train_args("run", {"--steps", "2", "--norm-eps", "1e-300"})),
               "norm_eps = 1e-300 is not usable in float32: it is 0 there");
  expect_error(run(train_args("run", {"--steps", "2", "--adam-eps", "1e-50"})),
               "adam_eps = 1e-50 is not usable in float32: it is 0 there");
  expect_error(run(train_args("run", {"--steps", "2", "--beta2", "0.99999999"})),
               "beta2 = 0.99999999 is not usable in float32: it is 1 there");
  expect_error(run(train_args("run", {"--steps", "2", "--rope-base", "1e39"})),
               "rope_base = 1e+39 is not usable in float32: it is inf there");
  expect_error(run(kGradcheck + Args{"--norm-eps", "1e-300"}), "norm_eps = 1e-300");
  EXPECT_FALSE(fs::exists(path("run"))) << "a refused run wrote nothing";
}

TEST_F(Cli, GradcheckTolerancesMustBeUsable) {
  for (const std::string bad : {"inf", "nan", "-1e-10"})
    expect_error(run(kGradcheck + Args{"--atol", bad}),
                 "--atol: must be a finite absolute tolerance >= 0, got '" + bad + "'");
  const std::string rule =
      "must be a relative tolerance in (0, 1) (at 1 or more a result of all zeros passes)";
  for (const std::string bad : {"inf", "nan", "0", "1", "-1e-6"}) {
    expect_error(run(kGradcheck + Args{"--rtol", bad}), "--rtol: " + rule + ", got '" + bad + "'");
    expect_error(run(kGradcheck + Args{"--device-rtol", bad}), rule + ", got '" + bad + "'");
  }
  for (const std::string bad : {"inf", "nan", "0"})
    expect_error(run(kGradcheck + Args{"--h", bad}),
                 "--h: must be a finite number > 0, got '" + bad + "'");
}

TEST_F(Cli, BenchPeakTflopsMustBeFiniteAndPositive) {
  for (const std::string bad : {"nan", "inf", "0", "-1"})
    expect_error(run(kBench + Args{"--peak-tflops", bad}),
                 "--peak-tflops: must be a finite number > 0, got '" + bad + "'");
}

TEST_F(Cli, ThreadsAboveFourPerCpuAreRefused) {
  const std::string rule = "--threads: must be 0 (the OpenMP default) or a whole number in [1, ";
  for (const std::string bad : {"100000", "2.5", "-1"}) {
    expect_error(run({"sample", path("run"), "--threads", bad}), rule);
    expect_error(run(with(kGradcheck, {"--threads", bad})), rule);
    expect_error(run(with(kBench, {"--threads", bad})), rule);
    expect_error(run(train_args("run", {"--steps", "2", "--threads", bad})), rule);
    expect_error(run({"ablate", "--out", path("grid"), "--threads", bad}), rule);
  }
}

TEST_F(Cli, BenchThreadListIsCheckedItemByItem) {
  const std::string rule = "--threads: must be 0 (the OpenMP default) or a whole number in [1, ";
  for (const std::string bad : {"1,x", "1,,2", "1,", "2,-1"})
    expect_error(run(with(kBench, {"--threads", bad})), rule);
  expect_error(run(with(kBench, {"--threads", "1,x"})), "got 'x' (in the list '1,x')");
}

// `bench --threads 1,1`: each count measured, with the sgemm ceiling of its rounds and the share
// of it; the scaling table; the OpenMP wait behaviour scalevec chose (ref/common.h,
// configure_runtime), which the restarted process reads from its environment.
// Whether the environment the tests run in chose an OpenMP wait policy itself (then scalevec keeps
// it, and the checks of its own default do not apply).
bool wait_policy_set_outside() {
  return std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr;
}

TEST_F(Cli, BenchMeasuresTheCeilingAndTheScaling) {
  if (wait_policy_set_outside()) GTEST_SKIP() << "OMP_WAIT_POLICY or GOMP_SPINCOUNT is set";
  const std::string json_path = path("bench.json");
  const Result r = run(with(kBench, {"--threads", "1,1", "--json", json_path}));
  ASSERT_TRUE(r.exited && r.code == 0) << r;
  EXPECT_NE(r.out.find("matrix-product ceiling: sgemm 2048x2048x2048"), std::string::npos) << r;
  EXPECT_NE(r.out.find("thread scaling"), std::string::npos) << r;
  EXPECT_NE(r.out.find("GOMP_SPINCOUNT=1000 (scalevec's default)"), std::string::npos) << r;
  std::ifstream in(json_path);
  const json j = json::parse(in);
  ASSERT_EQ(j.at("by_threads").size(), 2u) << j.dump(2);
  for (const auto& run : j.at("by_threads")) {
    const auto& t = run.at("results").at(0);
    const double ceiling = t.at("ceiling_flops_per_s").get<double>();
    const double share = t.at("ceiling_share").get<double>();
    EXPECT_GT(ceiling, 1e9) << t.dump(2);  // any CPU this runs on does 1 GFLOP/s in sgemm
    EXPECT_NEAR(share, t.at("scalevec").at("flops_per_s").get<double>() / ceiling, 1e-12);
    EXPECT_GT(share, 0.0);
  }
  EXPECT_EQ(j.at("openmp_wait"), "OpenMP wait: GOMP_SPINCOUNT=1000 (scalevec's default)");
}

// A wait policy the user set is kept, and no spin count is added to it.
TEST_F(Cli, TheUsersOpenMpWaitPolicyIsKept) {
  if (wait_policy_set_outside()) GTEST_SKIP() << "OMP_WAIT_POLICY or GOMP_SPINCOUNT is set";
  setenv("OMP_WAIT_POLICY", "passive", 1);
  const Result r = run(kBench);
  unsetenv("OMP_WAIT_POLICY");
  ASSERT_TRUE(r.exited && r.code == 0) << r;
  EXPECT_NE(r.out.find("OpenMP wait: OMP_WAIT_POLICY=passive (set by the user)"), std::string::npos)
      << r;
  EXPECT_EQ(r.out.find("GOMP_SPINCOUNT"), std::string::npos) << r;
}

// With every CPU busy (threads of this test process, which scalevec counts as another program),
// a command with more threads than free cores says so in one line before it starts.
TEST_F(Cli, ABusyMachineIsReportedAtStart) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (unsigned i = 0; i < std::max(1u, std::thread::hardware_concurrency()); i++)
    spinners.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
  const Result r = run(kBench);
  stop = true;
  for (auto& t : spinners) t.join();
  ASSERT_TRUE(r.exited && r.code == 0) << r;
  EXPECT_NE(r.err.find("warning: the machine is busy: about "), std::string::npos) << r;
  EXPECT_NE(r.err.find("with 1 thread each step waits"), std::string::npos) << r;
}

// A number is the whole token: "3abc" is refused by every flag that takes a number.
TEST_F(Cli, TrailingGarbageIsRefusedEverywhere) {
  const std::string ckpt = path("run");
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"sample", "--length", "3abc"},
      {"sample", "--top-k", "3abc"},
      {"sample", "--temperature", "0.8abc"},
      {"sample", "--seed", "3abc"},
      {"sample", "--threads", "3abc"},
      {"gradcheck", "--batch", "3abc"},
      {"gradcheck", "--seq", "3abc"},
      {"gradcheck", "--samples", "3abc"},
      {"gradcheck", "--h", "3e-4abc"},
      {"gradcheck", "--rtol", "1e-6abc"},
      {"gradcheck", "--atol", "3abc"},
      {"gradcheck", "--device-rtol", "0.1abc"},
      {"gradcheck", "--layers", "3abc"},
      {"gradcheck", "--threads", "3abc"},
      {"bench", "--steps", "3abc"},
      {"bench", "--warmup", "3abc"},
      {"bench", "--rounds", "3abc"},
      {"bench", "--peak-tflops", "3abc"},
      {"bench", "--threads", "3abc"},
      {"trace", "--batch", "3abc"},
      {"trace", "--seq", "3abc"},
      {"trace", "--values", "3abc"},
      {"trace", "--digits", "3abc"},
      {"trace", "--seed", "3abc"},
      {"inspect", "--d-model", "3abc"},
      {"train", "--lr", "1e-3abc"},
      {"train", "--batch", "3abc"},
      {"train", "--norm-eps", "1e-5x"},
      {"train", "--seed", "3abc"},
      {"train", "--layers", "0x10"},
  };
  for (const auto& [cmd, flag, bad] : cases) {
    const Result r = cmd == "train"    ? run(train_args("run", {"--steps", "2", flag, bad}))
                     : cmd == "sample" ? run({cmd, ckpt, flag, bad})
                                       : run({cmd, flag, bad});
    expect_error(r, flag);
    const auto lines = lines_of(r.err);
    EXPECT_TRUE(!lines.empty() && lines.back().find(bad) != std::string::npos) << r;
  }
  EXPECT_FALSE(fs::exists(path("run")));
}

// ================================================================================================
// Checkpoints: one trained once for the suite, copied and damaged per test.

class CliCheckpoint : public Cli {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "scalevec_ckpt_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    suite_dir_ = tmpl;
    write_file(suite_dir_ / "data.txt", make_text(20000));
    const Result r = run(Args{"train", "--data", (suite_dir_ / "data.txt").string(), "--out",
                              (suite_dir_ / "run").string(), "--steps", "6"} +
                         kModel + kTrain);
    ASSERT_TRUE(r.exited && r.code == 0) << r;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(suite_dir_, ec);
  }
  void SetUp() override {
    Cli::SetUp();
    ASSERT_TRUE(fs::exists(suite_dir_ / "run" / "model.safetensors")) << "suite setup failed";
    fs::copy(suite_dir_ / "run", dir_ / "run");
    model_ = (dir_ / "run" / "model.safetensors").string();
    state_ = (dir_ / "run" / "state.safetensors").string();
  }
  static fs::path suite_dir_;
  std::string model_, state_;
};
fs::path CliCheckpoint::suite_dir_;

TEST_F(CliCheckpoint, IntactCheckpointLoads) {  // the control for the damage below
  const Result r = run({"sample", path("run"), "--length", "8", "--threads", "1"});
  EXPECT_OK(r);
  const Result i = run({"inspect", "--ckpt", path("run")});
  EXPECT_OK(i);
}

TEST_F(CliCheckpoint, SampleMissingCheckpoint) {
  expect_error(run({"sample", path("nowhere"), "--length", "4"}), "does not exist");
}

TEST_F(CliCheckpoint, SampleRunDirWithoutCheckpoint) {
  fs::create_directory(path("emptyrun"));
  expect_error(run({"sample", path("emptyrun"), "--length", "4"}), "does not exist");
}

TEST_F(CliCheckpoint, InspectMissingCheckpoint) {
  expect_error(run({"inspect", "--ckpt", path("nowhere/model.safetensors")}), "does not exist");
}

TEST_F(CliCheckpoint, TruncatedData) {
  fs::resize_file(model_, fs::file_size(model_) - 100);
  expect_error(run({"sample", model_, "--length", "4"}), "truncated");
  expect_error(run({"inspect", "--ckpt", model_}), "truncated");
}

TEST_F(CliCheckpoint, TruncatedToFewBytes) {
  fs::resize_file(model_, 5);
  expect_error(run({"sample", model_, "--length", "4"}), "truncated");
}

TEST_F(CliCheckpoint, TruncatedInsideHeader) {
  fs::resize_file(model_, 64);
  const Result r = run({"sample", model_, "--length", "4"});
  expect_error(r, "model.safetensors");
  EXPECT_TRUE(r.err.find("truncated") != std::string::npos ||
              r.err.find("not a valid safetensors") != std::string::npos)
      << r;
}

TEST_F(CliCheckpoint, CorruptedHeaderJson) {
  std::string b = read_file(model_);
  for (size_t i = 8; i < 16; i++) b[i] = '#';
  write_file(model_, b);
  expect_error(run({"sample", model_, "--length", "4"}), "corrupted header");
}

TEST_F(CliCheckpoint, CorruptedHeaderLength) {
  std::string b = read_file(model_);
  b[6] = '\x7f';  // header length ~ 2^55
  write_file(model_, b);
  expect_error(run({"sample", model_, "--length", "4"}), "not a valid safetensors");
}

TEST_F(CliCheckpoint, FlippedDataByteFailsChecksum) {
  std::string b = read_file(model_);
  b[b.size() - 3] ^= 0x10;
  write_file(model_, b);
  expect_error(run({"sample", model_, "--length", "4"}), "checksum");
}

TEST_F(CliCheckpoint, WrongFormatVersion) {
  // Control: rewriting the header unchanged keeps a loadable file.
  SafeTensors st = parse_safetensors(model_);
  ASSERT_EQ(st.header.at("__metadata__").at("format_version"), "2");
  write_safetensors(model_, st);
  EXPECT_OK(run({"sample", model_, "--length", "4", "--threads", "1"}));
  // A future version is refused, naming the version.
  st.header["__metadata__"]["format_version"] = "3";
  write_safetensors(model_, st);
  const Result r = run({"sample", model_, "--length", "4"});
  expect_error(r, "version");
  EXPECT_NE(r.err.find("'3'"), std::string::npos) << r;
}

TEST_F(CliCheckpoint, NotAModelCheckpoint) {
  expect_error(run({"sample", state_, "--length", "4"}), "not a scalevec model checkpoint");
}

TEST_F(CliCheckpoint, CorruptedConfigMetadata) {
  SafeTensors st = parse_safetensors(model_);
  st.header["__metadata__"]["config"] = "{\"n_layer\": ";
  write_safetensors(model_, st);
  expect_error(run({"sample", model_, "--length", "4"}), "config");
}

TEST_F(CliCheckpoint, TruncatedStateOnResume) {
  fs::resize_file(state_, fs::file_size(state_) - 100);
  expect_error(run(train_args("run", {"--resume", "--steps", "10"})), "truncated");
}

TEST_F(CliCheckpoint, StateFromAnotherSaveOnResume) {
  // state.safetensors of a different run, at another step (3, the model is at 6).
  train_ok("other", {"--steps", "10", "--stop-at", "3"});
  fs::copy_file(path("other/state.safetensors"), state_, fs::copy_options::overwrite_existing);
  expect_error(run(train_args("run", {"--resume", "--steps", "10"})), "different saves");
}

TEST_F(CliCheckpoint, StateFromAnotherRunAtTheSameStep) {
  // A state from another run (another seed) that happens to be at the same step as the model:
  // the optimizer moments and data position belong to other weights, so this must be refused.
  train_ok("other", {"--steps", "10", "--stop-at", "6", "--seed", "99"});
  fs::copy_file(path("other/state.safetensors"), state_, fs::copy_options::overwrite_existing);
  expect_error(run(train_args("run", {"--resume", "--steps", "10"})), "state");
}

TEST_F(CliCheckpoint, ResumeWithDifferentArchitecture) {
  const Result r = run(train_args("run", {"--resume", "--steps", "10", "--d-model", "64"}));
  expect_error(r, "d_model");
  EXPECT_NE(r.err.find("64"), std::string::npos) << r;
}

TEST_F(CliCheckpoint, ResumeWithDifferentTrainingConfig) {
  expect_error(run(train_args("run", {"--resume", "--steps", "10", "--lr", "0.01"})), "lr");
}

TEST_F(CliCheckpoint, ResumePastSteps) {
  // The checkpoint is at step 6; asking for a 4-step run cannot continue it.
  expect_error(run(train_args("run", {"--resume", "--steps", "4", "--warmup", "2"})), "past");
}

TEST_F(CliCheckpoint, ResumeWithNothingToResume) {
  expect_error(run(train_args("fresh", {"--resume", "--steps", "10"})), "nothing to resume");
}

TEST_F(CliCheckpoint, OutHoldsCheckpointWithoutResumeOrForce) {
  const std::string before = read_file(model_);
  expect_error(run(train_args("run", {"--steps", "6"})), "already holds a checkpoint");
  EXPECT_EQ(read_file(model_), before) << "the refused run must not touch the checkpoint";
  EXPECT_OK(run(train_args("run", {"--steps", "3", "--force"})));
}

TEST_F(CliCheckpoint, InspectCheckpointAndArchitectureFlags) {
  expect_error(run({"inspect", "--ckpt", path("run"), "--d-model", "64"}), "cannot be combined");
}

// ================================================================================================
// Resume.

TEST_F(Cli, ResumeWithoutDataFlagKeepsTheRunsData) {
  // A run on data.txt, stopped and resumed without --data, must not silently switch to the
  // default corpus: either it refuses, or it continues on the same data exactly.
  train_ok("a", {"--steps", "8"});
  train_ok("b", {"--steps", "8", "--stop-at", "4"});
  const Result r = run(Args{"train", "--out", path("b"), "--resume", "--threads", "1", "--quiet",
                            "--sample-len", "0"});
  if (r.exited && r.code != 0) {
    expect_error(r, "data");
    return;
  }
  EXPECT_OK(r);
  const Metrics a = read_metrics(path("a/metrics.jsonl")),
                b = read_metrics(path("b/metrics.jsonl"));
  ASSERT_FALSE(a.val.empty());
  ASSERT_FALSE(b.val.empty());
  EXPECT_EQ(a.val.back().second, b.val.back().second)
      << "the resumed run silently trained and validated on other data: " << r;
}

TEST_F(Cli, ResumeIsExact) {
  const int N = 12, M = 13;
  const std::string total = std::to_string(N + M);
  train_ok("a", {"--steps", total, "--eval-every", "10"});
  train_ok("b", {"--steps", total, "--eval-every", "10", "--stop-at", std::to_string(N)});
  {
    const Metrics half = read_metrics(path("b/metrics.jsonl"));
    ASSERT_EQ((int)half.steps.size(), N) << "--stop-at should stop after step " << N;
  }
  train_ok("b", {"--steps", total, "--eval-every", "10", "--resume"});
  const Metrics a = read_metrics(path("a/metrics.jsonl")),
                b = read_metrics(path("b/metrics.jsonl"));
  EXPECT_EQ(a.duplicate_steps, 0);
  EXPECT_EQ(b.duplicate_steps, 0);
  ASSERT_EQ((int)a.steps.size(), N + M);
  ASSERT_EQ((int)b.steps.size(), N + M);
  for (int s = 1; s <= N + M; s++) {
    ASSERT_TRUE(a.steps.count(s) && b.steps.count(s)) << "step " << s;
    // Bit-identical: compare the doubles exactly (JSON dumps them round-trip exact).
    EXPECT_EQ(a.steps.at(s).at("loss").get<double>(), b.steps.at(s).at("loss").get<double>())
        << "loss differs at step " << s;
    EXPECT_EQ(a.steps.at(s).at("lr").get<double>(), b.steps.at(s).at("lr").get<double>())
        << "lr differs at step " << s;
    EXPECT_EQ(a.steps.at(s).at("grad_norm").get<double>(),
              b.steps.at(s).at("grad_norm").get<double>())
        << "grad_norm differs at step " << s;
  }
  ASSERT_FALSE(a.val.empty());
  ASSERT_FALSE(b.val.empty());
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.val.back().first, N + M);
  EXPECT_EQ(a.val.back().second, b.val.back().second);
  EXPECT_EQ(read_file(path("a/model.safetensors")), read_file(path("b/model.safetensors")));
}

TEST_F(Cli, CtrlCSavesAndResumes) {
  // A wider model and a longer run (a few seconds), with progress lines on stderr.
  const Args model = {"--layers", "2",      "--d-model", "64",        "--heads",
                      "2",        "--d-ff", "64",        "--context", "64"};
  const Args flags =
      Args{"train", "--data",    data_, "--out",        path("run"), "--steps",
           "400",   "--batch",   "8",   "--warmup",     "2",         "--eval-batches",
           "1",     "--threads", "1",   "--sample-len", "0"} +
      model;
  Child c(flags);
  ASSERT_GT(c.pid(), 0) << c.err_so_far();
  // The first progress line ("step   20/400 | loss ...") shows the loop is running.
  const bool training =
      c.pump_until([&] { return c.err_so_far().find("/400 | loss") != std::string::npos; }, 60);
  ASSERT_TRUE(training) << "no progress line: " << c.finish(10);
  ASSERT_EQ(kill(c.pid(), SIGINT), 0);
  const Result r = c.finish(60);
  EXPECT_TRUE(r.exited) << r;
  EXPECT_EQ(r.code, 130) << r;
  EXPECT_NE(r.err.find("interrupted at step"), std::string::npos) << r;
  EXPECT_NE(r.err.find("--resume"), std::string::npos) << r;
  ASSERT_TRUE(fs::exists(path("run/model.safetensors"))) << r;
  ASSERT_TRUE(fs::exists(path("run/state.safetensors"))) << r;
  const Metrics part = read_metrics(path("run/metrics.jsonl"));
  ASSERT_GT((int)part.steps.size(), 0);
  ASSERT_LT((int)part.steps.size(), 400) << "the run finished before the interrupt";

  const Result resumed = run(flags + Args{"--resume", "--quiet"});
  EXPECT_OK(resumed);
  const Metrics all = read_metrics(path("run/metrics.jsonl"));
  EXPECT_EQ(all.duplicate_steps, 0);
  EXPECT_EQ((int)all.steps.size(), 400);
  ASSERT_FALSE(all.steps.empty());
  EXPECT_EQ(all.steps.rbegin()->first, 400);
  ASSERT_FALSE(all.val.empty());
  EXPECT_EQ(all.val.back().first, 400);
}

// ================================================================================================
// Help and the other subcommands.

TEST_F(Cli, HelpTopLevel) {
  const Result r = run({"--help"});
  EXPECT_OK(r);
  EXPECT_NE(r.out.find("Usage:"), std::string::npos) << r;
  for (const char* sub : {"train", "sample", "gradcheck", "inspect", "bench"})
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub << ": " << r;
}

TEST_F(Cli, HelpEachSubcommand) {
  for (const char* sub : {"train", "sample", "gradcheck", "inspect", "bench"}) {
    const Result r = run({sub, "--help"});
    EXPECT_OK(r);
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << sub << ": " << r;
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub << ": " << r;
  }
  EXPECT_NE(run({"train", "--help"}).out.find("--resume"), std::string::npos);
}

TEST_F(Cli, GradcheckSmallConfigPasses) {
  const Result r =
      run({"gradcheck", "--layers", "1", "--d-model", "32", "--heads", "2", "--d-ff", "16",
           "--context", "8", "--batch", "2", "--seq", "8", "--samples", "8", "--threads", "1"});
  EXPECT_OK(r);
  EXPECT_NE(r.out.find("PASS"), std::string::npos) << r;
}

TEST_F(Cli, GradcheckSeqLongerThanContext) {
  expect_error(run({"gradcheck", "--layers", "1", "--d-model", "32", "--heads", "2", "--context",
                    "8", "--seq", "9"}),
               "context");
}

TEST_F(Cli, InspectPrintsScaleShare) {
  const Result r = run({"inspect"});
  EXPECT_OK(r);
  EXPECT_NE(r.out.find("scale vectors"), std::string::npos) << r;
  EXPECT_NE(r.out.find(" of all, "), std::string::npos) << r;  // "(1.254e-03 of all, 0.1254%)"
}

TEST_F(Cli, InspectNoScaleVectors) {
  const Result r = run({"inspect", "--scale", "none"});
  EXPECT_OK(r);
  EXPECT_NE(r.out.find("scale vectors 0 "), std::string::npos) << r;
}

TEST_F(Cli, InspectBadArchitecture) { expect_error(run({"inspect", "--layers", "0"}), "layers"); }

// ================================================================================================
// Scale strategies, architecture switches and optimizers on the command line.

TEST_F(Cli, UnifiedImpliesIwdUnlessGiven) {
  Result r = run(train_args("u", {"--steps", "2", "--scale", "unified"}));
  EXPECT_OK(r);
  EXPECT_NE(r.err.find("scale=unified, wd-policy=iwd"), std::string::npos) << r;
  r = run(train_args("v", {"--steps", "2", "--scale", "unified", "--wd-policy", "none"}));
  EXPECT_OK(r);
  EXPECT_NE(r.err.find("scale=unified, wd-policy=none"), std::string::npos) << r;
}

TEST_F(Cli, ComponentFlagsMakeACustomStrategyStoredInTheCheckpoint) {
  train_ok("c", {"--steps", "2", "--scale", "hg", "--dp", "q,up", "--qk-norm"});
  const Result r = run({"inspect", "--ckpt", path("c")});
  EXPECT_OK(r);
  for (const char* want :
       {"scale strategy: custom", "hg true", "dp q,up", "qk-norm true",
        "layers.0.attn_norm.q.gamma", "layers.0.attn.q_dp.u", "layers.0.attn.q_norm.gamma"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r;
}

TEST_F(Cli, DnpAndQkNormTogetherAreRefused) {
  expect_error(run(train_args("r", {"--steps", "2", "--scale", "dnp", "--qk-norm"})),
               "already is a QK-Norm");
}

TEST_F(Cli, UnknownBranchIsRefused) {
  expect_error(run(train_args("r", {"--steps", "2", "--dp", "q,x"})), "unknown branch 'x'");
}

TEST_F(Cli, NoScalesCannotBePlaced) {
  expect_error(run(train_args("r", {"--steps", "2", "--scale", "none", "--hg"})),
               "no scale vectors to place");
}

TEST_F(Cli, InspectUnifiedListsTypesAndShare) {
  const Result r = run({"inspect", "--scale", "unified", "--wd-policy", "iwd"});
  EXPECT_OK(r);
  for (const char* want : {"layers.0.attn.q_dnp.beta", "Output", "Input",
                           "rows of layers.0.attn.wv", "scale vectors 7329", "of all"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r;
}

TEST_F(Cli, InspectMarksCancelledMagnitudes) {
  const Result r = run({"inspect", "--scale", "unified", "--keep-cancelled-magnitude"});
  EXPECT_OK(r);
  EXPECT_NE(r.out.find("note: layers.0.attn_norm.q.beta: gradient structurally zero"),
            std::string::npos)
      << r;
}

TEST_F(Cli, GradcheckEveryPresetPasses) {
  for (const auto& preset : {"hg", "dp", "dnp", "magdir", "magdir-normalized", "unified"}) {
    const Result r =
        run({"gradcheck", "--scale", preset,   "--layers",  "1",         "--d-model", "16",
             "--heads",   "2",       "--d-ff", "16",        "--context", "8",         "--batch",
             "2",         "--seq",   "8",      "--samples", "6",         "--threads", "1"});
    EXPECT_OK(r);
    EXPECT_NE(r.out.find("PASS"), std::string::npos) << preset << "\n" << r;
  }
}

TEST_F(Cli, OptimizersAndSchedulesRunAndResumeOnlyWithTheirOwnState) {
  train_ok("m", {"--steps", "4", "--stop-at", "2", "--optimizer", "muon", "--schedule", "wsd"});
  expect_error(run(train_args("m", {"--steps", "4", "--resume", "--optimizer", "adamw"})),
               "optimizer");
  EXPECT_OK(run(train_args("m", {"--steps", "4", "--resume"})));
  train_ok("s", {"--steps", "3", "--optimizer", "sgd", "--schedule", "constant"});
}

}  // namespace
