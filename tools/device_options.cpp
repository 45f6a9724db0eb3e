// --device and --precision for train, ablate, bench and gradcheck: cpu (the reference, fp32) or
// cuda (the CUDA backend, gpu/, with fp32, tf32 or bf16 matrix products).
#include "commands.h"
#include "ref/common.h"
#include "gpu/precision.h"  // header-only: the precision names, in any build
#ifdef SCALEVEC_HAVE_CUDA
#include "gpu/device.h"
#include "gpu/engine.h"
#endif

namespace scalevec {

void add_device_options(CLI::App* cmd, DeviceChoice& choice, const std::string& device_help,
                        const std::string& precision_help) {
  cmd->add_option("--device", choice.device,
                  !device_help.empty()
                      ? device_help
                      : "where training runs: cpu (the reference) or cuda (the GPU "
                        "mirror; needs a build with CUDA and a GPU). Checkpoints "
                        "are the same either way")
      ->check(CLI::IsMember(device_list()))
      ->capture_default_str();
  cmd->add_option("--precision", choice.precision,
                  !precision_help.empty() ? precision_help
                                          : "matrix products on the GPU: fp32, tf32 (tensor cores, "
                                            "10-bit mantissa operands) or bf16 (mixed precision: "
                                            "bf16 operands, fp32 sums, fp32 master weights and "
                                            "scale vectors). cpu is fp32 only")
      ->check(CLI::IsMember(gpu::precision_list()))
      ->capture_default_str();
}

std::string engine_description(const DeviceChoice& choice) {
  if (choice.device == "cpu") return fmt::format("{} threads", num_threads());
#ifdef SCALEVEC_HAVE_CUDA
  return fmt::format("device cuda ({}), {} matrix products", gpu::describe(), choice.precision);
#else
  return "device " + choice.device;
#endif
}

EngineFactory make_engine(const DeviceChoice& choice, const TrainConfig& tcfg) {
  choice.validate();
  if (choice.device == "cpu") return make_cpu_engine;
  require(choice.device == "cuda", "unknown device '{}' (expected cpu or cuda)", choice.device);
#ifdef SCALEVEC_HAVE_CUDA
  return gpu::cuda_engine(tcfg, gpu::parse_precision(choice.precision));
#else
  (void)tcfg;
  throw Error(
      "--device cuda: this scalevec was built without CUDA (no nvcc found at configure time)");
#endif
}

}  // namespace scalevec
