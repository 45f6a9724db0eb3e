// Tests of the training pieces (ref/train): AdamW against PyTorch's formula and the weight-decay
// policies, gradient clipping, the cosine schedule, the data split and batches, safetensors and
// checkpoints (round trips and every corruption), and exact resume and determinism of train().
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"
#include "ref/train/config.h"
#include "ref/train/data.h"
#include "ref/train/optim.h"
#include "ref/train/safetensors.h"
#include "ref/train/schedule.h"
#include "ref/train/trainer.h"
#include "single_threaded.h"
#include "train_util.h"

namespace fs = std::filesystem;

namespace scalevec {
namespace {

using namespace scalevec::test;

// ---------------------------------------------------------------------------------------------
// AdamW and weight-decay groups.

// One tensor of each kind, including an Output-type scale made by hand (no module in the model
// produces one yet).
ParamLayout every_kind_layout() {
  ParamLayout L;
  L.add(info("emb", {4}, Role::Embedding));
  L.add(info("w", {2, 3}, Role::Matrix));
  L.add(info("g_in", {3}, Role::Scale, ScaleType::Input));
  L.add(info("g_out", {2}, Role::Scale, ScaleType::Output));
  L.add(info("head", {2, 2}, Role::Head));
  return L;
}

// Which tensors decay, per policy: matrices and the head always, embeddings per flag, scales per
// policy and type (iwd: Input-type only).
TEST(DecayRule, PoliciesAcrossRoles) {
  const ParamInfo emb = info("e", {1}, Role::Embedding), mat = info("m", {1}, Role::Matrix),
                  head = info("h", {1}, Role::Head),
                  in = info("gi", {1}, Role::Scale, ScaleType::Input),
                  out = info("go", {1}, Role::Scale, ScaleType::Output);
  struct Row {
    WdPolicy policy;
    bool embed;
    bool emb, in, out;
  };
  const Row rows[] = {
      {WdPolicy::None, false, false, false, false}, {WdPolicy::None, true, true, false, false},
      {WdPolicy::All, false, false, true, true},    {WdPolicy::All, true, true, true, true},
      {WdPolicy::Iwd, false, false, true, false},   {WdPolicy::Iwd, true, true, true, false}};
  for (const Row& r : rows) {
    DecayRule d;
    d.scale_policy = r.policy, d.decay_embeddings = r.embed;
    const std::string what = fmt::format("{} embed={}", wd_policy_name(r.policy), r.embed);
    EXPECT_TRUE(d.decays(mat)) << what;
    EXPECT_TRUE(d.decays(head)) << what;
    EXPECT_EQ(d.decays(emb), r.emb) << what;
    EXPECT_EQ(d.decays(in), r.in) << what;
    EXPECT_EQ(d.decays(out), r.out) << what;
  }
  // The names parse back, and TrainConfig maps its fields onto the rule.
  for (WdPolicy p : {WdPolicy::None, WdPolicy::All, WdPolicy::Iwd})
    EXPECT_EQ(parse_wd_policy(wd_policy_name(p)), p);
  expect_error([] { parse_wd_policy("input"); }, {"input", "none, all, iwd"});
  TrainConfig t;
  t.wd_policy = WdPolicy::Iwd, t.wd_embed = true, t.weight_decay = 0.25;
  const AdamWConfig a = t.adamw();
  EXPECT_EQ(a.decay.scale_policy, WdPolicy::Iwd);
  EXPECT_TRUE(a.decay.decay_embeddings);
  EXPECT_EQ(a.decay.weight_decay, 0.25);
}

// AdamW equals PyTorch's torch.optim.AdamW, written out per element:
//     p ← p·(1 − lr·wd)   where the tensor decays
//     m ← β1 m + (1−β1) g,   v ← β2 v + (1−β2) g²
//     p ← p − lr · m̂ / (sqrt(v̂) + eps),   m̂ = m/(1−β1ᵗ),  v̂ = v/(1−β2ᵗ)
// for three steps with different learning rates, policy iwd (so emb and g_out do not decay).
TEST(AdamW, MatchesPerElementFormula) {
  const ParamLayout L = every_kind_layout();
  AdamWConfig cfg;
  cfg.beta1 = 0.9, cfg.beta2 = 0.95, cfg.eps = 1e-8;
  cfg.decay.weight_decay = 0.1, cfg.decay.scale_policy = WdPolicy::Iwd;
  cfg.decay.decay_embeddings = false;
  AdamW<double> opt(L, cfg);
  AdamW<float> optf(L, cfg);
  Rng rng(1);
  std::vector<double> p(L.total()), m(L.total(), 0), v(L.total(), 0);
  for (auto& x : p) x = rng.normal();
  std::vector<float> pf(p.begin(), p.end());
  std::vector<double> p_ref = p;
  std::vector<bool> decays(L.total());
  for (const auto& q : L.params())
    for (size_t i = 0; i < q.numel; i++) decays[q.offset + i] = cfg.decay.decays(q);
  const double lrs[] = {1e-2, 5e-3, 2e-3};
  for (int t = 1; t <= 3; t++) {
    std::vector<double> g(L.total());
    for (auto& x : g) x = rng.normal() * (t == 2 ? 1e-3 : 1.0);  // also small gradients
    const double lr = lrs[t - 1];
    for (size_t i = 0; i < p.size(); i++) {
      if (decays[i]) p_ref[i] *= 1 - lr * cfg.decay.weight_decay;
      m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g[i];
      v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g[i] * g[i];
      const double mhat = m[i] / (1 - std::pow(cfg.beta1, t)),
                   vhat = v[i] / (1 - std::pow(cfg.beta2, t));
      p_ref[i] -= lr * mhat / (std::sqrt(vhat) + cfg.eps);
    }
    opt.step(p.data(), g.data(), lr);
    std::vector<float> gf(g.begin(), g.end());
    optf.step(pf.data(), gf.data(), lr);
    for (size_t i = 0; i < p.size(); i++) {
      EXPECT_NEAR(p[i], p_ref[i], 1e-14 * (1 + std::abs(p_ref[i])))
          << "step " << t << " entry " << i;
      EXPECT_NEAR(opt.m[i], m[i], 1e-15 * (1 + std::abs(m[i])));
      EXPECT_NEAR(opt.v[i], v[i], 1e-15 * (1 + std::abs(v[i])));
      EXPECT_NEAR(pf[i], p_ref[i], 1e-6 * (1 + std::abs(p_ref[i]))) << "float, step " << t;
    }
  }
  EXPECT_EQ(opt.t, 3);
}

// With a zero gradient the Adam update is 0, so one step isolates the decoupled decay: exactly
// the tensors the rule selects shrink by (1 − lr·wd), the others are unchanged.
TEST(AdamW, DecayIsAppliedPerTensorFromTheTags) {
  const ParamLayout L = every_kind_layout();
  for (WdPolicy policy : {WdPolicy::None, WdPolicy::All, WdPolicy::Iwd})
    for (bool embed : {false, true}) {
      AdamWConfig cfg;
      cfg.decay.weight_decay = 0.5, cfg.decay.scale_policy = policy,
      cfg.decay.decay_embeddings = embed;
      AdamW<double> opt(L, cfg);
      std::vector<double> p(L.total(), 2.0), g(L.total(), 0.0);
      opt.step(p.data(), g.data(), 0.1);
      for (const auto& q : L.params())
        for (size_t i = q.offset; i < q.offset + q.numel; i++)
          EXPECT_EQ(p[i], cfg.decay.decays(q) ? 2.0 * (1 - 0.1 * 0.5) : 2.0)
              << q.name << " policy " << wd_policy_name(policy) << " embed " << embed;
    }
}

// clip_grad_norm: returns the norm before clipping; scales by max_norm/(norm + 1e-6) (PyTorch's
// clip_grad_norm_) only when the norm exceeds max_norm > 0.
TEST(ClipGradNorm, ScalesOnlyAboveTheLimit) {
  std::vector<double> g = {3, 0, -4};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), g.size(), 1.0), 5.0);
  const double s = 1.0 / (5.0 + 1e-6);
  EXPECT_DOUBLE_EQ(g[0], 3 * s);
  EXPECT_DOUBLE_EQ(g[2], -4 * s);
  EXPECT_NEAR(std::hypot(g[0], g[2]), 1.0, 1e-6);
  std::vector<float> f = {3, 0, -4};
  EXPECT_DOUBLE_EQ(clip_grad_norm(f.data(), f.size(), 10.0), 5.0);  // below: untouched
  EXPECT_EQ(f, (std::vector<float>{3, 0, -4}));
  EXPECT_DOUBLE_EQ(clip_grad_norm(f.data(), f.size(), 0.0), 5.0);  // 0 = off
  EXPECT_EQ(f, (std::vector<float>{3, 0, -4}));
  std::vector<float> big(1000, 1e20f);  // summed in double: no float overflow
  EXPECT_NEAR(clip_grad_norm(big.data(), big.size(), 1.0), 1e20 * std::sqrt(1000.0), 1e15);
  EXPECT_NEAR(big[0], 1 / std::sqrt(1000.0), 1e-6);
}

