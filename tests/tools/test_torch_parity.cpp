// PyTorch parity (docs/VERIFICATION.md §6): tools/torch_ref.py, the same model written
// independently in PyTorch, loads our safetensors checkpoint and must reproduce our loss, logits
// and every parameter gradient on the same batch: in float64 for every scale strategy preset with
// and without QK-Norm and post-sublayer norms, and for custom combinations of the components; in
// float32 for representative ones. Several cases share one PyTorch process (it takes seconds to
// start). Negative controls show that the comparison can fail: wrong numbers on our side, a wrong
// convention on PyTorch's side, a checkpoint whose names do not fit its config. The last tests
// drive `scalevec bench` end to end.
//
// PyTorch is Debian's python3-torch under /usr/bin/python3 (tools/test.sh installs it). Without it
// these tests FAIL, because a parity check that silently does not run is no check; set
// SCALEVEC_ALLOW_NO_TORCH=1 to skip them instead.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"
#include "ref/train/safetensors.h"
#include "tests/ref/single_threaded.h"  // our side of each case runs single-threaded, like ref/'s tests
#include "torch_util.h"

namespace fs = std::filesystem;
using namespace scalevec;

namespace {

using torch_util::kScript, torch_util::quote, torch_util::Proc, torch_util::python,
    torch_util::randomize;
Proc run(const std::string& cmd) { return torch_util::sh(cmd); }
// SCALEVEC_PARITY_KEEP=1 keeps it, to rerun torch_ref.py check on it by hand.
struct TempDir : torch_util::TempDir {
  TempDir() : torch_util::TempDir("scalevec-parity", "SCALEVEC_PARITY_KEEP") {}
};

// One model configuration to check: a scale strategy (preset and component flags), a size and a
// precision.
struct Case {
  std::string name;  // also the name of its directory
  ModelConfig cfg;
  int B = 2;
  bool f64 = true;           // Transformer<double> (F64 files, PyTorch in float64) instead of float
  bool legacy_meta = false;  // the checkpoint's config lacks the scale component fields (as written
                             // before they existed): torch_ref.py must read "scale" as the preset
};

// 2 layers, 2 heads, d_ff 64, context 16, with the given preset and architecture switches.
ModelConfig small_config(const std::string& preset, bool qk_norm = false, bool post_norm = false,
                         int d_model = 32, int n_head = 2) {
  ModelConfig cfg;
  cfg.n_layer = 2, cfg.d_model = d_model, cfg.n_head = n_head, cfg.d_ff = 64, cfg.context = 16;
  cfg.set_scale(preset);
  cfg.sc.qk_norm = qk_norm, cfg.sc.post_norm = post_norm;
  return cfg;
}

Case make_case(std::string name, ModelConfig cfg, bool f64, int B = 2) {
  name += f64 ? "_f64" : "_f32";
  return Case{name, cfg, B, f64, false};
}

// Writes everything `torch_ref.py check` reads: model.safetensors (our checkpoint writer),
// batch.safetensors, grads.safetensors (our gradients, our loss as metadata) and
// logits.safetensors. `save_cfg` differs from `cfg` only in the negative control where the
// checkpoint deliberately describes another model than the one that computed the numbers.
template <class T>
void write_case(const fs::path& dir, const ModelConfig& cfg, const ModelConfig& save_cfg, int B,
                uint64_t seed) {
  const int Tn = cfg.context, N = B * Tn, V = cfg.vocab_size;
  Transformer<T> model(cfg, B);
  randomize(model, seed);
  Rng rng(seed + 1);
  std::vector<int32_t> inputs(N), targets(N);
  for (int n = 0; n < N; n++) inputs[n] = (int32_t)rng.below(V), targets[n] = (int32_t)rng.below(V);
  const T loss = model.forward(inputs.data(), targets.data(), B, Tn);
  model.zero_grad();
  model.backward();

  Transformer<T> saved(save_cfg, 0);
  saved.params = model.params;
  save_model(model_path(dir.string()), saved, 0);
  StFile batch;
  batch.tensors.push_back({"inputs", make_tensor(inputs.data(), {B, Tn})});
  batch.tensors.push_back({"targets", make_tensor(targets.data(), {B, Tn})});
  write_safetensors((dir / "batch.safetensors").string(), batch);
  StFile grads;
  grads.metadata["loss"] = fmt::format("{:.17g}", double(loss));
  for (const auto& p : model.layout().params())
    grads.tensors.push_back(
        {p.name, make_tensor(model.grads.data() + p.offset,
                             std::vector<int64_t>(p.shape.begin(), p.shape.end()))});
  write_safetensors((dir / "grads.safetensors").string(), grads);
  StFile logits;
  logits.tensors.push_back({"logits", make_tensor(model.logits(), {B, Tn, V})});
  write_safetensors((dir / "logits.safetensors").string(), logits);
}

// Rewrites the "config" metadata of dir/model.safetensors with `edit` applied (tensors unchanged).
template <class Edit>
void edit_saved_config(const fs::path& dir, Edit edit) {
  const std::string path = model_path(dir.string());
  StFile m = read_safetensors(path);
  nlohmann::json cfg = nlohmann::json::parse(m.metadata.at("config"));
  edit(cfg);
  m.metadata["config"] = cfg.dump();
  write_safetensors(path, m);
}

// Writes the case into dir/<name>/ and returns that directory.
fs::path write_case(const fs::path& dir, const Case& c, uint64_t seed = 42) {
  const fs::path d = dir / c.name;
  fs::create_directories(d);
  if (c.f64)
    write_case<double>(d, c.cfg, c.cfg, c.B, seed);
  else
    write_case<float>(d, c.cfg, c.cfg, c.B, seed);
  if (c.legacy_meta)
    edit_saved_config(d, [](nlohmann::json& j) {
      for (const char* k :
           {"scale_param", "hg", "dp", "dnp", "qk_norm", "post_norm", "skip_cancelled_magnitude"})
        j.erase(k);
    });
  return d;
}

// The line of `check`'s report that starts with `prefix` (e.g. a tensor name), or "".
std::string report_line(const std::string& output, const std::string& prefix) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

Proc check(const std::vector<fs::path>& dirs, const std::string& extra = "") {
  std::string cmd = python() + " " + quote(kScript) + " check" + extra;
  for (const auto& d : dirs) cmd += " --dir " + quote(d.string());
  return run(cmd);
}
Proc check(const fs::path& dir, const std::string& extra = "") {
  return check(std::vector<fs::path>{dir}, extra);
}

// Suite names are lower case with "torch" in them so that `ctest -R torch` selects every test here.
class torch_parity : public ::testing::Test {
 protected:
  void SetUp() override { torch_util::require_torch(); }

