// Helpers shared by the tests that run the `scalevec` binary (test_cli, test_ablate): spawning it
// with its output on pipes, one-line error checks, files and generated text.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

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

namespace cli {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Args = std::vector<std::string>;

// ------------------------------------------------------------------------------------------------
// Running the binary.

struct Result {
  bool exited = false;  // WIFEXITED: ended by exit(), not by a signal
  int code = -1;        // exit code when exited
  int signal = 0;       // terminating signal otherwise
  bool timed_out = false;
  std::string out, err;
};

inline std::ostream& operator<<(std::ostream& os, const Result& r) {
  if (r.timed_out) os << "[timed out] ";
  if (r.exited)
    os << "exit " << r.code;
  else
    os << "killed by signal " << r.signal;
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
  // Reads output until `text` appears on stderr; false if the process ended or time ran out.
  bool wait_for(const std::string& text, double seconds) {
    return pump_until([&] { return r_.err.find(text) != std::string::npos; }, seconds);
  }

  // Reads output until `done()` holds, the pipes close or `seconds` pass; true if done() held.
  template <class Pred>
  bool pump_until(Pred done, double seconds) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
      if (out_fd_ < 0 && err_fd_ < 0) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
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

inline Result run(const Args& args, double seconds = 120) { return Child(args).finish(seconds); }

inline Args operator+(Args a, const Args& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// `base` with each "--flag value" of `extra` replacing that flag's value in base (or appended),
// and each lone "--flag" of `extra` appended.
inline Args with(Args base, const Args& extra) {
  for (size_t i = 0; i < extra.size(); i++) {
    const bool pair =
        extra[i].rfind("--", 0) == 0 && i + 1 < extra.size() && extra[i + 1].rfind("--", 0) != 0;
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

inline std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

// The process ended by itself (no signal, no abort/segfault exit code) with status 0.
#define EXPECT_OK(r)                                      \
  do {                                                    \
    const Result& r_ok_ = (r);                            \
    EXPECT_TRUE(r_ok_.exited&& r_ok_.code == 0) << r_ok_; \
  } while (0)

// Bad input: a non-zero exit by exit() (not a crash: no signal, not 134/139), and the error is a
// single line "error: ..." mentioning `what`, the last thing on stderr (an informational banner
// may come before it), with no other line that looks like part of an error.
inline void expect_error(const Result& r, const std::string& what) {
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

inline std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

// Deterministic text over a small alphabet: learnable, and long enough for a few windows.
inline std::string make_text(size_t n) {
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

inline SafeTensors parse_safetensors(const fs::path& p) {
  const std::string b = read_file(p);
  EXPECT_GE(b.size(), 8u);
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t((unsigned char)b[i]) << (8 * i);
  EXPECT_LE(8 + n, b.size());
  return {json::parse(b.substr(8, n)), b.substr(8 + n)};
}

// Writes the file with a valid "crc32" entry (as docs/checkpoints.md defines it: CRC-32 of the
// header without that entry, dumped compact with sorted keys, then the data): a file edited by a
// careful hand, whose content the reader must judge on its merits.
inline void write_safetensors(const fs::path& p, const SafeTensors& st) {
  json header = st.header;
  header["__metadata__"].erase("crc32");
  const std::string canonical = header.dump();
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(canonical.data()), (uInt)canonical.size());
  crc = crc32(crc, reinterpret_cast<const Bytef*>(st.data.data()), (uInt)st.data.size());
  header["__metadata__"]["crc32"] = std::to_string((uint32_t)crc);
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::string b(8, '\0');
  for (int i = 0; i < 8; i++) b[i] = char((uint64_t)h.size() >> (8 * i));
  write_file(p, b + h + st.data);
}

// ------------------------------------------------------------------------------------------------
// The fixture of the tests that train through the binary (test_cli, test_faults).

// The tiny architecture every such run uses, and quiet, single-threaded training flags.
const Args kModel = {"--layers", "1",      "--d-model", "32",        "--heads",
                     "2",        "--d-ff", "32",        "--context", "32"};
const Args kTrain = {"--batch",   "4", "--warmup",     "2", "--eval-batches", "1",
                     "--threads", "1", "--sample-len", "0", "--quiet"};

// A fresh temporary directory per test, holding `data.txt` (20 KB of text).
class RunDirTest : public ::testing::Test {
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
  fs::path dir_;
  std::string data_;
};

}  // namespace cli