// ---------------------------------------------------------------------------------------------
// Learning-rate schedule.

// Linear warmup lr·(s+1)/warmup reaching lr at the last warmup step, then cosine from lr down to
// exactly lr·min_lr_frac at the last step, monotone, half way at the midpoint.
TEST(Schedule, WarmupThenCosineToMinimum) {
  const Schedule s{1e-3, 10, 21, 0.1};  // 11 decay steps: progress 0, 0.1, ..., 1
  for (int k = 0; k < 10; k++) EXPECT_DOUBLE_EQ(s.at(k), 1e-3 * (k + 1) / 10) << k;
  EXPECT_DOUBLE_EQ(s.at(10), 1e-3);
  EXPECT_NEAR(s.at(15), 1e-3 * (0.1 + 0.9 * 0.5), 1e-18);
  EXPECT_NEAR(s.at(20), 1e-3 * 0.1, 1e-18);
  for (int k = 11; k < 21; k++) EXPECT_LT(s.at(k), s.at(k - 1)) << k;
  const Schedule long_run{2e-3, 50, 1000, 0.1};
  double prev = long_run.at(0);
  for (int k = 1; k < 1000; k++) {
    const double lr = long_run.at(k);
    if (k < 50) {
      EXPECT_GT(lr, prev) << k;
    } else {
      EXPECT_LE(lr, prev) << k;
      EXPECT_GE(lr, 2e-4 * (1 - 1e-12)) << k;
    }
    EXPECT_LE(lr, 2e-3);
    prev = lr;
  }
  EXPECT_NEAR(long_run.at(999), 2e-4, 1e-18);
  const Schedule no_warmup{1e-3, 0, 5, 0.0};
  EXPECT_DOUBLE_EQ(no_warmup.at(0), 1e-3);
  EXPECT_NEAR(no_warmup.at(4), 0.0, 1e-18);
}

// ---------------------------------------------------------------------------------------------
// Data.

// Texts of >= 10 chunks: chunk c (4 KiB) goes to validation iff c % 10 == 9; the order and the
// bytes are kept; a last partial chunk goes where its index says.
TEST(Data, EveryTenthChunkIsValidation) {
  const size_t K = 4096;
  const std::string text = synthetic_text(25 * K + 100, 1);  // chunks 0..25, the last partial
  const TextData d = split_text(text, 64, "synthetic");
  EXPECT_EQ(d.source, "synthetic");
  std::string train, val;
  for (size_t c = 0; c * K < text.size(); c++) (c % 10 == 9 ? val : train) += text.substr(c * K, K);
  EXPECT_EQ(d.val.size(), 2 * K);
  EXPECT_EQ(std::string(d.val.begin(), d.val.end()), val);
  EXPECT_EQ(std::string(d.train.begin(), d.train.end()), train);
  EXPECT_EQ(d.train.size() + d.val.size(), text.size());
  const TextData ten = split_text(synthetic_text(10 * K, 2), 64, "ten");  // exactly 10 chunks
  EXPECT_EQ(ten.val.size(), K);
  EXPECT_EQ(ten.train.size(), 9 * K);
}