  // Checks every case in one PyTorch process (starting it costs seconds; a case costs
  // milliseconds) and expects each to pass. Prints the one-line summary of each case (its loss
  // error and its worst tensor), and on failure the whole per-tensor report.
  void expect_all_pass(const std::vector<Case>& cases) {
    std::vector<fs::path> dirs;
    for (const Case& c : cases) dirs.push_back(write_case(dir.path, c));
    const Proc r = check(dirs);
    for (const Case& c : cases) {
      SCOPED_TRACE(c.name);
      const std::string line =
          report_line(r.output, "summary " + (dir.path / c.name).string() + ":");
      std::printf("%-40s %s\n", c.name.c_str(),
                  line.empty() ? "(no summary)" : line.substr(line.find(": ") + 2).c_str());
      EXPECT_NE(line.find(": PASS"), std::string::npos) << r.output;
    }
    EXPECT_EQ(r.status, 0) << r.output;
  }

  TempDir dir;
};

// Every scale strategy preset with and without QK-Norm and post-sublayer norms, in float64, where
// the agreement must be to ~1e-14 (random scales ≠ 1, so every β, α, γ and u is exercised).
TEST_F(torch_parity, EveryPresetWithAndWithoutQkNormAndPostNormMatchesInFloat64) {
  std::vector<Case> cases;
  std::vector<std::string> refused;
  for (const std::string& preset : scale_strategy_names())
    for (bool qk : {false, true})
      for (bool post : {false, true}) {
        const ModelConfig cfg = small_config(preset, qk, post);
        const std::string name = preset + (qk ? "+qk_norm" : "") + (post ? "+post_norm" : "");
        try {
          cfg.validate();
        } catch (const Error&) {
          refused.push_back(name);
          continue;
        }
        cases.push_back(make_case(name, cfg, true));
      }
  // The only invalid combinations: DNP on q, k (dnp, unified) together with a QK-Norm.
  EXPECT_EQ(fmt::format("{}", fmt::join(refused, " ")),
            "dnp+qk_norm dnp+qk_norm+post_norm unified+qk_norm unified+qk_norm+post_norm");
  EXPECT_EQ(cases.size(), 4 * scale_strategy_names().size() - 4);
  expect_all_pass(cases);
}

// Float32 (tolerance 64 float32 unit roundoffs) on representative configurations, including the
// two sizes and batch sizes of the original baseline/none checks.
TEST_F(torch_parity, RepresentativeConfigurationsMatchInFloat32) {
  expect_all_pass({
      make_case("baseline", small_config("baseline"), false),
      make_case("baseline_C48_B3", small_config("baseline", false, false, 48), false, 3),
      make_case("none", small_config("none"), false),
      make_case("unified", small_config("unified"), false),
      make_case("unified+post_norm_C48_B3", small_config("unified", false, true, 48), false, 3),
      make_case("magdir-normalized+qk_norm+post_norm",
                small_config("magdir-normalized", true, true), false),
  });
}

// Component combinations that no preset makes.
TEST_F(torch_parity, CustomCombinationsMatch) {
  using enum Branch;
  // HG with DP on q, gate and DNP on v, up (DNP of v normalizes all channels, not per head).
  ModelConfig hg_mixed = small_config("hg");
  hg_mixed.sc.dp = {Q, Gate}, hg_mixed.sc.dnp = {V, Up};
  // The same with QK-Norm after DP on q (both output stages), post-norms, magdir-normalized and
  // skip_cancelled_magnitude: the q, k, v and up input groups are normalized, so plain gamma;
  // gate keeps β and α. Four heads of 8, so the per-head norms have more than one head per row.
  ModelConfig hg_all = small_config("hg", true, true, 32, 4);
  hg_all.sc.dp = {Q, Gate}, hg_all.sc.dnp = {V, Up};
  hg_all.sc.param = ScaleParam::MagDirNormalized, hg_all.sc.skip_cancelled_magnitude = true;
  // DP everywhere with QK-Norm and magdir: q_dp.beta and k_dp.beta are cancelled by the QK-Norm
  // (gradient of order eps: compared at the scale its terms set, see gradient_scales).
  ModelConfig dp_qk = small_config("dp", true);
  dp_qk.sc.param = ScaleParam::MagDir;
  // unified without skip_cancelled_magnitude: attn_norm.q and .k keep a β that DNP cancels.
  ModelConfig unified_noskip = small_config("unified");
  unified_noskip.sc.skip_cancelled_magnitude = false;
  // unified with its magdir-normalized variant.
  ModelConfig unified_mdn = small_config("unified", false, true);
  unified_mdn.sc.param = ScaleParam::MagDirNormalized;
  for (ModelConfig* c : {&hg_mixed, &hg_all, &dp_qk, &unified_noskip, &unified_mdn})
    c->scale = "custom";
  expect_all_pass({
      make_case("hg+dp_q,gate+dnp_v,up", hg_mixed, true),
      make_case("hg+dp_q,gate+dnp_v,up", hg_mixed, false),
      make_case("hg+dp_q,gate+dnp_v,up+qk+post+mdn+skip_NH4", hg_all, true),
      make_case("dp+qk_norm+magdir", dp_qk, true),
      make_case("dp+qk_norm+magdir", dp_qk, false),
      make_case("unified-skip_off", unified_noskip, true),
      make_case("unified+mdn+post_norm", unified_mdn, true),
  });
}

// Checkpoints written before the scale component fields existed name only the preset ("scale":
// "baseline" or "none"); torch_ref.py must read them as that preset.
TEST_F(torch_parity, LegacyCheckpointsWithoutScaleFieldsMatch) {
  Case base = make_case("legacy_baseline", small_config("baseline"), false);
  Case none = make_case("legacy_none", small_config("none", false, false, 48), true, 3);
  base.legacy_meta = none.legacy_meta = true;
  expect_all_pass({base, none});
}

// Negative control: one gradient entry off by 1e-3 of its tensor's largest entry (well above
// float32 round-off, far below what a gross bug would cause) must fail the check.
TEST_F(torch_parity, DetectsOneWrongGradientEntry) {
  const fs::path d = write_case(dir.path, make_case("baseline", small_config("baseline"), false));
  const std::string path = (d / "grads.safetensors").string();
  StFile g = read_safetensors(path);
  for (auto& [name, t] : g.tensors) {
    if (name != "layers.1.attn_norm.gamma") continue;
    float* v = reinterpret_cast<float*>(t.bytes.data());
    float mx = 0;
    for (size_t i = 0; i < t.bytes.size() / sizeof(float); i++) mx = std::max(mx, std::fabs(v[i]));
    v[3] += 1e-3f * mx;
  }
  write_safetensors(path, g);
  const Proc r = check(d);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.status, 1) << r.output;
  // Exactly that tensor fails; its neighbours and the loss still pass.
  EXPECT_NE(report_line(r.output, "layers.1.attn_norm.gamma ").find("FAIL"), std::string::npos);
  EXPECT_NE(report_line(r.output, "layers.1.attn.wq ").find(" ok"), std::string::npos);
  EXPECT_NE(report_line(r.output, "loss:").find(" ok"), std::string::npos);
}

