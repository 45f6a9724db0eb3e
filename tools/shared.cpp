// What the commands share: the Ctrl-C flag, shell quoting, the busy-machine check
// (tools/commands.h).
#include <csignal>

#include "commands.h"

namespace scalevec {

namespace {

std::atomic<bool> g_interrupt{false};

extern "C" void on_sigint(int) {
  g_interrupt.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

}  // namespace

void install_interrupt_handler() { std::signal(SIGINT, on_sigint); }
const std::atomic<bool>* interrupt_flag() { return &g_interrupt; }

std::string shell_quote(const std::string& w) {
  const char* plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:+@%";
  if (!w.empty() && w.find_first_not_of(plain) == std::string::npos) return w;
  std::string q = "'";
  for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

BusyMachineCheck::BusyMachineCheck(const DeviceChoice& where, int threads) {
  if (where.device == "cpu")
    warning_ = std::async(std::launch::async, [threads] { return busy_machine_warning(threads); });
}

void BusyMachineCheck::report() {
  if (!warning_.valid()) return;
  const std::string w = warning_.get();
  if (!w.empty()) fmt::print(stderr, "{}\n", w);
}

}  // namespace scalevec
