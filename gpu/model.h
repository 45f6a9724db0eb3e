// The whole model on the GPU: the reference's own Transformer (ref/model/transformer.h, and with it
// Block, InputSideScale, OutputSide and ScaleVector) instantiated on the CUDA backend
// (gpu/backend.h). There is no second copy of any module: the call lists, the parameter layout and
// every offset are the reference's. Parameters and gradients live in device memory.
//
// Every reduction that produces a parameter gradient or the loss runs in a fixed order, so two
// runs on the same device give the same bits.
#pragma once

#include <cstdint>
#include <vector>

#include "backend.h"
#include "ref/model/transformer.h"

namespace scalevec {
// Compiled once, in gpu/model.cpp.
extern template Transformer<float, gpu::CudaOps>::Transformer(const ModelConfig&, int);
extern template float Transformer<float, gpu::CudaOps>::forward(const int32_t*, const int32_t*, int,
                                                                int);
extern template void Transformer<float, gpu::CudaOps>::backward(float);
extern template void Transformer<float, gpu::CudaOps>::zero_grad();
extern template double Transformer<float, gpu::CudaOps>::flops_per_token(int) const;
}  // namespace scalevec

namespace scalevec::gpu {

class GpuTransformer : public Transformer<float, CudaOps> {
 public:
  GpuTransformer(const ModelConfig& cfg, int max_B);

  void set_params(const std::vector<float>& host);  // host -> device, layout size
  std::vector<float> get_params() const { return params.to_host(); }
  std::vector<float> get_grads() const { return grads.to_host(); }
};

}  // namespace scalevec::gpu