// Negative control: in float64 the loss must agree to ~1e-14, so a relative change of 1e-10 fails.
TEST_F(torch_parity, DetectsSlightlyWrongLossInFloat64) {
  const fs::path d = write_case(dir.path, make_case("baseline", small_config("baseline"), true));
  const std::string path = (d / "grads.safetensors").string();
  StFile g = read_safetensors(path);
  g.metadata["loss"] = fmt::format("{:.17g}", std::stod(g.metadata.at("loss")) * (1 + 1e-10));
  write_safetensors(path, g);
  const Proc r = check(d);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(report_line(r.output, "loss:").find("FAIL"), std::string::npos) << r.output;
}

// Negative control on the model itself: the checkpoint says rope_base 500 while our numbers were
// computed with 10000, so PyTorch rotates q and k differently; this must be caught, which also
// shows that RoPE is exercised by the test batch.
TEST_F(torch_parity, DetectsADifferentRopeBase) {
  ModelConfig cfg = small_config("baseline");
  ModelConfig other = cfg;
  other.rope_base = 500;
  write_case<double>(dir.path, cfg, other, 2, 42);
  const Proc r = check(dir.path);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(report_line(r.output, "logits ").find("FAIL"), std::string::npos) << r.output;
}

// Negative control on torch_ref.py's own semantics: the same model computed with a deliberately
// wrong convention (`check --mutate`, test only) must fail. Each is a small difference: rotate-half
// vs interleaved RoPE pairs; the eps inside DNP's, QK-Norm's and post-norm's normalization
// (a ~1e-5 relative effect); an eps inside magdir-normalized's rms(α) (also ~1e-5). So the
// float64 check pins both "eps" and "no eps" choices of the specification, not only gross errors.
TEST_F(torch_parity, DetectsAWrongSemanticInTheReference) {
  ModelConfig cfg = small_config("dnp", false, true);  // DNP q,k + DP v,gate,up + post-norms
  cfg.sc.param = ScaleParam::MagDirNormalized, cfg.scale = "custom";
  const fs::path d = write_case(dir.path, make_case("dnp+mdn+post_norm", cfg, true));
  ASSERT_EQ(check(d).status, 0) << "the unmutated check must pass";
  for (const char* mutation : {"rope-interleaved", "output-norm-no-eps", "alpha-rms-eps"}) {
    SCOPED_TRACE(mutation);
    const Proc r = check(d, std::string(" --mutate ") + mutation);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(report_line(r.output, "logits ").find("FAIL"), std::string::npos) << r.output;
    std::printf("--mutate %-20s logits: %s\n", mutation, report_line(r.output, "logits ").c_str());
  }
}

