// Learning-rate schedule: linear warmup, then cosine decay to min_lr_frac · lr at the last step.
#pragma once

#include <cmath>
#include <numbers>

namespace scalevec {

struct Schedule {
  double lr = 1e-3;
  int warmup = 0;            // steps of linear warmup
  int total = 1;             // total training steps
  double min_lr_frac = 0.1;  // final learning rate as a fraction of lr

  // [snippet:cosine]
  double at(int step) const {
    if (step < warmup) return lr * double(step + 1) / double(warmup);
    const int span = total - warmup;
    if (span <= 1) return lr * min_lr_frac;  // a single step after warmup is the last one
    const double progress = double(step - warmup) / double(span - 1);  // 0 .. 1
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    return lr * (min_lr_frac + (1.0 - min_lr_frac) * cosine);
  }
  // [end]
};

}  // namespace scalevec
