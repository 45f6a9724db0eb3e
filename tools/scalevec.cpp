// scalevec: the command line. `scalevec --help` lists the subcommands; each has its own --help.
#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include "commands.h"
#include "ref/common.h"

int main(int argc, char** argv) {
  using namespace scalevec;
  // OpenBLAS's fast kernels on CPUs it does not know, and OpenMP threads that do not spin long
  // (ref/common.h); neither matters to the commands that run no parallel work.
  const std::string first = argc > 1 ? argv[1] : "";
  configure_runtime(argv,
                    first.empty() || first[0] == '-' || first == "inspect" || first == "diagram");
  // A write past the file-size limit fails with EFBIG and is reported like a full disk, instead
  // of killing the process in the middle of a save.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{
      "scalevec: a from-scratch transformer trainer about the scale vectors of normalization "
      "layers (arXiv 2605.26895)."};
  app.set_version_flag("--version", "scalevec 0.1.0, " + blas_kernel_description());
  app.require_subcommand(1);
  std::map<std::string, Action> actions;
  actions["train"] = add_train(app);
  actions["sample"] = add_sample(app);
  actions["eval"] = add_eval(app);
  actions["gradcheck"] = add_gradcheck(app);
  actions["inspect"] = add_inspect(app);
  actions["bench"] = add_bench(app);
  actions["trace"] = add_trace(app);
  actions["diagram"] = add_diagram(app);
  actions["ablate"] = add_ablate(app, {argv, argv + argc});
  // Parse errors as one line, like every other error: "error: <what> (see --help)".
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return fmt::format("error: {} (see --help)\n", e.what());
  });
  if (argc > 1 && argv[1][0] != '-' && !actions.count(argv[1])) {
    std::string names;
    for (auto* sub : app.get_subcommands({}))
      names += (names.empty() ? "" : ", ") + sub->get_name();
    std::fprintf(stderr, "error: unknown command '%s' (expected one of: %s)\n", argv[1],
                 names.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto* sub : app.get_subcommands()) return actions.at(sub->get_name())();
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 3;
  }
  return 0;
}
