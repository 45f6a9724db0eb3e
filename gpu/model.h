// The whole model on the GPU: the same forward/backward call lists as ref/model (block.h,
// transformer.cpp), with gpu/ops.h kernels in place of ref/ops, on the same contiguous parameter
// layout. The structure (which scales exist where, every parameter offset) is read from a
// parameters-only ref Transformer<float> built from the same config, so the two paths cannot
// disagree on what a checkpoint or a gradient buffer means.
//
// fp32 throughout. Every reduction that produces a parameter gradient or the loss runs in a fixed
// order, so two runs on the same device give the same bits.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cuda_utils.cuh"
#include "ref/model/config.h"
#include "ref/params.h"

namespace scalevec {
template <class T>
class Transformer;
}

namespace scalevec::gpu {

class GpuTransformer {
 public:
  GpuTransformer(const ModelConfig& cfg, int max_B);
  ~GpuTransformer();
  GpuTransformer(const GpuTransformer&) = delete;
  GpuTransformer& operator=(const GpuTransformer&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const;
  int max_batch() const { return max_B_; }

  DeviceArray<float> params;  // (layout().total(),)
  DeviceArray<float> grads;   // same layout

  void set_params(const std::vector<float>& host);  // host -> device, layout size
  std::vector<float> get_params() const;
  std::vector<float> get_grads() const;

  // tokens, targets: host arrays (B, T). Returns the mean loss (summed on the host in the
  // reference's order); with targets == nullptr only the logits are computed (returns 0).
  float forward(const int32_t* tokens, const int32_t* targets, int B, int Tn);
  void backward(float dloss = 1.f);  // accumulates into grads
  void zero_grad();
  const float* logits() const;       // device (B, T, V) of the last forward
  double flops_per_token(int Tn) const;

 private:
  struct Impl;
  ModelConfig cfg_;
  int max_B_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace scalevec::gpu
