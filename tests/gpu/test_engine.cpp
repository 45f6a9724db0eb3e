// The CUDA engine inside the real trainer (gpu/engine.cpp behind ref/train/engine.h's StepEngine,
// what `scalevec train --device cuda` runs) and the GPU side of `gradcheck --device cuda`
// (StepEngine::gradient compared by ref/check/grad_compare.h), against the CPU trainer and the
// double gradient. Like test_gpu.cpp this builds
// twice: as test_gpu (real kernels; skips without a device) and as test_gpu_host (the kernels'
// host double), so CI checks the engine's glue: the parameters and optimizer state it loads and
// stores (checkpoints written by one device and resumed on the other), validation, clipping, the
// learning-rate schedule and the precision it sets.
//
// Tolerances: 12 steps of training in fp32, so the 10-step rules of test_gpu.cpp (loss 2e-4
// relative, parameters ‖gpu − cpu‖ ≤ 2e-3 ‖cpu‖); bf16 matrix products: 2u = 2^-7 relative on
// the losses.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "../ref/train_util.h"
#include "ref/check/grad_compare.h"
#include "gpu/device.h"
#include "gpu/engine.h"
#include "gpu/ops.h"
#include "require_gpu.h"
#include "ref/model/transformer.h"
#include "ref/train/optim.h"

