// The optimizers of ref/train/optim.h on the GPU: the same updates, element for element, on the
// device copies of the flat parameter, gradient and state buffers, with the same parameter groups
// (DecayRule from the layout's tags). State buffers keep the reference's names ("adam.m", ...) so
// that a checkpoint written from the GPU is one the CPU reference resumes, and back.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cuda_utils.cuh"
#include "ref/params.h"
#include "ref/train/config.h"

namespace scalevec::gpu {

class GpuOptimizer {
 public:
  // cfg.optimizer picks adamw, muon or sgd, configured exactly as ref make_optimizer does.
  GpuOptimizer(const ParamLayout& layout, const TrainConfig& cfg);
  // One update of params from grads with every base learning rate × lr_factor.
  void step(float* params, const float* grads, double lr_factor);
  const std::string& name() const { return name_; }
  // Host copies of every state buffer by the reference's names, and the way back (resume).
  std::vector<std::pair<std::string, std::vector<float>>> download_state() const;
  void upload_state(const std::string& name, const std::vector<float>& host);

  int64_t t = 0;  // steps taken (AdamW's bias correction)

 private:
  void adamw_step(float* p, const float* g, double lr_factor, int64_t t);
  struct Matrix {
    size_t offset;
    int rows, cols;
    bool decay;
  };
  std::string name_;
  TrainConfig cfg_;
  std::vector<ParamGroup> groups_;  // adamw / sgd groups (muon: its AdamW part's)
  std::vector<Matrix> matrices_;    // muon
  std::vector<std::pair<std::string, DeviceArray<float>>> state_;
  DeviceArray<float> update_, work_;  // muon scratch
};

// Global L2 norm of the gradient (fixed-order partial sums, added on the host in double); above
// max_norm > 0 the gradient is scaled to max_norm, as ref clip_grad_norm. Returns the norm.
double clip_grad_norm(float* grads, size_t n, double max_norm, DeviceArray<float>& partial);

}  // namespace scalevec::gpu