// Shorter texts hold out their last 10%; too short ones throw, saying how long the text is and
// how long each split must be.
TEST(Data, ShortTextFallbackAndTooShortText) {
  const std::string text = synthetic_text(1000, 3);
  const TextData d = split_text(text, 16, "short");
  EXPECT_EQ(std::string(d.train.begin(), d.train.end()), text.substr(0, 900));
  EXPECT_EQ(std::string(d.val.begin(), d.val.end()), text.substr(900));
  expect_error([] { split_text(synthetic_text(150, 4), 16, "tiny.txt"); },
               {"tiny.txt", "too short", "150 bytes", "context + 1 = 17"});
  // Long enough in total but one split too short: a context larger than a validation chunk.
  expect_error([] { split_text(synthetic_text(10 * 4096, 5), 5000, "big"); }, {"too short"});
}

TEST(Data, FilesMissingEmptyAndRead) {
  TempDir dir;
  expect_error([&] { load_data(dir / "nope.txt", 16); }, {"nope.txt", "does not exist"});
  write_bytes(dir / "empty.txt", "");
  expect_error([&] { load_data(dir / "empty.txt", 16); }, {"empty.txt", "is empty"});
  const std::string text = synthetic_text(5000, 6);
  write_bytes(dir / "t.txt", text);
  const TextData d = load_data(dir / "t.txt", 16);
  EXPECT_EQ(d.source, dir / "t.txt");
  EXPECT_EQ(d.train.size() + d.val.size(), text.size());
}

// The default corpus (Debian's fortunes) when installed: English text, split by chunks.
TEST(Data, DefaultCorpus) {
  bool any = false;
  for (const auto& dir : default_corpus_dirs()) any |= fs::is_directory(dir);
  if (!any) GTEST_SKIP() << "no fortunes corpus installed";
  const TextData d = load_data("", 128);
  EXPECT_NE(d.source.find("fortune"), std::string::npos) << d.source;
  EXPECT_GT(d.train.size(), 1000000u);
  EXPECT_NEAR(double(d.val.size()) / (d.train.size() + d.val.size()), 0.1, 0.01);
}

// sample_batch draws windows of the training split: each row is data[s .. s+T) and its targets
// are the same window shifted by one, data[s+1 .. s+T]; every start 0 .. size−T−1 is reachable
// (the last one uses the last byte as a target) and none beyond.
TEST(Data, SampleBatchTargetsAreInputsShiftedByOne) {
  std::vector<uint8_t> data(200);
  for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(i);  // value = position
  const int B = 16, T = 8;
  Rng rng(7);
  Batch b;
  int lo = 1000, hi = -1;
  for (int draw = 0; draw < 250; draw++) {
    sample_batch(b, data, B, T, rng);
    ASSERT_EQ(b.B, B);
    ASSERT_EQ(b.inputs.size(), size_t(B * T));
    for (int r = 0; r < B; r++) {
      const int s = b.inputs[r * T];
      lo = std::min(lo, s), hi = std::max(hi, s);
      for (int t = 0; t < T; t++) {
        ASSERT_EQ(b.inputs[r * T + t], s + t);
        ASSERT_EQ(b.targets[r * T + t], s + t + 1);
      }
    }
  }
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 200 - T - 1);
  // The generator's state is the data position: the same state gives the same batch.
  Rng a(99), c(99);
  Batch ba, bc;
  sample_batch(ba, data, B, T, a);
  sample_batch(bc, data, B, T, c);
  EXPECT_EQ(ba.inputs, bc.inputs);
  EXPECT_EQ(a.state, c.state);
}

// window_batch: fixed, non-overlapping windows w·T .. w·T+T−1 with shifted targets.
TEST(Data, WindowBatch) {
  std::vector<uint8_t> data(100);
  for (size_t i = 0; i < data.size(); i++) data[i] = uint8_t(i);
  const int T = 8;
  EXPECT_EQ(window_count(data, T), 12u);  // the 12th window's last target is byte 96
  Batch b;
  window_batch(b, data, T, 3, 4);
  ASSERT_EQ(b.B, 4);
  for (int r = 0; r < 4; r++)
    for (int t = 0; t < T; t++) {
      EXPECT_EQ(b.inputs[r * T + t], (3 + r) * T + t);
      EXPECT_EQ(b.targets[r * T + t], (3 + r) * T + t + 1);
    }
  window_batch(b, data, T, 11, 1);
  EXPECT_EQ(b.targets.back(), 96);
  expect_error([&] { window_batch(b, data, T, 10, 3); }, {"past the end"});
}

// ---------------------------------------------------------------------------------------------
// safetensors and checkpoints.

