// --device for train, ablate and bench: cpu (the reference) or cuda (the GPU mirror, gpu/).
#include "commands.h"
#include "ref/common.h"
#ifdef SCALEVEC_HAVE_CUDA
#include "gpu/engine.h"
#endif

namespace scalevec {

CLI::Option* add_device_option(CLI::App* cmd, std::string& device) {
  return cmd
      ->add_option("--device", device,
                   "where training runs: cpu (the reference) or cuda (the GPU mirror, fp32; "
                   "needs a build with CUDA and a GPU). Checkpoints are the same either way")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
}

std::unique_ptr<StepEngine> make_engine(const std::string& device, const ModelConfig& mcfg,
                                        const TrainConfig& tcfg) {
  if (device == "cpu") return nullptr;
  require(device == "cuda", "unknown device '{}' (expected cpu or cuda)", device);
#ifdef SCALEVEC_HAVE_CUDA
  return gpu::make_cuda_engine(mcfg, tcfg);
#else
  (void)mcfg, (void)tcfg;
  throw Error("--device cuda: this scalevec was built without CUDA (no nvcc found at configure time)");
#endif
}

}  // namespace scalevec
