// Chapter 00: the training loop of `scalevec train`, written out with the library's pieces so that
// every line can be stepped through in a debugger. Usage: ch00_getting_started [--steps N] ...
#include <cmath>
#include <cstdio>

#include <CLI/CLI.hpp>

#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"
#include "ref/train/data.h"
#include "ref/train/optim.h"
#include "ref/train/sample.h"
#include "ref/train/schedule.h"
#include "ref/train/trainer.h"

using namespace scalevec;

int main(int argc, char** argv) {
  select_blas_kernel(argv);  // OpenBLAS's fast kernels on CPUs it does not know (ref/common.h)
  CLI::App app{"Chapter 00: a first training run on the fortunes corpus, step by step"};
  int steps = 300, batch = 8;
  ModelConfig cfg = model_preset("tiny");
  cfg.n_layer = 2, cfg.d_model = 64, cfg.n_head = 2, cfg.d_ff = 192, cfg.context = 64;
  app.add_option("--steps", steps, "optimizer steps")->capture_default_str();
  app.add_option("--batch", batch, "sequences per step")->capture_default_str();
  app.add_option("--layers", cfg.n_layer, "transformer blocks")->capture_default_str();
  app.add_option("--d-model", cfg.d_model, "model width")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    // 1. Data: bytes of the fortunes corpus, every 10th 4 KiB chunk held out for validation.
    const TextData data = load_data("", cfg.context);
    std::printf("data: %s, %zu train / %zu val bytes\n", data.source.c_str(), data.train.size(),
                data.val.size());
    // 2. Model: parameters in one buffer, initialised from the seed; AdamW and the schedule.
    Transformer<float> model(cfg, batch);
    model.init(42);
    const double peak_lr = 3e-3;
    AdamWConfig ac;   // weight decay 0.1 on matrices and head, none on gains (policy "none")
    ac.lr = peak_lr;  // the schedule multiplies it by a factor in [0, 1]
    AdamW<float> opt(model.layout(), ac);
    const Schedule sched{peak_lr, steps / 10, steps, 0.1};  // warmup 10%, cosine down to 10%
    std::printf("model: %zu parameters; a uniform guess costs ln 256 = %.3f nats per byte\n",
                model.layout().total(), std::log(256.0));
    const double val0 = evaluate(model, data.val, batch, 4);
    std::printf("step %4d  val loss %.4f (untrained)\n", 0, val0);
    // 3. The loop: batch -> forward -> backward -> clip -> AdamW step.
    Rng rng(7);
    Batch b;
    // [snippet:loop]
    for (int step = 0; step < steps; step++) {
      sample_batch(b, data.train, batch, cfg.context, rng);  // random windows of bytes
      float loss = model.forward(b.inputs.data(), b.targets.data(), batch, cfg.context);
      model.zero_grad();
      model.backward();  // d loss / d every parameter
      double norm = clip_grad_norm(model.grads.data(), model.grads.size(), 1.0);
      opt.step(model.params.data(), model.grads.data(), sched.factor(step));
      if ((step + 1) % (steps / 10 > 0 ? steps / 10 : 1) == 0)
        std::printf("step %4d  train loss %.4f  grad norm %.3f  lr %.2e\n", step + 1, loss, norm,
                    sched.at(step));
    }
    // [end]
    const double val1 = evaluate(model, data.val, batch, 4);
    std::printf("step %4d  val loss %.4f\n", steps, val1);
    SampleOptions so;
    so.length = 200;
    Rng srng(1);
    std::printf("--- sample ---\n%s\n--------------\n", generate(model, "\n", so, srng).c_str());
    // The chapter's claim, checked: training lowered the validation loss.
    if (!(val1 < val0)) {
      std::printf("FAIL: validation loss did not fall (%.4f -> %.4f)\n", val0, val1);
      return 1;
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
}
