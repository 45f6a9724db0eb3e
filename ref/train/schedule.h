// Learning-rate schedules (docs/SCALE_VECTORS.md §5: the paper varies the schedule; cosine and
// warmup-stable-decay are the standard pair [paper]). A schedule is a multiplier factor(step) in
// [0, 1] of each optimizer's base learning rate; at(step) = lr · factor(step) is the absolute rate
// for a base rate lr (the one the progress line and metrics.jsonl report: AdamW's or SGD's).
// Every kind starts with the same linear warmup, factor = (step+1)/warmup, reaching 1 at its last
// step; then
//   cosine    cosine decay from 1 to min_lr_frac, reached exactly at the last step
//   constant  1 to the end (min_lr_frac is not used)
//   wsd       warmup-stable-decay: 1 (stable), then over the last round(decay_frac · total) steps a
//             linear decay to min_lr_frac, reached exactly at the last step [choice: linear decay,
//             a fraction of the run; the paper's exact WSD shape is not known]
// Steps are 0-based: step s is the (s+1)-th optimizer step of a run of `total` steps.
#pragma once

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include <string>
#include <vector>

#include "../common.h"

namespace scalevec {

enum class ScheduleKind { Cosine, Constant, Wsd };

inline const char* schedule_name(ScheduleKind k) {
  switch (k) {
    case ScheduleKind::Cosine:
      return "cosine";
    case ScheduleKind::Constant:
      return "constant";
    case ScheduleKind::Wsd:
      return "wsd";
  }
  return "?";
}

inline const std::vector<std::string>& schedule_list() {  // every schedule's name, in order
  static const std::vector<std::string> names{"cosine", "constant", "wsd"};
  return names;
}

inline ScheduleKind parse_schedule(const std::string& s) {
  if (s == "cosine") return ScheduleKind::Cosine;
  if (s == "constant") return ScheduleKind::Constant;
  if (s == "wsd") return ScheduleKind::Wsd;
  throw Error(fmt::format("unknown schedule '{}' (expected one of: {})", s,
                          fmt::join(schedule_list(), ", ")));
}

struct Schedule {
  double lr = 1e-3;          // base learning rate for at()
  int warmup = 0;            // steps of linear warmup
  int total = 1;             // total training steps
  double min_lr_frac = 0.1;  // final learning rate as a fraction of the peak (cosine, wsd)
  ScheduleKind kind = ScheduleKind::Cosine;
  double decay_frac = 0.2;  // wsd: share of the run spent decaying

  double at(int step) const { return lr * factor(step); }

  double factor(int step) const {
    if (step < warmup) return double(step + 1) / double(warmup);
    switch (kind) {
      case ScheduleKind::Cosine:
        return cosine(step);
      case ScheduleKind::Constant:
        return 1.0;
      case ScheduleKind::Wsd:
        return wsd(step);
    }
    return 1.0;
  }

  // [snippet:cosine]
  double cosine(int step) const {  // after warmup
    const int span = total - warmup;
    if (span <= 1) return min_lr_frac;  // a single step after warmup is the last one
    const double progress = double(step - warmup) / double(span - 1);             // 0 .. 1
    const double half_cos = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));  // 1 .. 0
    return min_lr_frac + (1.0 - min_lr_frac) * half_cos;
  }
  // [end]

  // Number of decay steps of wsd: round(decay_frac · total), at least 1 when decay_frac > 0, and
  // never reaching into the warmup.
  int decay_steps() const {
    int n = int(std::lround(decay_frac * double(total)));
    if (decay_frac > 0) n = std::max(n, 1);
    return std::clamp(n, 0, std::max(0, total - warmup));
  }

  // [snippet:wsd]
  double wsd(int step) const {                               // after warmup
    const int decay = decay_steps(), start = total - decay;  // steps start .. total-1 decay
    if (step < start) return 1.0;                            // stable
    const double remaining = double(total - 1 - step) / double(decay);  // (decay-1)/decay .. 0
    return min_lr_frac + (1.0 - min_lr_frac) * remaining;
  }
  // [end]
};

}  // namespace scalevec