// Negative control for the scale of a cancelled magnitude's gradient: in `unified` without
// skip_cancelled_magnitude, DNP on q cancels attn_norm.q's β, so its gradient is of order eps
// and is compared at the error its terms allow (marked '*'). An error of 1e-9 of its direction's
// largest gradient entry must still fail, while α, the other tensors and the loss pass.
TEST_F(torch_parity, DetectsAWrongCancelledMagnitudeGradient) {
  ModelConfig cfg = small_config("unified");
  cfg.sc.skip_cancelled_magnitude = false, cfg.scale = "custom";
  const fs::path d = write_case(dir.path, make_case("unified-skip_off", cfg, true));
  const std::string path = (d / "grads.safetensors").string();
  StFile g = read_safetensors(path);
  double max_dalpha = 0;
  for (auto& [name, t] : g.tensors)
    if (name == "layers.0.attn_norm.q.alpha")
      for (size_t i = 0; i < t.bytes.size() / sizeof(double); i++)
        max_dalpha = std::max(max_dalpha, std::fabs(reinterpret_cast<double*>(t.bytes.data())[i]));
  ASSERT_GT(max_dalpha, 0);
  for (auto& [name, t] : g.tensors)
    if (name == "layers.0.attn_norm.q.beta")
      reinterpret_cast<double*>(t.bytes.data())[0] += 1e-9 * max_dalpha;
  write_safetensors(path, g);
  const Proc r = check(d);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.status, 1) << r.output;
  const std::string beta = report_line(r.output, "layers.0.attn_norm.q.beta ");
  EXPECT_NE(beta.find("FAIL"), std::string::npos) << r.output;
  EXPECT_NE(beta.find("* scale"), std::string::npos) << "expected the propagated scale: " << beta;
  EXPECT_NE(report_line(r.output, "layers.0.attn_norm.q.alpha ").find(" ok"), std::string::npos);
  EXPECT_NE(report_line(r.output, "layers.1.attn_norm.q.beta ").find(" ok"), std::string::npos);
  EXPECT_NE(report_line(r.output, "loss:").find(" ok"), std::string::npos);
}

