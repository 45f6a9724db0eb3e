#include "engine.h"

#include <fmt/format.h>

#include "../common.h"

namespace scalevec {

namespace {

class CpuEngine final : public StepEngine {
 public:
  CpuEngine(Transformer<float>& model, Optimizer<float>& opt) : model_(model), opt_(opt) {}

  std::string name() const override {
    return fmt::format("cpu, {} thread{}", num_threads(), num_threads() == 1 ? "" : "s");
  }

  // The record is what this engine steps: there is nothing to copy, only to check.
  void load(const std::vector<float>& params, Optimizer<float>& opt) override {
    require(&params == &model_.params && &opt == &opt_,
            "the CPU engine steps the model and optimizer it was made for, not another's");
  }
  void store(std::vector<float>& params, Optimizer<float>& opt) override { load(params, opt); }

  // [snippet:cpu_step]
  double step(const Batch& b, double lr_factor, double grad_clip, double* grad_norm) override {
    const double loss = model_.forward(b.inputs.data(), b.targets.data(), b.B, b.T);
    model_.zero_grad();
    model_.backward();  // d loss / d every parameter
    *grad_norm = clip_grad_norm(model_.grads.data(), model_.grads.size(), grad_clip);
    opt_.step(model_.params.data(), model_.grads.data(), lr_factor);  // AdamW, Muon or SGD
    return loss;
  }
  // [end]

  double loss(const Batch& b, int n) override {
    return model_.forward(b.inputs.data(), b.targets.data(), n, b.T);
  }

  double gradient(const Batch& b, std::vector<float>* grads) override {
    const double loss = model_.forward(b.inputs.data(), b.targets.data(), b.B, b.T);
    model_.zero_grad();
    model_.backward();
    *grads = model_.grads;
    return loss;
  }

 private:
  Transformer<float>& model_;
  Optimizer<float>& opt_;
};

}  // namespace

std::unique_ptr<StepEngine> make_cpu_engine(Transformer<float>& model, Optimizer<float>& opt) {
  return std::make_unique<CpuEngine>(model, opt);
}

}  // namespace scalevec
