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
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Args = std::vector<std::string>;

// ------------------------------------------------------------------------------------------------
// Running the binary.

struct Result {
  bool exited = false;    // WIFEXITED: ended by exit(), not by a signal
  int code = -1;          // exit code when exited
  int signal = 0;         // terminating signal otherwise
  bool timed_out = false;
  std::string out, err;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  if (r.timed_out) os << "[timed out] ";
  if (r.exited) os << "exit " << r.code;
  else os << "killed by signal " << r.signal;
  return os << "\n--- stdout ---\n" << r.out << "--- stderr ---\n" << r.err << "--------------";
}

// A running scalevec process with its stdout and stderr on pipes.
class Child {
 public:
  explicit Child(const Args& args) {
    int po[2], pe[2];
    if (pipe(po) != 0 || pipe(pe) != 0) std::abort();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawn_file_actions_addclose(&fa, po[0]);
    posix_spawn_file_actions_addclose(&fa, pe[0]);
    posix_spawn_file_actions_addclose(&fa, po[1]);
    posix_spawn_file_actions_addclose(&fa, pe[1]);
    std::vector<std::string> argv_s{SCALEVEC_EXE};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_s) argv.push_back(s.data());
    argv.push_back(nullptr);
    // Default signal dispositions in the child, whatever the test runner set.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t def, none;
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGPIPE);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    const int rc = posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(po[1]);
    close(pe[1]);
    out_fd_ = po[0], err_fd_ = pe[0];
    if (rc != 0) {
      pid_ = -1;
      r_.err = "posix_spawn failed: " + std::string(strerror(rc));
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }
  pid_t pid() const { return pid_; }
  const std::string& err_so_far() const { return r_.err; }

  // Reads output until `done()` holds, the pipes close or `seconds` pass; true if done() held.
  template <class Pred>
  bool pump_until(Pred done, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
      if (out_fd_ < 0 && err_fd_ < 0) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now()).count();
      if (left <= 0) return false;
      pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
      const int n = poll(fds, 2, (int)std::min<long long>(left, 100));
      if (n < 0 && errno != EINTR) return false;
      drain(fds[0], out_fd_, r_.out);
      drain(fds[1], err_fd_, r_.err);
    }
    return true;
  }

  // Waits for the process to end (killing it after `seconds`), with all its output.
  Result finish(double seconds = 120) {
    if (pid_ <= 0) return r_;
    if (!pump_until([] { return false; }, seconds) && (out_fd_ >= 0 || err_fd_ >= 0)) {
      r_.timed_out = true;
      kill(pid_, SIGKILL);
      pump_until([] { return false; }, 5);
    }
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    r_.exited = WIFEXITED(status);
    r_.code = r_.exited ? WEXITSTATUS(status) : -1;
    r_.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return r_;
  }

 private:
  static void drain(const pollfd& p, int& fd, std::string& dst) {
    if (fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      dst.append(buf, (size_t)n);
    } else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
      close(fd);
      fd = -1;
    }
  }
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  Result r_;
};

Result run(const Args& args, double seconds = 120) { return Child(args).finish(seconds); }

