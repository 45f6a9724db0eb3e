// The CUDA training engine: the trainer's step (forward, backward, clipping, optimizer update),
// its validation losses and a gradient on the GPU mirror, behind ref/train/engine.h's StepEngine.
#pragma once

#include <memory>

#include "precision.h"
#include "ref/model/config.h"
#include "ref/train/config.h"
#include "ref/train/engine.h"

namespace scalevec::gpu {

// The engine factory of `--device cuda` (TrainOptions::engine, bench, gradcheck): a CUDA engine
// for the host model's config and tcfg's optimizer, loaded with the host model and optimizer.
// Throws Error (one line, saying why) at once when no CUDA device can be used. Its steps set the
// process's matrix-product precision (gpu/ops.h).
EngineFactory cuda_engine(const TrainConfig& tcfg, Precision precision = Precision::fp32);

}  // namespace scalevec::gpu
