#include "engine.h"

#include "device.h"
#include "model.h"
#include "ops.h"
#include "optim.h"
#include "ref/train/data.h"
#include "ref/train/optim.h"

namespace scalevec::gpu {

namespace {

class CudaEngine final : public StepEngine {
 public:
  CudaEngine(const ModelConfig& mcfg, const TrainConfig& tcfg, Precision precision)
      : model_(mcfg, tcfg.batch), opt_(model_.layout(), tcfg), precision_(precision) {}

  std::string name() const override {
    return fmt::format("cuda ({}), {} matrix products", describe(), precision_name(precision_));
  }

  void load(const std::vector<float>& params, Optimizer<float>& opt) override {
    require(opt.name() == opt_.name(), "optimizer '{}' on the host, '{}' on the GPU", opt.name(),
            opt_.name());
    model_.set_params(params);
    for (auto& [name, buf] : opt.state()) opt_.upload_state(name, *buf);
    opt_.t = opt.t;
  }

  void store(std::vector<float>& params, Optimizer<float>& opt) override {
    params = model_.get_params();
    for (auto& [name, host] : opt_.download_state())
      for (auto& [hname, buf] : opt.state())
        if (hname == name) *buf = std::move(host);
    opt.t = opt_.t;
  }

  double step(const Batch& b, double lr_factor, double grad_clip, double* grad_norm) override {
    set_matmul_precision(precision_);
    const double loss = model_.forward(b.inputs.data(), b.targets.data(), b.B, b.T);
    model_.zero_grad();
    model_.backward();
    *grad_norm = clip_grad_norm(model_.grads.data(), model_.grads.size(), grad_clip, partial_);
    opt_.step(model_.params.data(), model_.grads.data(), lr_factor);
    synchronize();  // the step's kernels are done: a timing of step() covers them
    return loss;
  }

  double loss(const Batch& b, int n) override {
    set_matmul_precision(precision_);
    return model_.forward(b.inputs.data(), b.targets.data(), n, b.T);
  }

  double gradient(const Batch& b, std::vector<float>* grads) override {
    set_matmul_precision(precision_);
    model_.zero_grad();
    const double loss = model_.forward(b.inputs.data(), b.targets.data(), b.B, b.T);
    model_.backward();
    *grads = model_.get_grads();
    return loss;
  }

 private:
  GpuTransformer model_;
  GpuOptimizer opt_;
  Precision precision_;
  DeviceArray<float> partial_;
};

}  // namespace

EngineFactory cuda_engine(const TrainConfig& tcfg, Precision precision) {
  std::string why;
  require(available(&why), "--device cuda: {}", why);
  return [tcfg, precision](Transformer<float>& model,
                           Optimizer<float>& opt) -> std::unique_ptr<StepEngine> {
    auto e = std::make_unique<CudaEngine>(model.config(), tcfg, precision);
    e->load(model.params, opt);
    return e;
  };
}

}  // namespace scalevec::gpu