Args operator+(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// `base` with each "--flag value" of `extra` replacing that flag's value in base (or appended),
// and each lone "--flag" of `extra` appended.
Args with(Args base, const Args& extra) {
  for (size_t i = 0; i < extra.size(); i++) {
    const bool pair = extra[i].rfind("--", 0) == 0 && i + 1 < extra.size() &&
                      extra[i + 1].rfind("--", 0) != 0;
    if (!pair) {
      base.push_back(extra[i]);
      continue;
    }
    bool replaced = false;
    for (size_t j = 0; j + 1 < base.size(); j++)
      if (base[j] == extra[i]) base[j + 1] = extra[i + 1], replaced = true;
    if (!replaced) base.insert(base.end(), {extra[i], extra[i + 1]});
    i++;
  }
  return base;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// The process ended by itself (no signal, no abort/segfault exit code) with status 0.
#define EXPECT_OK(r)                                                          \
  do {                                                                        \
    const Result& r_ok_ = (r);                                                \
    EXPECT_TRUE(r_ok_.exited && r_ok_.code == 0) << r_ok_;                    \
  } while (0)

// Bad input: a non-zero exit by exit() (not a crash: no signal, not 134/139), and the error is a
// single line "error: ..." mentioning `what`, the last thing on stderr (an informational banner
// may come before it), with no other line that looks like part of an error.
void expect_error(const Result& r, const std::string& what) {
  EXPECT_FALSE(r.timed_out) << r;
  EXPECT_TRUE(r.exited) << "crashed instead of exiting with an error: " << r;
  EXPECT_NE(r.code, 0) << r;
  EXPECT_NE(r.code, 134) << "abort-like exit code: " << r;
  EXPECT_NE(r.code, 139) << "segfault-like exit code: " << r;
  const auto lines = lines_of(r.err);
  ASSERT_FALSE(lines.empty()) << "no message on stderr: " << r;
  const std::string& last = lines.back();
  EXPECT_EQ(last.rfind("error: ", 0), 0u)
      << "the last line of stderr should be the one-line error 'error: ...': " << r;
  EXPECT_NE(last.find(what), std::string::npos)
      << "the error line should mention '" << what << "': " << r;
  int error_lines = 0;
  for (const auto& l : lines)
    if (l.find("error") != std::string::npos || l.find("Error") != std::string::npos) error_lines++;
  EXPECT_EQ(error_lines, 1) << "the error should be one line: " << r;
}

// ------------------------------------------------------------------------------------------------
// Files.

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

// Deterministic text over a small alphabet: learnable, and long enough for a few windows.
std::string make_text(size_t n) {
  std::string s;
  uint64_t x = 88172645463325252ull;
  const char* alphabet = "the quick brown fox jumps over a lazy dog\n";
  const size_t k = std::strlen(alphabet);
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    s.push_back(alphabet[x % k]);
  }
  return s;
}

// A safetensors file split into its parts: header JSON and data section.
struct SafeTensors {
  json header;
  std::string data;
};

SafeTensors parse_safetensors(const fs::path& p) {
  const std::string b = read_file(p);
  EXPECT_GE(b.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t((unsigned char)b[i]) << (8 * i);
  EXPECT_LE(8 + n, b.size());
  return {json::parse(b.substr(8, n)), b.substr(8 + n)};
}

void write_safetensors(const fs::path& p, const SafeTensors& st) {
  std::string h = st.header.dump();
  while (h.size() % 8) h += ' ';
  std::string b(8, '\0');
  for (int i = 0; i < 8; i++) b[i] = char((uint64_t)h.size() >> (8 * i));
  write_file(p, b + h + st.data);
}

// ------------------------------------------------------------------------------------------------
// Fixtures.

// The tiny architecture every run here uses, and quiet, single-threaded training flags.
const Args kModel = {"--layers", "1", "--d-model", "32", "--heads", "2", "--d-ff", "32",
                     "--context", "32"};
const Args kTrain = {"--batch", "4", "--warmup", "2", "--eval-batches", "1", "--threads", "1",
                     "--sample-len", "0", "--quiet"};

// A fresh temporary directory per test, holding `data.txt` (20 KB of text).
class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "scalevec_cli_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    data_ = (dir_ / "data.txt").string();
    write_file(data_, make_text(20000));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // `scalevec train` of the tiny model on data.txt into dir/<out>, with `extra` flags (which
  // replace the defaults' values of the same flags: CLI11 refuses a flag given twice).
  Args train_args(const std::string& out, const Args& extra = {}) const {
    return with(Args{"train", "--data", data_, "--out", path(out)} + kModel + kTrain, extra);
  }
  // Trains and asserts success.
  void train_ok(const std::string& out, const Args& extra) {
    const Result r = run(train_args(out, extra));
    ASSERT_TRUE(r.exited && r.code == 0) << r;
  }
  fs::path dir_;
  std::string data_;
};

// Per-step records and validation losses of a run's metrics.jsonl.
struct Metrics {
  std::map<int, json> steps;                  // step -> its record (loss, lr, grad_norm, ...)
  std::vector<std::pair<int, double>> val;    // (step, val_loss) in file order
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

TEST_F(Cli, StepsNotANumber) {
  expect_error(run(train_args("run", {"--steps", "abc"})), "abc");
}

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
  ASSERT_EQ(st.header.at("__metadata__").at("format_version"), "1");
  write_safetensors(model_, st);
  EXPECT_OK(run({"sample", model_, "--length", "4", "--threads", "1"}));
  // A future version is refused, naming the version.
  st.header["__metadata__"]["format_version"] = "2";
  write_safetensors(model_, st);
  const Result r = run({"sample", model_, "--length", "4"});
  expect_error(r, "version");
  EXPECT_NE(r.err.find("'2'"), std::string::npos) << r;
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
  const Metrics a = read_metrics(path("a/metrics.jsonl")), b = read_metrics(path("b/metrics.jsonl"));
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
  const Metrics a = read_metrics(path("a/metrics.jsonl")), b = read_metrics(path("b/metrics.jsonl"));
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
  const Args model = {"--layers", "2", "--d-model", "64", "--heads", "2", "--d-ff", "64",
                      "--context", "64"};
  const Args flags = Args{"train", "--data", data_, "--out", path("run"), "--steps", "400",
                          "--batch", "8", "--warmup", "2", "--eval-batches", "1", "--threads",
                          "1", "--sample-len", "0"} + model;
  Child c(flags);
  ASSERT_GT(c.pid(), 0) << c.err_so_far();
  // The first progress line ("step   20/400 | loss ...") shows the loop is running.
  const bool training = c.pump_until(
      [&] { return c.err_so_far().find("/400 | loss") != std::string::npos; }, 60);
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
  const Result r = run({"gradcheck", "--layers", "1", "--d-model", "32", "--heads", "2", "--d-ff",
                        "16", "--context", "8", "--batch", "2", "--seq", "8", "--samples", "8",
                        "--threads", "1"});
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

TEST_F(Cli, InspectBadArchitecture) {
  expect_error(run({"inspect", "--layers", "0"}), "layers");
}

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
  for (const char* want : {"scale strategy: custom", "hg true", "dp q,up", "qk-norm true",
                           "layers.0.attn_norm.q.gamma", "layers.0.attn.q_dp.u",
                           "layers.0.attn.q_norm.gamma"})
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
  for (const char* want : {"layers.0.attn.q_dnp.beta", "Output", "Input", "rows of layers.0.attn.wv",
                           "scale vectors 7329", "of all"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r;
}

TEST_F(Cli, InspectMarksCancelledMagnitudes) {
  const Result r = run({"inspect", "--scale", "unified", "--keep-cancelled-magnitude"});
  EXPECT_OK(r);
  EXPECT_NE(r.out.find("note: layers.0.attn_norm.q.beta: gradient structurally zero"),
            std::string::npos) << r;
}

TEST_F(Cli, GradcheckEveryPresetPasses) {
  for (const auto& preset : {"hg", "dp", "dnp", "magdir", "magdir-normalized", "unified"}) {
    const Result r = run({"gradcheck", "--scale", preset, "--layers", "1", "--d-model", "16",
                          "--heads", "2", "--d-ff", "16", "--context", "8", "--batch", "2", "--seq",
                          "8", "--samples", "6", "--threads", "1"});
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