TEST(Safetensors, RoundTripF32F64I32AndMetadata) {
  TempDir dir;
  const std::vector<float> a = {1.5f, -2.25f, 3e-20f, 7, 8, 9};
  const std::vector<double> b = {1.0 / 3, -1e300, 2.5, 0.1};
  const std::vector<int32_t> c = {-7, 0, 2147483647};
  StFile f;
  f.metadata = {{"note", "hello \"quoted\" ü"}, {"step", "12"}};
  f.tensors.push_back({"layers.0.a", make_tensor(a.data(), {2, 3})});
  f.tensors.push_back({"b", make_tensor(b.data(), {4})});
  f.tensors.push_back({"c", make_tensor(c.data(), {3, 1})});
  write_safetensors(dir / "x.safetensors", f);
  EXPECT_FALSE(fs::exists(dir / "x.safetensors.tmp"));
  const StFile g = read_safetensors(dir / "x.safetensors");
  EXPECT_EQ(g.metadata.at("note"), f.metadata.at("note"));
  EXPECT_EQ(g.metadata.at("step"), "12");
  // The checksum is in the file's header, and the reader keeps it out of the metadata it returns.
  EXPECT_NE(read_bytes(dir / "x.safetensors").find("\"crc32\":"), std::string::npos);
  EXPECT_FALSE(g.metadata.count("crc32"));
  ASSERT_EQ(g.tensors.size(), 3u);
  for (const auto& [name, t] : f.tensors) {
    const StTensor* u = g.find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_EQ(u->dtype, t.dtype);
    EXPECT_EQ(u->shape, t.shape);
    EXPECT_EQ(u->bytes, t.bytes);
  }
  EXPECT_EQ(g.find("layers.0.a")->dtype, "F32");
  EXPECT_EQ(g.find("b")->dtype, "F64");
  EXPECT_EQ(g.find("c")->dtype, "I32");
  std::vector<double> a2(6);
  std::vector<float> b2(4);
  std::vector<int32_t> c2(3);
  tensor_to(*g.find("layers.0.a"), a2.data(), 6, "a");
  tensor_to(*g.find("b"), b2.data(), 4, "b");
  tensor_to(*g.find("c"), c2.data(), 3, "c");
  for (int i = 0; i < 6; i++) EXPECT_EQ(a2[i], double(a[i]));
  for (int i = 0; i < 4; i++) EXPECT_EQ(b2[i], float(b[i]));
  for (int i = 0; i < 3; i++) EXPECT_EQ(c2[i], c[i]);
  expect_error([&] { tensor_to(*g.find("b"), b2.data(), 5, "tensor b"); },
               {"tensor b", "expected 5 values, found 4"});
  // Bytes of another kind are not reinterpreted: integers are not weights, floats not ids.
  expect_error([&] { tensor_to(*g.find("c"), b2.data(), 3, "c"); }, {"dtype I32 where F32"});
  expect_error([&] { tensor_to(*g.find("b"), c2.data(), 4, "b"); }, {"dtype F64 where I32"});
  // The file is plain safetensors: 8-byte little-endian header length, JSON, data.
  const std::string raw = read_bytes(dir / "x.safetensors");
  uint64_t n = 0;
  for (int i = 0; i < 8; i++) n |= uint64_t((unsigned char)raw[i]) << (8 * i);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw.size(), 8 + n + 6 * 4 + 4 * 8 + 3 * 4);
  EXPECT_EQ(raw[8], '{');
}

// The safetensors format allows empty tensors (shape with a 0). One that shares its offset with
// the next tensor must be read back like any other.
TEST(Safetensors, RoundTripWithEmptyTensor) {
  TempDir dir;
  const std::vector<float> a = {1, 2, 3}, b = {4, 5};
  StFile f;
  f.tensors.push_back({"a", make_tensor(a.data(), {3})});
  f.tensors.push_back({"z_empty", make_tensor(a.data(), {0})});  // offsets [12, 12]
  f.tensors.push_back({"b", make_tensor(b.data(), {2})});        // offsets [12, 20]
  write_safetensors(dir / "e.safetensors", f);
  StFile g;
  ASSERT_NO_THROW(g = read_safetensors(dir / "e.safetensors"));
  ASSERT_EQ(g.tensors.size(), 3u);
  EXPECT_EQ(g.find("b")->bytes, f.tensors[2].second.bytes);
  EXPECT_TRUE(g.find("z_empty")->bytes.empty());
}

