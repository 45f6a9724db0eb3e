#include "commands.h"
namespace scalevec {
Action add_bench(CLI::App& app) {
  app.add_subcommand("bench", "Benchmark (being written)");
  return [] { return 1; };
}
}  // namespace scalevec