namespace scalevec {
namespace {

using test::TempDir;
using test::TrainSetup;

// engine: empty = the CPU reference (the trainer's default).
TrainResult run(const TrainSetup& s, const std::string& out, const EngineFactory& engine,
                int stop_at = 0, bool resume = false) {
  TrainOptions o;
  o.out_dir = out, o.stop_at = stop_at, o.resume = resume, o.progress = false, o.engine = engine;
  o.sample.length = 0;
  return train(s.model, s.train, s.data, o);
}

double norm_rel(const std::vector<float>& a, const std::vector<float>& b) {
  double dd = 0, bb = 0;
  for (size_t i = 0; i < b.size(); i++)
    dd += std::pow(double(a[i]) - b[i], 2), bb += double(b[i]) * b[i];
  return std::sqrt(dd / bb);
}

// Every step's loss and gradient norm, the validation losses and the final weights of two runs.
void expect_close_runs(const std::string& what, const TrainResult& g, const TrainResult& c,
                       const std::vector<float>& pg, const std::vector<float>& pc, double loss_rtol,
                       double param_tol) {
  ASSERT_EQ(g.steps.size(), c.steps.size()) << what;
  double worst_loss = 0;
  for (size_t i = 0; i < c.steps.size(); i++) {
    EXPECT_EQ(g.steps[i].lr, c.steps[i].lr) << what << " step " << i + 1;  // the same schedule
    const double rel = std::abs(g.steps[i].loss - c.steps[i].loss) / c.steps[i].loss;
    worst_loss = std::max(worst_loss, rel);
    EXPECT_LE(rel, loss_rtol) << what << " loss, step " << i + 1;
    EXPECT_NEAR(g.steps[i].grad_norm, c.steps[i].grad_norm, 10 * loss_rtol * c.steps[i].grad_norm)
        << what << " gradient norm, step " << i + 1;
  }
  ASSERT_EQ(g.val.size(), c.val.size()) << what;
  for (size_t i = 0; i < c.val.size(); i++) {
    EXPECT_EQ(g.val[i].first, c.val[i].first) << what;
    EXPECT_NEAR(g.val[i].second, c.val[i].second, loss_rtol * c.val[i].second)
        << what << " validation";
  }
  const double prel = norm_rel(pg, pc);
  EXPECT_LE(prel, param_tol) << what << " final weights";
  std::printf("[cmp] %-44s n=%-8zu max rel %.2e  %6.2f%% of threshold (rtol %.0e)\n",
              (what + " step losses").c_str(), c.steps.size(), worst_loss,
              100 * worst_loss / loss_rtol, loss_rtol);
  std::printf("[cmp] %-44s n=%-8zu norm rel %.2e  %6.2f%% of threshold (tol %.0e)\n",
              (what + " final weights").c_str(), pc.size(), prel, 100 * prel / param_tol,
              param_tol);
}

class EngineGpu : public ::testing::TestWithParam<std::string> {};

// The trainer with the CUDA engine against the CPU trainer, for each optimizer.
TEST_P(EngineGpu, TrainsLikeTheCpu) {
  REQUIRE_GPU();
  TempDir dir;
  TrainSetup s;
  s.train.optimizer = parse_optimizer(GetParam());
  s.model.set_scale("unified");
  const TrainResult cpu = run(s, dir / "cpu", {});
  const TrainResult gpu = run(s, dir / "gpu", gpu::cuda_engine(s.train));
  ASSERT_TRUE(gpu.finished);
  if (GetParam() != "sgd") {  // (SGD at AdamW's learning rate barely moves in 12 steps)
    EXPECT_LT(gpu.steps.back().loss, gpu.steps.front().loss - 0.2) << "the GPU run did not train";
  }
  expect_close_runs("engine " + GetParam() + " vs cpu", gpu, cpu,
                    test::final_params(s.model, dir / "gpu"),
                    test::final_params(s.model, dir / "cpu"), 2e-4, 2e-3);
}
INSTANTIATE_TEST_SUITE_P(Optimizers, EngineGpu, ::testing::Values("adamw", "muon", "sgd"));

// A checkpoint is the same on both devices: 7 steps on one, resumed for 5 on the other, matches
// 12 steps on the CPU (the optimizer state crosses with its step count and every buffer).
TEST(EngineGpuResume, AcrossDevices) {
  REQUIRE_GPU();
  TempDir dir;
  TrainSetup s;
  s.train.optimizer =
      OptimizerKind::Muon;  // momentum and the AdamW part's m, v: every kind of state
  const TrainResult cpu = run(s, dir / "cpu", {});
  const std::vector<float> p_cpu = test::final_params(s.model, dir / "cpu");
  for (bool gpu_first : {true, false}) {
    const std::string out = dir / (gpu_first ? "gpu-cpu" : "cpu-gpu");
    const EngineFactory engine = gpu::cuda_engine(s.train);
    const TrainResult a = run(s, out, gpu_first ? engine : EngineFactory{}, 7);
    const TrainResult b = run(s, out, gpu_first ? EngineFactory{} : engine, 0, true);
    ASSERT_EQ(a.last_step, 7);
    ASSERT_TRUE(b.finished);
    TrainResult joined = a;
    joined.steps.insert(joined.steps.end(), b.steps.begin(), b.steps.end());
    joined.val.insert(joined.val.end(), b.val.begin(), b.val.end());
    expect_close_runs(gpu_first ? "7 steps gpu, 5 cpu" : "7 steps cpu, 5 gpu", joined, cpu,
                      test::final_params(s.model, out), p_cpu, 2e-4, 2e-3);
  }
}

// On the device itself a resumed run is the uninterrupted run, bit for bit (deterministic kernels,
// exact fp32 checkpoints).
TEST(EngineGpuResume, OnTheDeviceIsBitIdentical) {
  REQUIRE_GPU();
  TempDir dir;
  TrainSetup s;
  const EngineFactory engine = gpu::cuda_engine(s.train);
  const TrainResult full = run(s, dir / "full", engine);
  const TrainResult a = run(s, dir / "split", engine, 7);
  const TrainResult b = run(s, dir / "split", engine, 0, true);
  ASSERT_EQ(a.steps.size() + b.steps.size(), full.steps.size());
  for (size_t i = 0; i < full.steps.size(); i++) {
    const StepRecord& r = i < a.steps.size() ? a.steps[i] : b.steps[i - a.steps.size()];
    EXPECT_EQ(r.loss, full.steps[i].loss) << "step " << i + 1;
    EXPECT_EQ(r.grad_norm, full.steps[i].grad_norm) << "step " << i + 1;
  }
  EXPECT_EQ(test::final_params(s.model, dir / "full"), test::final_params(s.model, dir / "split"));
}

// bf16 matrix products in the trainer: the losses stay within 2u of the fp32 CPU run, and the
// engine restores fp32 for whatever runs after it in the process.
TEST(EngineGpuPrecision, Bf16TrainsWithinItsRoundoff) {
  REQUIRE_GPU();
  TempDir dir;
  TrainSetup s;
  s.model.set_scale("unified");
  const TrainResult cpu = run(s, dir / "cpu", {});
  {
    const EngineFactory engine = gpu::cuda_engine(s.train, gpu::Precision::bf16);
    Transformer<float> host(s.model, s.train.batch);
    const auto host_opt = make_optimizer<float>(host.layout(), s.train);
    const std::string name = engine(host, *host_opt)->name();
    EXPECT_NE(name.find("bf16"), std::string::npos) << name;
    const TrainResult g = run(s, dir / "gpu", engine);
    expect_close_runs("engine bf16 vs cpu", g, cpu, test::final_params(s.model, dir / "gpu"),
                      test::final_params(s.model, dir / "cpu"),
                      2 * gpu::unit_roundoff(gpu::Precision::bf16),
                      8 * gpu::unit_roundoff(gpu::Precision::bf16));
  }
  gpu::set_matmul_precision(gpu::Precision::fp32);
}

// gradcheck --device cuda's comparison: the engine's gradient of every tensor against the double
// gradient passes at the fp32 tolerance, and a wrong reference gradient in one tensor fails there
// and only there.
TEST(GradcheckGpu, ComparesEveryTensorAndCatchesAWrongOne) {
  REQUIRE_GPU();
  ModelConfig cfg;
  cfg.n_layer = 2, cfg.d_model = 32, cfg.n_head = 2, cfg.d_ff = 48, cfg.context = 9;
  cfg.set_scale("unified");
  cfg.validate();
  const int B = 2, T = 9;
  Transformer<double> m(cfg, B);
  m.init(3);
  Batch b;
  b.B = B, b.T = T, b.inputs.resize(B * T), b.targets.resize(B * T);
  Rng rng(4);
  for (int i = 0; i < B * T; i++)
    b.inputs[i] = int32_t(rng.below(256)), b.targets[i] = int32_t(rng.below(256));
  m.zero_grad();
  const double loss = m.forward(b.inputs.data(), b.targets.data(), B, T);
  m.backward();
  TrainConfig tcfg = train_preset("tiny");
  tcfg.batch = B;
  Transformer<float> host(cfg, B);
  host.params.assign(m.params.begin(), m.params.end());
  const auto opt = make_optimizer<float>(host.layout(), tcfg);
  std::vector<float> g;
  const double loss_gpu = gpu::cuda_engine(tcfg)(host, *opt)->gradient(b, &g);
  auto rows = compare_gradients(m.layout(), m.grads, g);
  ASSERT_EQ(rows.size(), m.layout().params().size());
  EXPECT_NEAR(loss_gpu, loss, 2e-4 * loss);
  for (const auto& r : rows) {
    if (r.numel == 0) continue;
    EXPECT_LE(r.share(2e-4), 1.0) << r.name << ": norm rel " << r.norm_rel;
  }
  // One tensor's reference gradient off by 1%: that tensor fails, the others still pass.
  const ParamInfo* wq = nullptr;
  for (const auto& p : m.layout().params())
    if (!wq && p.role == Role::Matrix) wq = &p;
  ASSERT_NE(wq, nullptr);
  std::vector<double> wrong = m.grads;
  for (size_t i = wq->offset; i < wq->offset + wq->numel; i++) wrong[i] *= 1.01;
  rows = compare_gradients(m.layout(), wrong, g);
  for (const auto& r : rows) {
    if (r.name == wq->name) {
      EXPECT_GT(r.share(2e-4), 1.0) << r.name;
    } else {
      EXPECT_LE(r.share(2e-4), 1.0) << r.name;
    }
  }
}

}  // namespace
}  // namespace scalevec