TEST(Checkpoint, ModelAndStateRoundTrip) {
  TempDir dir;
  Transformer<float> m(micro_config(), 0), back(micro_config(), 0);
  m.init(3);
  save_model(dir / "model.safetensors", m, 17);
  EXPECT_EQ(load_model(dir / "model.safetensors", back), 17);
  EXPECT_EQ(0, std::memcmp(m.params.data(), back.params.data(), m.params.size() * sizeof(float)));
  EXPECT_EQ(read_model_config(dir / "model.safetensors"), micro_config());
  // Tensors are stored by layout name and shape (readable by PyTorch tools).
  const StFile f = read_safetensors(dir / "model.safetensors");
  EXPECT_EQ(f.tensors.size(), m.layout().params().size());
  EXPECT_EQ(f.find("layers.0.attn.wq")->shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(f.metadata.at("format"), "scalevec");

  AdamW<float> opt(m.layout(), AdamWConfig{}), opt2(m.layout(), AdamWConfig{});
  Rng rng(4);
  for (auto& x : opt.m) x = float(rng.normal());
  for (auto& x : opt.v) x = float(rng.uniform());
  opt.t = 17;
  TrainState st;
  st.step = 17, st.data_rng = 0xFEDCBA9876543210ull;  // above 2^63: must survive as text
  st.train.lr = 3e-4, st.train.wd_policy = WdPolicy::Iwd, st.train.seed = 0xFFFFFFFFFFFFull;
  st.model_crc32 = "1234567", st.corpus_crc32 = 0xFFFFFFFFu;
  save_state(dir / "state.safetensors", opt, st);
  const TrainState st2 = load_state(dir / "state.safetensors", opt2);
  EXPECT_EQ(st2.step, 17);
  EXPECT_EQ(st2.data_rng, st.data_rng);
  EXPECT_EQ(st2.model_crc32, st.model_crc32);
  EXPECT_EQ(st2.corpus_crc32, st.corpus_crc32);
  EXPECT_EQ(st2.train.to_json(), st.train.to_json());
  EXPECT_EQ(opt2.t, 17);
  EXPECT_EQ(opt2.m, opt.m);
  EXPECT_EQ(opt2.v, opt.v);
  EXPECT_EQ(read_train_config(dir / "state.safetensors").to_json(), st.train.to_json());
}

// Every damaged or foreign file is rejected with an Error saying what is wrong.
TEST(Checkpoint, DamagedFilesThrowErrorsSayingWhatIsWrong) {
  TempDir dir;
  Transformer<float> m(micro_config(), 0);
  m.init(5);
  const std::string good = dir / "model.safetensors";
  save_model(good, m, 3);
  const std::string bytes = read_bytes(good);
  auto damaged = [&](const std::string& name, const std::string& content) {
    write_bytes(dir / name, content);
    return dir / name;
  };
  auto load = [&](const std::string& path) { return [&m, path] { load_model(path, m); }; };
  expect_error(load(dir / "missing.safetensors"), {"missing.safetensors", "does not exist"});
  expect_error(load(damaged("short.st", bytes.substr(0, 5))), {"truncated", "5 bytes"});
  expect_error(load(damaged("trunc.st", bytes.substr(0, bytes.size() - 4))),
               {"trunc.st", "truncated"});
  expect_error(load(damaged("trunc_header.st", bytes.substr(0, 40))), {"header length"});
  std::string bad_header = bytes;
  bad_header[8] = '#';  // the JSON's opening brace
  expect_error(load(damaged("header.st", bad_header)), {"header.st", "corrupted header"});
  std::string flipped = bytes;
  flipped[bytes.size() - 3] ^= 0x10;  // one bit of one weight
  expect_error(load(damaged("flipped.st", flipped)), {"flipped.st", "checksum"});
  std::string trailing = bytes + "xxxx";
  expect_error(load(damaged("trailing.st", trailing)), {"trailing bytes"});

  // Valid safetensors, wrong metadata: version, kind, format.
  auto rewrite = [&](const std::string& name, const std::string& key, const std::string& value) {
    StFile f = read_safetensors(good);
    f.metadata[key] = value;
    write_safetensors(dir / name, f);
    return dir / name;
  };
  expect_error(load(rewrite("v1.st", "format_version", "1")),
               {"v1.st", "format version '1'", "reads version 2"});
  expect_error(load(rewrite("kind.st", "kind", "state")),
               {"not a scalevec model checkpoint", "kind 'state'"});
  expect_error(load(rewrite("fmt.st", "format", "gguf")), {"not a scalevec", "format 'gguf'"});
  expect_error(load(rewrite("cfg.st", "config", "{not json")), {"cfg.st", "corrupted config"});

  // A state file where a model is expected, and the other way round.
  AdamW<float> opt(m.layout(), AdamWConfig{});
  save_state(dir / "state.safetensors", opt, TrainState{});
  expect_error(load(dir / "state.safetensors"),
               {"not a scalevec model checkpoint", "kind 'state'"});
  expect_error([&] { load_state(good, opt); }, {"not a scalevec state checkpoint", "kind 'model'"});
}

// Loading into a model of another architecture names the differing fields and both values.
TEST(Checkpoint, LoadIntoDifferentConfigNamesTheField) {
  TempDir dir;
  Transformer<float> m(micro_config(), 0);
  m.init(6);
  save_model(dir / "model.safetensors", m, 1);
  ModelConfig wider = micro_config();
  wider.d_model = 16;
  Transformer<float> w(wider, 0);
  expect_error([&] { load_model(dir / "model.safetensors", w); },
               {"does not match", "d_model: checkpoint 8, requested 16"});
  ModelConfig none = micro_config();
  none.set_scale("none");
  none.n_layer = 2;
  Transformer<float> n(none, 0);
  expect_error(
      [&] { load_model(dir / "model.safetensors", n); },
      {"n_layer: checkpoint 1, requested 2", "scale: checkpoint \"baseline\", requested \"none\""});
}

// ---------------------------------------------------------------------------------------------
// train(): exact resume and determinism.

// N steps, checkpoint, resume to N + M: every step's loss, learning rate and gradient norm, the
// validation losses, the final weights and the optimizer state equal those of an uninterrupted
// run bit for bit.
TEST(Train, ResumeEqualsUninterruptedRun) {
  TempDir dir;
  const TrainSetup s;
  const TrainResult full = s.run(dir / "full");
  ASSERT_TRUE(full.finished);
  ASSERT_EQ(full.steps.size(), 12u);
  const TrainResult first = s.run(dir / "split", 7);
  EXPECT_FALSE(first.finished);
  EXPECT_EQ(first.last_step, 7);
  ASSERT_EQ(first.steps.size(), 7u);
  const TrainResult second = s.run(dir / "split", 0, true);
  EXPECT_TRUE(second.finished);
  EXPECT_EQ(second.last_step, 12);
  ASSERT_EQ(second.steps.size(), 5u);
  std::vector<StepRecord> joined = first.steps;
  joined.insert(joined.end(), second.steps.begin(), second.steps.end());
  for (size_t i = 0; i < joined.size(); i++) {
    EXPECT_EQ(joined[i].step, full.steps[i].step);
    EXPECT_EQ(joined[i].loss, full.steps[i].loss) << "step " << i + 1;
    EXPECT_EQ(joined[i].lr, full.steps[i].lr) << "step " << i + 1;
    EXPECT_EQ(joined[i].grad_norm, full.steps[i].grad_norm) << "step " << i + 1;
  }
  ASSERT_FALSE(full.val.empty());
  ASSERT_FALSE(second.val.empty());
  EXPECT_EQ(second.val.back(), full.val.back());  // (12, final validation loss)
  EXPECT_EQ(final_params(s.model, dir / "full"), final_params(s.model, dir / "split"));
  Transformer<float> m(s.model, 0);
  AdamW<float> a(m.layout(), s.train.adamw()), b(m.layout(), s.train.adamw());
  const TrainState sa = load_state(state_path(dir / "full"), a);
  const TrainState sb = load_state(state_path(dir / "split"), b);
  EXPECT_EQ(sa.step, 12);
  EXPECT_EQ(sa.data_rng, sb.data_rng);
  EXPECT_EQ(a.t, b.t);
  EXPECT_EQ(a.m, b.m);
  EXPECT_EQ(a.v, b.v);
  // The training went somewhere: loss falls from ≈ ln 256.
  EXPECT_NEAR(full.steps.front().loss, std::log(256.0), 0.1);
  EXPECT_LT(full.steps.back().loss, full.steps.front().loss - 0.2);
  // The metrics log of the resumed run holds every step once.
  std::ifstream metrics(dir / "split" + "/metrics.jsonl");
  int loss_lines = 0;
  for (std::string line; std::getline(metrics, line);)
    loss_lines += line.find("\"loss\"") != std::string::npos;
  EXPECT_EQ(loss_lines, 12);
}

// Resuming with another training config names the field; other training text, or a state file
// from another save, is refused; a finished run cannot be resumed with fewer steps than it has
// done.
TEST(Train, ResumeRejectsADifferentConfig) {
  TempDir dir;
  TrainSetup s;
  s.train.steps = 4, s.train.eval_every = 0;
  s.run(dir / "run", 2);
  TrainSetup other = s;
  other.train.lr = 1e-3;
  expect_error([&] { other.run(dir / "run", 0, true); }, {"different training config", "lr"});
  TrainSetup text = s;
  text.data = split_text(synthetic_text(200 * 1024, 9), s.model.context, "other text");
  expect_error([&] { text.run(dir / "run", 0, true); }, {"other data", "other text"});
  s.run(dir / "run1", 1);  // a state file of another save (step 1) next to the step-2 model
  fs::create_directories(dir / "mixed");
  fs::copy_file(state_path(dir / "run1"), state_path(dir / "mixed"));
  fs::copy_file(model_path(dir / "run"), model_path(dir / "mixed"));
  expect_error([&] { s.run(dir / "mixed", 0, true); }, {"different saves"});
  TrainSetup shorter = s;
  s.run(dir / "run", 0, true);
  shorter.train.steps = 3, shorter.train.warmup = 2;
  expect_error([&] { shorter.run(dir / "run", 0, true); }, {"step 4", "past --steps 3"});
}

// Same seed: bit-identical losses across two runs (here without any files); another seed gives
// other losses (so the comparison can fail).
TEST(Train, SameSeedSameLosses) {
  TrainSetup s;
  s.train.steps = 6, s.train.eval_every = 0;
  const TrainResult a = s.run(""), b = s.run("");
  ASSERT_EQ(a.steps.size(), 6u);
  ASSERT_EQ(b.steps.size(), 6u);
  for (size_t i = 0; i < a.steps.size(); i++) EXPECT_EQ(a.steps[i].loss, b.steps[i].loss) << i;
  s.train.seed = 43;
  const TrainResult c = s.run("");
  EXPECT_NE(c.steps[0].loss, a.steps[0].loss);
}

// ------------------------------------------------------------------------------------------------
// A run is never lost and never silently wrong (crash-safe checkpoints, verified headers,
// divergence caught, durable metrics, one writer).

// A training state at `step` (the rest default).
static TrainState state_at(int step, uint64_t data_rng) {
  TrainState t;
  t.step = step, t.data_rng = data_rng;
  return t;
}

// Replaces every occurrence of `from` by `to` (same length: the header length stays) in a file's
// bytes, without touching its checksum: a hand edit or a corruption.
static std::string edited(const std::string& bytes, const std::string& from,
                          const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  std::string b = bytes;
  size_t at = 0, n = 0;
  while ((at = b.find(from, at)) != std::string::npos) b.replace(at, from.size(), to), at++, n++;
  EXPECT_GT(n, 0u) << from << " not found";
  return b;
}

// The checksum covers the header: an edit of a config value, a dtype, a tensor's name, or of
// the checksum's own key is refused; a file re-written by a hostile writer with a valid checksum
// is still refused for a dtype that is not a float, a config out of range, a config that
// describes more parameters than the file holds, and non-finite weights.
TEST(Checkpoint, EveryHeaderEditAndEveryUnusableValueIsRefused) {
  TempDir dir;
  ModelConfig cfg = micro_config();
  cfg.n_layer = 2;
  Transformer<float> m(cfg, 0);
  m.init(5);
  const std::string good = dir / "model.safetensors";
  save_model(good, m, 3);
  const std::string bytes = read_bytes(good);
  {  // the conventions a stranger needs (docs/checkpoints.md), with this model's values
    const auto conv = nlohmann::json::parse(read_safetensors(good).metadata.at("conventions"));
    for (const char* k : {"tokenizer", "matrix_layout", "block", "norm", "qk_norm", "rope",
                          "attention", "context", "final"})
      EXPECT_TRUE(conv.contains(k)) << k;
    EXPECT_NE(
        conv["rope"].get<std::string>().find(fmt::format("base = rope_base = {}", cfg.rope_base)),
        std::string::npos);
    EXPECT_NE(conv["rope"].get<std::string>().find("rotate-half"), std::string::npos);
  }
  auto load = [&](const std::string& name, const std::string& content) {
    write_bytes(dir / name, content);
    return [&m, p = dir / name] { load_model(p, m); };
  };
  const std::string eps = fmt::format("{}", nlohmann::json(cfg.norm_eps).dump());
  expect_error(load("eps.st", edited(bytes, "norm_eps\\\":" + eps,
                                     "norm_eps\\\":" + std::string(eps.size(), '9'))),
               {"eps.st", "does not match the checksum"});
  expect_error(load("dtype.st", edited(bytes, "\"dtype\":\"F32\"", "\"dtype\":\"I32\"")),
               {"does not match the checksum"});
  std::string swapped = edited(bytes, "layers.0.attn.wq", "layers.0.attn.WQ");
  swapped = edited(swapped, "layers.0.attn.wk", "layers.0.attn.wq");
  swapped = edited(swapped, "layers.0.attn.WQ", "layers.0.attn.wk");
  expect_error(load("swap.st", swapped), {"does not match the checksum"});
  expect_error(load("nocrc.st", edited(bytes, "\"crc32\"", "\"crc33\"")),
               {"nocrc.st", "has no checksum"});

  auto rewrite = [&](const std::string& name, auto edit) {
    StFile f = read_safetensors(good);
    edit(f);
    write_safetensors(dir / name, f);
    return [&m, p = dir / name] { load_model(p, m); };
  };
  expect_error(rewrite("i32.st", [](StFile& f) { f.tensors[0].second.dtype = "I32"; }),
               {"dtype I32 where F32 or F64 belongs"});
  auto config_edit = [&](const std::string& key, nlohmann::json v) {
    return [key, v](StFile& f) {
      nlohmann::json c = nlohmann::json::parse(f.metadata.at("config"));
      c[key] = v;
      f.metadata["config"] = c.dump();
    };
  };
  expect_error(rewrite("wrap.st", config_edit("n_layer", 4294967297ull)),
               {"bad model config", "'n_layer' must be in"});
  expect_error(rewrite("frac.st", config_edit("context", 4.5)), {"'context' must be an integer"});
  expect_error(rewrite("str.st", config_edit("d_model", "8")), {"'d_model' must be an integer"});
  // A config of a huge model in a small file: refused before anything is allocated for it.
  const std::string huge = dir / "huge.st";
  {
    StFile f = read_safetensors(good);
    config_edit("n_layer", 256)(f), config_edit("d_model", 16384)(f), config_edit("d_ff", 65536)(f);
    config_edit("n_head", 256)(f);
    write_safetensors(huge, f);
  }
  expect_error([&] { read_model_config(huge); }, {"describes at least", "parameters"});
  expect_error(rewrite("step.st", [](StFile& f) { f.metadata["step"] = "3abc"; }),
               {"step must be an integer", "'3abc'"});
  expect_error(rewrite("nan.st",
                       [](StFile& f) {
                         const float nan = std::numeric_limits<float>::quiet_NaN();
                         std::memcpy(f.tensors[1].second.bytes.data(), &nan, 4);
                       }),
               {"nan.st", "is not finite"});
}

// The state file's metadata is parsed strictly too: a seed or step with trailing characters,
// a batch that does not fit an int, an optimizer entry removed.
TEST(Checkpoint, StateMetadataIsParsedStrictly) {
  TempDir dir;
  Transformer<float> m(micro_config(), 0);
  AdamW<float> opt(m.layout(), AdamWConfig{});
  TrainState st;
  st.step = 4, st.train = train_preset("tiny");
  save_state(dir / "state.st", opt, st);
  auto rewrite = [&](const std::string& name, auto edit) {
    StFile f = read_safetensors(dir / "state.st");
    edit(f);
    write_safetensors(dir / name, f);
    return [&opt, p = dir / name] { load_state(p, opt); };
  };
  auto train_edit = [](const std::string& key, nlohmann::json v) {
    return [key, v](StFile& f) {
      nlohmann::json c = nlohmann::json::parse(f.metadata.at("train_config"));
      c[key] = v;
      f.metadata["train_config"] = c.dump();
    };
  };
  expect_error(rewrite("batch.st", train_edit("batch", 4294967298ull)), {"'batch' must be in"});
  expect_error(rewrite("lr.st", train_edit("lr", "0.1")), {"'lr' must be a number"});
  expect_error(rewrite("seed.st", train_edit("seed", -1)), {"'seed' must be an unsigned"});
  expect_error(rewrite("rng.st", [](StFile& f) { f.metadata["data_rng"] = "12x"; }),
               {"data_rng", "'12x'"});
  expect_error(rewrite("t.st", [](StFile& f) { f.metadata["optimizer_t"] = "-1"; }),
               {"optimizer_t", "'-1'"});
  expect_error(rewrite("noopt.st", [](StFile& f) { f.metadata.erase("optimizer"); }),
               {"lacks the metadata entry 'optimizer'"});
}

// save_checkpoint publishes one directory per step by a rename, keeps the newest N, points the
// links at the newest, and leaves nothing of an interrupted save; model_path finds the newest.
TEST(Checkpoint, SaveIsOneDirectoryPerStepKeptNewestN) {
  TempDir dir;
  const std::string run = dir / "run";
  fs::create_directories(run);
  Transformer<float> m(micro_config(), 0);
  m.init(5);
  AdamW<float> opt(m.layout(), AdamWConfig{});
  for (int step : {1, 2, 3}) save_checkpoint(run, m, opt, state_at(step, 7), 2);
  const auto dirs = checkpoint_dirs(run);
  ASSERT_EQ(dirs.size(), 2u);
  EXPECT_EQ(fs::path(dirs[0]).filename(), "step-00000002");
  EXPECT_EQ(fs::path(dirs[1]).filename(), "step-00000003");
  EXPECT_EQ(model_path(run), dirs[1] + "/model.safetensors");
  EXPECT_EQ(fs::read_symlink(run + "/model.safetensors"),
            "checkpoints/step-00000003/model.safetensors");
  Transformer<float> back(micro_config(), 0);
  EXPECT_EQ(load_model(run + "/model.safetensors", back), 3);  // through the link
  // What a kill in the middle of a save leaves: a partial directory, a stale one, a .tmp link.
  fs::create_directories(run + "/checkpoints/.partial-step-00000004");
  write_bytes(run + "/checkpoints/.partial-step-00000004/model.safetensors", "half a file");
  fs::create_directories(run + "/checkpoints/.stale-step-00000003");
  write_bytes(run + "/model.safetensors.tmp", "");
  EXPECT_EQ(checkpoint_dirs(run).size(), 2u);  // not complete, not counted
  clean_interrupted_saves(run);
  for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
    EXPECT_EQ(e.path().filename().string().rfind("step-", 0), 0u) << e.path();
  EXPECT_FALSE(fs::exists(run + "/model.safetensors.tmp"));
  // Saving the same step again replaces it.
  save_checkpoint(run, m, opt, state_at(3, 8), 2);
  EXPECT_EQ(checkpoint_dirs(run).size(), 2u);
  // Non-finite weights are never saved.
  m.params[0] = std::numeric_limits<float>::infinity();
  expect_error([&] { save_checkpoint(run, m, opt, state_at(4, 8), 2); },
               {"checkpoint at step 4 not saved", "is not finite"});
  EXPECT_EQ(fs::path(checkpoint_dirs(run).back()).filename(), "step-00000003");
}

// A write error in the middle of a save (here the file-size limit, EFBIG, as a full disk gives
// ENOSPC): one error naming the cause and the intact previous checkpoint; nothing of the failed
// save is left; the previous checkpoint still loads.
TEST(Checkpoint, AFailedWriteLeavesThePreviousCheckpointIntact) {
  TempDir dir;
  const std::string run = dir / "run";
  fs::create_directories(run);
  Transformer<float> m(micro_config(), 0);
  m.init(5);
  AdamW<float> opt(m.layout(), AdamWConfig{});
  save_checkpoint(run, m, opt, state_at(1, 7), 2);
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 2000;  // smaller than a model file
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string msg;
  try {
    save_checkpoint(run, m, opt, state_at(2, 7), 2);
  } catch (const Error& e) {
    msg = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  signal(SIGXFSZ, SIG_DFL);
  EXPECT_NE(msg.find("checkpoint at step 2 not saved"), std::string::npos) << msg;
  EXPECT_NE(msg.find("File too large"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the previous checkpoint, step-00000001, is intact"), std::string::npos)
      << msg;
  for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
    EXPECT_EQ(e.path().filename(), "step-00000001") << "left behind: " << e.path();
  Transformer<float> back(micro_config(), 0);
  EXPECT_EQ(load_model(model_path(run), back), 1);
}

// A second writer of a run directory is refused at once, naming the holder; the lock goes with
// its holder.
TEST(RunLock, OneWriterPerRunDirectory) {
  TempDir dir;
  fs::create_directories(dir / "run");
  {
    RunLock first(dir / "run");
    expect_error([&] { RunLock second(dir / "run"); },
                 {"in use by another scalevec", fmt::format("pid {}", getpid())});
    TrainSetup s;
    s.train.steps = 2, s.train.eval_every = 0;
    expect_error([&] { s.run(dir / "run"); }, {"in use by another scalevec"});
  }
  RunLock again(dir / "run");  // released
}

// Divergence: a loss that goes non-finite stops the run with an error naming the step, and the
// last checkpoint before it stays the newest; nothing non-finite was saved.
TEST(Train, DivergenceStopsWithoutOverwritingTheLastGoodCheckpoint) {
  TempDir dir;
  TrainSetup s;
  s.train.optimizer = OptimizerKind::Sgd, s.train.lr = 9, s.train.grad_clip = 0;
  s.train.warmup = 0, s.train.steps = 200, s.train.eval_every = 0, s.train.ckpt_every = 1;
  s.train.sgd_momentum = 0.9;
  std::string msg;
  try {
    s.run(dir / "run");
  } catch (const Error& e) {
    msg = e.what();
  }
  ASSERT_NE(msg.find("training diverged at step"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stopped without saving"), std::string::npos) << msg;
  const auto dirs = checkpoint_dirs(dir / "run");
  ASSERT_FALSE(dirs.empty()) << msg;
  const std::string last = fs::path(dirs.back()).filename().string();
  EXPECT_NE(msg.find(fmt::format("step {}, is intact", std::stoi(last.substr(5)))),
            std::string::npos)
      << msg;
  Transformer<float> m(s.model, 0);
  EXPECT_NO_THROW(load_model(model_path(dir / "run"), m));  // finite, or it would throw
}

// metrics.jsonl: a resume drops the lines written after the checkpoint it resumes from (and a
// torn last line), so no step appears twice.
TEST(Train, ResumeAfterAKillTruncatesMetricsToTheCheckpoint) {
  TempDir dir;
  TrainSetup s;
  s.train.steps = 10, s.train.eval_every = 0;
  s.run(dir / "run", 5);
  {  // what a kill at step 8 would have left: steps 6-8 logged, then a torn line
    std::ofstream m(dir / "run" + "/metrics.jsonl", std::ios::app);
    for (int k = 6; k <= 8; k++) m << "{\"step\":" << k << ",\"loss\":1.0}\n";
    m << "{\"step\":9,\"lo";
  }
  s.run(dir / "run", 0, true);
  std::ifstream in(dir / "run" + "/metrics.jsonl");
  std::map<int, int> seen;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);  // every line is whole JSON
    if (j.contains("loss")) seen[j["step"].get<int>()]++;
  }
  ASSERT_EQ(seen.size(), 10u);
  for (auto [step, n] : seen) EXPECT_EQ(n, 1) << "step " << step;
}

// A spike is a loss more than 1 nat above and 1.5 times the median of the 20 before it; nothing
// is flagged before 20 losses have been seen.
TEST(Train, SpikeDetectorFlagsALossFarAboveItsRecentMedian) {
  SpikeDetector d;
  EXPECT_EQ(d.check(50.0), 0);  // the first losses set the level, whatever they are
  for (int i = 0; i < 19; i++) EXPECT_EQ(d.check(2.0 + 0.01 * (i % 3)), 0);
  EXPECT_EQ(d.check(2.9), 0);            // +0.9 nat: not a spike
  EXPECT_DOUBLE_EQ(d.check(3.5), 2.01);  // +1.5 nats and 1.74x the median
  EXPECT_EQ(d.check(2.0), 0);
}

}  // namespace
}  // namespace scalevec