// Negative control on the names: a checkpoint whose config says skip_cancelled_magnitude false
// while its tensors were laid out with it (attn_norm.q.gamma instead of .beta and .alpha) must be
// refused at load time, naming the missing and the extra tensors.
TEST_F(torch_parity, RefusesACheckpointWhoseScaleLayoutDiffersFromItsConfig) {
  const fs::path d = write_case(dir.path, make_case("unified", small_config("unified"), true));
  edit_saved_config(d, [](nlohmann::json& j) { j["skip_cancelled_magnitude"] = false; });
  const Proc r = check(d);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("tensors do not match the model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'layers.0.attn_norm.q.alpha'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("extra ['layers.0.attn_norm.k.gamma'"), std::string::npos) << r.output;
}

// A model file written by Python (tools/torch_ref.py's write_safetensors: the tensors and the
// metadata docs/checkpoints.md lists for a foreign file, the checksum computed in Python) is
// read by `scalevec sample` and `scalevec eval` exactly as the file it was copied from; a Python
// file whose checksum is left out is refused.
TEST_F(torch_parity, AModelFileWrittenByPythonIsReadLikeOurs) {
  ModelConfig cfg = model_preset("tiny");
  cfg.n_layer = 1, cfg.context = 16;
  Transformer<float> m(cfg, 0);
  m.init(11);
  const fs::path ours = dir.path / "ours.safetensors", theirs = dir.path / "theirs.safetensors";
  const fs::path bare = dir.path / "bare.safetensors", text = dir.path / "text.txt";
  save_model(ours.string(), m, 7);
  {
    std::string bytes;  // every byte value as a target, in a scrambled order
    for (int i = 0; i < 4096; i++) bytes += char((i * 167 + 13) % 256);
    std::ofstream(text, std::ios::binary) << bytes;
  }
  const std::string py =
      "import sys; sys.path.insert(0, sys.argv[1]); import torch_ref as t; "
      "ts, meta = t.read_safetensors(sys.argv[2]); "
      "keep = {k: meta[k] for k in ('format', 'kind', 'format_version', 'config', 'step')}; "
      "t.write_safetensors(sys.argv[3], list(ts.items()), keep); "
      "import json, struct; raw = open(sys.argv[3], 'rb').read(); "
      "n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8 + n]); "
      "del h['__metadata__']['crc32']; hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8); "
      "open(sys.argv[4], 'wb').write(struct.pack('<Q', len(hb)) + hb + raw[8 + n:])";
  const Proc w =
      run(torch_util::python() + " -c " + quote(py) + " " +
          quote(std::string(SCALEVEC_SOURCE_DIR) + "/tools") + " " + quote(ours.string()) + " " +
          quote(theirs.string()) + " " + quote(bare.string()));
  ASSERT_EQ(w.status, 0) << w.output;
  for (const char* cmd : {" sample --length 40 --seed 3 ", " eval --data "}) {
    const std::string extra = std::string(cmd) == " eval --data " ? quote(text.string()) + " " : "";
    const Proc a = run(quote(SCALEVEC_EXE) + cmd + extra + quote(ours.string()));
    const Proc b = run(quote(SCALEVEC_EXE) + cmd + extra + quote(theirs.string()));
    ASSERT_EQ(a.status, 0) << a.output;
    ASSERT_EQ(b.status, 0) << b.output;
    // The same text or loss; eval names its file, so compare from the numbers on.
    const auto tail = [](const std::string& s) { return s.substr(s.find('\n') + 1); };
    EXPECT_EQ(std::string(cmd) == " eval --data " ? tail(a.output) : a.output,
              std::string(cmd) == " eval --data " ? tail(b.output) : b.output);
  }
  // eval's numbers: a freshly initialized model (weights of std 0.02) predicts nearly uniformly,
  // so over targets that take every byte value its loss is close to ln 256 nats = 8 bits per
  // byte; bits = nats / ln 2 (both printed to 4 decimals).
  const Proc e = run(quote(SCALEVEC_EXE) + " eval --data " + quote(text.string()) + " " +
                     quote(ours.string()));
  double nats = 0, bits = 0;
  const size_t at = e.output.find("loss ");
  ASSERT_NE(at, std::string::npos) << e.output;
  ASSERT_EQ(
      std::sscanf(e.output.c_str() + at, "loss %lf nats per byte, %lf bits per byte", &nats, &bits),
      2)
      << e.output;
  EXPECT_NEAR(nats, std::log(256.0), 0.1) << e.output;
  EXPECT_NEAR(bits, nats / std::log(2.0), 2e-4) << e.output;
  const Proc c = run(quote(SCALEVEC_EXE) + " sample --length 4 " + quote(bare.string()));
  EXPECT_NE(c.status, 0) << c.output;
  EXPECT_NE(c.output.find("has no checksum"), std::string::npos) << c.output;
}

// `scalevec bench` end to end on the tiny preset: our step, the PyTorch step, the parity of the
// initial loss, and the JSON report.
TEST_F(torch_parity, BenchRunsBothAndReportsParity) {
  const fs::path json_path = dir.path / "bench.json";
  const Proc r = run(quote(SCALEVEC_EXE) +
                     " bench --presets tiny --steps 2 --warmup 1 --rounds 1 --threads 1"
                     " --json " +
                     quote(json_path.string()));
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(json_path);
  const nlohmann::json j = nlohmann::json::parse(in);
  ASSERT_EQ(j.at("results").size(), 1u) << j.dump(2);
  const auto& t = j.at("results").at(0);
  EXPECT_EQ(t.at("preset"), "tiny");
  EXPECT_GT(t.at("scalevec").at("tokens_per_s").get<double>(), 0);
  EXPECT_GT(t.at("torch").at("tokens_per_s").get<double>(), 0);
  EXPECT_GT(t.at("ratio_tokens_per_s").get<double>(), 0);
  EXPECT_LT(std::fabs(t.at("loss_diff").get<double>()), 1e-4) << t.dump(2);
  EXPECT_NE(r.output.find("ratio"), std::string::npos) << r.output;
}

}  // namespace

// Without PyTorch `scalevec bench` must stop with one clear line that points to --no-torch, and
// with --no-torch it must still measure our side. (Needs no PyTorch itself.)
TEST(torch_bench, MissingPythonGivesOneLineErrorAndNoTorchWorks) {
  Proc r =
      run(quote(SCALEVEC_EXE) +
          " bench --presets tiny --steps 1 --warmup 0 --threads 1 --python /nonexistent/python3");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--no-torch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;

  r = run(quote(SCALEVEC_EXE) +
          " bench --presets tiny --steps 1 --warmup 0 --threads 1 --no-torch");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("tok/s"), std::string::npos) << r.output;
}
