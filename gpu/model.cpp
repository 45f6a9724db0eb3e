#include "model.h"

// The model's code on this backend, compiled once, here: the members the GPU path calls (init,
// the trace and the fold sites read host memory and exist only for host backends).
template scalevec::Transformer<float, scalevec::gpu::CudaOps>::Transformer(
    const scalevec::ModelConfig&, int);
template float scalevec::Transformer<float, scalevec::gpu::CudaOps>::forward(const int32_t*,
                                                                             const int32_t*, int,
                                                                             int);
template void scalevec::Transformer<float, scalevec::gpu::CudaOps>::backward(float);
template void scalevec::Transformer<float, scalevec::gpu::CudaOps>::zero_grad();
template double scalevec::Transformer<float, scalevec::gpu::CudaOps>::flops_per_token(int) const;

namespace scalevec::gpu {

GpuTransformer::GpuTransformer(const ModelConfig& cfg, int max_B) : Transformer(cfg, max_B) {
  require(max_B >= 1, "GPU model: batch size {} must be >= 1", max_B);
}

void GpuTransformer::set_params(const std::vector<float>& host) {
  require(host.size() == layout().total(), "GPU model: {} parameters given, the layout has {}",
          host.size(), layout().total());
  params.upload(host.data(), host.size());
}

}  // namespace scalevec::gpu
