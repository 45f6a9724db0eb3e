// Chapter 03: do scale vectors matter? The no-scale ablation.
//  1. their share of the parameters (tiny, small)
//  2. exact: at initialization (γ = 1) the model without scale vectors computes the same function
//     as the baseline, bit for bit: what differs is only that γ can learn
//  3. the experiment at a small size: baseline vs none, paired by seed
// Exit status 0 iff the exact check holds and every run finishes with a finite loss.
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "../common/chapter.h"
#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"

using namespace scalevec;

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 03: do scale vectors matter? (the no-scale ablation)"};
  int steps = 300, seeds = 2;
  app.add_option("--steps", steps, "training steps per run")->capture_default_str();
  app.add_option("--seeds", seeds, "seeds per arm")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  bool ok = true;

  std::printf("1. share of the parameters that are scale vectors\n");
  for (const char* preset : {"tiny", "small"}) {
    const Transformer<float> m(model_preset(preset), 0);
    const double share = double(m.layout().count_role(Role::Scale)) / double(m.layout().total());
    std::printf("   %-5s %9zu parameters, %5zu in scale vectors: %.2e (%.3f%%)\n", preset,
                m.layout().total(), m.layout().count_role(Role::Scale), share, 100 * share);
  }

  // [snippet:same_function]
  // The same weights by name; the baseline's γ are 1 (their initial value).
  ModelConfig cb = chapter::model("baseline"), cn = chapter::model("none");
  Transformer<float> base(cb, 2), none(cn, 2);
  base.init(7);
  for (const auto& p : none.layout().params())
    std::copy_n(base.params.begin() + base.layout().get(p.name).offset, p.numel,
                none.params.begin() + p.offset);
  Rng rng(8);
  std::vector<int32_t> tok(2 * cb.context);
  for (auto& t : tok) t = int32_t(rng.below(256));
  base.forward(tok.data(), nullptr, 2, cb.context);
  none.forward(tok.data(), nullptr, 2, cb.context);
  size_t differ = 0;
  for (size_t i = 0; i < tok.size() * 256; i++) differ += base.logits()[i] != none.logits()[i];
  // [end]
  std::printf("\n2. at init, baseline (γ = 1) and none give %s logits (%zu of %zu differ)\n",
              differ == 0 ? "bit-identical" : "DIFFERENT", differ, tok.size() * 256);
  ok &= differ == 0;

  std::printf("\n3. training: baseline vs none\n");
  if (!chapter::experiment({{"baseline", cb}, {"none (no scale vectors)", cn}}, steps, seeds))
    return 2;
  return ok ? 0 : 1;
}
