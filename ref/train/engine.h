// Where a training step runs: the CPU reference or the GPU mirror (gpu/engine.h), behind one
// interface, so that the trainer, `scalevec bench` and `scalevec gradcheck` run either through the
// same calls.
//
// The caller keeps a host model and optimizer as the record. An engine is made for them
// (EngineFactory); it loads them, steps, and stores its parameters and optimizer state back into
// them before the caller evaluates on the host, saves a checkpoint or samples, so that a checkpoint
// means the same thing whichever engine trained. The CPU engine steps the record itself, so for
// it loading and storing copy nothing.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../model/transformer.h"
#include "data.h"
#include "optim.h"

namespace scalevec {

class StepEngine {
 public:
  virtual ~StepEngine() = default;
  // e.g. "cpu, 2 threads" or "cuda (NVIDIA H200, sm_90, 139.8 GiB), fp32 matrix products"
  virtual std::string name() const = 0;
  virtual void load(const std::vector<float>& params, Optimizer<float>& opt) = 0;
  virtual void store(std::vector<float>& params, Optimizer<float>& opt) = 0;
  // forward, zero_grad, backward, clip to grad_clip (0 = off), one optimizer step with lr_factor;
  // returns the loss and sets *grad_norm (before clipping). All of its work is done on return.
  virtual double step(const Batch& batch, double lr_factor, double grad_clip,
                      double* grad_norm) = 0;
  // Mean loss of the current parameters on the first n rows of `batch` (no gradients).
  virtual double loss(const Batch& batch, int n) = 0;
  // The gradient of the mean loss on `batch` at the current parameters (layout order), without
  // an optimizer step; returns the loss.
  virtual double gradient(const Batch& batch, std::vector<float>* grads) = 0;
};

// Makes the engine for a host model and optimizer, loaded with their state.
using EngineFactory =
    std::function<std::unique_ptr<StepEngine>(Transformer<float>& model, Optimizer<float>& opt)>;

// The CPU reference: the five calls of a step on the host model and optimizer themselves.
std::unique_ptr<StepEngine> make_cpu_engine(Transformer<float>& model, Optimizer<float>& opt);

}  // namespace scalevec
