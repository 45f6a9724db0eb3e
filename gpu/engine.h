// The CUDA training engine: the trainer's step (forward, backward, clipping, optimizer update)
// and its validation losses on the GPU mirror, behind ref/train/trainer.h's StepEngine.
#pragma once

#include <memory>

#include "precision.h"
#include "ref/model/config.h"
#include "ref/train/config.h"
#include "ref/train/trainer.h"

namespace scalevec::gpu {

// Throws Error (one line, saying why) when no CUDA device can be used. Sets the process's
// matrix-product precision (gpu/ops.h).
std::unique_ptr<StepEngine> make_cuda_engine(const ModelConfig& mcfg, const TrainConfig& tcfg,
                                             Precision precision = Precision::fp32);

}  // namespace scalevec::gpu
