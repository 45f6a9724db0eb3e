// Faults a run must survive, driven through the `scalevec` binary: kill -9 at random instants of
// a run that checkpoints every step (each one resumable, the continuation bit-identical to an
// uninterrupted run), a save or a metrics line that hits the file-size limit (write() fails with
// EFBIG, the error path of a full disk's ENOSPC), two writers on one run directory, and a
// divergence.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "ref/rng.h"
#include "cli_util.h"

namespace {

using namespace cli;

class Faults : public RunDirTest {
 protected:
  // The newest complete checkpoint's step of a run directory (-1: none).
  int newest_step(const std::string& out) const {
    int best = -1;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(path(out) + "/checkpoints", ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("step-", 0) == 0) best = std::max(best, std::stoi(n.substr(5)));
    }
    return best;
  }
};

// kill -9 at random instants of a run that saves a checkpoint after every step: afterwards the
// newest complete checkpoint always loads, the run resumes from it, and finishes with the same
// weights, bit for bit, as a run that was never interrupted. The instants are spread over the
// whole run, so many fall inside a save (which is most of a step's time here). 120 steps: the
// start (the restart of configure_runtime, the busy-machine check) is then a small part of it.
TEST_F(Faults, KillNineAtRandomInstantsIsAlwaysResumableAndBitIdentical) {
  const Args run_flags = {"--steps", "120", "--ckpt-every", "1", "--eval-every", "0"};
  // The run's duration: the shortest of three, so that a slow fsync in one does not stretch the
  // window of kill instants past the end of most trials.
  double duration = 1e9;
  for (const char* name : {"time1", "time2", "ref"}) {
    const auto t0 = std::chrono::steady_clock::now();
    const Result r = run(train_args(name, run_flags));
    duration = std::min(
        duration, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(r.exited && r.code == 0) << r;
  }
  const std::string want = read_file(path("ref") + "/checkpoints/step-00000120/model.safetensors");
  ASSERT_FALSE(want.empty());
  scalevec::Rng rng(2026);
  const int trials = 24;
  int killed_mid_run = 0, resumed = 0;
  for (int t = 0; t < trials; t++) {
    const std::string out = "trial" + std::to_string(t);
    {
      Child c(train_args(out, run_flags));
      const double delay = (0.05 + 0.9 * rng.uniform()) * duration;
      std::this_thread::sleep_for(std::chrono::duration<double>(delay));
      kill(c.pid(), SIGKILL);
      const Result r = c.finish();
      killed_mid_run += !r.exited;
    }
    const int at = newest_step(out);
    const Result cont =
        run(train_args(out, at >= 0 ? run_flags + Args{"--resume"} : run_flags + Args{"--force"}));
    ASSERT_TRUE(cont.exited && cont.code == 0)
        << "trial " << t << " (newest checkpoint " << at << "): " << cont;
    resumed += at >= 0;
    EXPECT_EQ(read_file(path(out) + "/checkpoints/step-00000120/model.safetensors"), want)
        << "trial " << t << " resumed from step " << at << " and ended elsewhere";
    // No leftovers of the interrupted save survive the resume.
    for (const auto& e : fs::directory_iterator(path(out) + "/checkpoints"))
      EXPECT_EQ(e.path().filename().string().rfind("step-", 0), 0u) << e.path();
  }
  // The test means something only if most kills landed inside the run.
  EXPECT_GE(killed_mid_run, trials / 2);
  EXPECT_GE(resumed, trials / 2);
  std::printf(
      "[measured] %d kill -9 trials: %d killed mid-run, %d resumed from a checkpoint, "
      "all finished bit-identical to the uninterrupted run (%.2f s per run)\n",
      trials, killed_mid_run, resumed, duration);
}

// A save that cannot be written (the file-size limit makes write() fail with EFBIG, the error
// path of a full disk's ENOSPC): one error line naming the cause and the intact previous
// checkpoint, nothing of the failed save left, and the run resumes from the previous one.
TEST_F(Faults, AFailedSaveKeepsThePreviousCheckpoint) {
  ASSERT_EQ(run(train_args("run", {"--steps", "4", "--eval-every", "0"})).code, 0);
  ASSERT_EQ(newest_step("run"), 4);
  struct rlimit old {
  }, small{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  small = old;
  small.rlim_cur = 16 * 1024;  // metrics.jsonl fits, a model file does not
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  Child c(train_args("run", {"--steps", "8", "--eval-every", "0", "--resume"}));
  setrlimit(RLIMIT_FSIZE, &old);  // the child keeps its copy
  const Result r = c.finish();
  expect_error(r, "checkpoint at step 8 not saved");
  EXPECT_NE(r.err.find("File too large"), std::string::npos) << r;
  EXPECT_NE(r.err.find("step-00000004, is intact"), std::string::npos) << r;
  EXPECT_EQ(newest_step("run"), 4);
  for (const auto& e : fs::directory_iterator(path("run") + "/checkpoints"))
    EXPECT_EQ(e.path().filename(), "step-00000004") << e.path();
  const Result again = run(train_args("run", {"--steps", "8", "--eval-every", "0", "--resume"}));
  EXPECT_OK(again);
  EXPECT_EQ(newest_step("run"), 8);
}

// metrics.jsonl that cannot be written (the file-size limit again) stops the run with one error
// naming the file, instead of a run that ends "done" with its log silently cut short.
TEST_F(Faults, AMetricsWriteErrorIsFatal) {
  struct rlimit old {
  }, small{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  small = old;
  small.rlim_cur = 2000;  // about 15 step lines
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  Child c(train_args("run", {"--steps", "60", "--eval-every", "0"}));
  setrlimit(RLIMIT_FSIZE, &old);
  const Result r = c.finish();
  expect_error(r, "metrics.jsonl");
  EXPECT_NE(r.err.find("File too large"), std::string::npos) << r;
}

// A second train (or ablate) on a run directory in use fails at once, naming the holder.
TEST_F(Faults, ASecondWriterIsRefused) {
  Child first(train_args("run", {"--steps", "100000", "--eval-every", "0"}));
  const std::string lock = path("run") + "/lock";
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (read_file(lock).empty() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_FALSE(read_file(lock).empty()) << "the first run never took its lock";
  const Result second = run(train_args("run", {"--steps", "4", "--force"}));
  expect_error(second, "in use by another scalevec (pid " + std::to_string(first.pid()) + ")");
  const Result grid = run({"ablate", "--out", path("run"), "--arm", "a=", "--", "--steps", "2"});
  expect_error(grid, "in use by another scalevec");
  kill(first.pid(), SIGKILL);
  first.finish();
  EXPECT_OK(run(train_args("run", {"--steps", "2", "--force", "--eval-every", "0"})));
}

// A divergence stops with one error line naming the step; the run's newest checkpoint is finite
// (sample loads it) and no later one was written.
TEST_F(Faults, DivergenceStopsWithTheLastGoodCheckpoint) {
  const Result r =
      run(train_args("run", {"--optimizer", "sgd", "--lr", "9", "--grad-clip", "0", "--steps",
                             "300", "--warmup", "0", "--ckpt-every", "1", "--eval-every", "0"}));
  expect_error(r, "training diverged at step");
  const int at = newest_step("run");
  ASSERT_GE(at, 0) << r;
  EXPECT_NE(r.err.find("step " + std::to_string(at) + ", is intact"), std::string::npos) << r;
  EXPECT_OK(run({"sample", path("run"), "--length", "20"}));
}

}  // namespace
