// PyTorch parity (VERIFICATION.md §6): tools/torch_ref.py, the same model written independently in
// PyTorch, loads our safetensors checkpoint and must reproduce our loss, logits and every parameter
// gradient on the same batch, in float32 and in float64, with and without scale vectors. Negative
// controls show that the comparison can fail. The last tests drive `scalevec bench` end to end.
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

namespace fs = std::filesystem;
using namespace scalevec;

namespace {

const std::string kScript = std::string(SCALEVEC_SOURCE_DIR) + "/tools/torch_ref.py";

std::string quote(const std::string& s) {  // for /bin/sh: '...' with ' written as '\''
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct Proc {
  int status = -1;  // exit status, or -1 if the command did not exit normally
  std::string output;  // stdout and stderr together
};

Proc run(const std::string& cmd) {
  Proc r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// The interpreter with the OpenMP OpenBLAS first on the library path (as `scalevec bench` runs it)
// and one thread: the check is about numbers, not speed.
std::string python() {
  return "LD_LIBRARY_PATH=" + quote(SCALEVEC_OPENBLAS_LIBDIR) + " OMP_NUM_THREADS=1 " +
         quote(SCALEVEC_PYTHON);
}

// Empty when `import torch` works, else why not (computed once).
const std::string& torch_problem() {
  static const std::string problem = [] {
    const Proc r = run(python() + " -c 'import torch'");
    if (r.status == 0) return std::string();
    return "PyTorch is not usable: '" + std::string(SCALEVEC_PYTHON) +
           " -c \"import torch\"' failed (exit " + std::to_string(r.status) + "): " + r.output +
           "Install Debian's python3-torch (tools/setup.sh --test does), or set "
           "SCALEVEC_ALLOW_NO_TORCH=1 to skip the PyTorch parity tests.";
  }();
  return problem;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "scalevec-parity-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw Error("cannot create a temporary directory");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Parameters far from the training init so that every part of the model matters: γ ~ U(0.5, 1.5)
// (γ ≠ 1, so its gradient and its use in the forward are exercised), embedding rows of unit
// scale, matrices with unit-variance outputs, so attention is far from uniform and SiLU far from
// linear.
template <class T>
void randomize(Transformer<T>& model, uint64_t seed) {
  Rng rng(seed);
  for (const auto& p : model.layout().params()) {
    T* w = model.params.data() + p.offset;
    const double sd = p.role == Role::Embedding ? 1.0 : 1.0 / std::sqrt(double(p.shape.back()));
    for (size_t i = 0; i < p.numel; i++)
      w[i] = p.role == Role::Scale ? T(0.5 + rng.uniform()) : T(sd * rng.normal());
  }
}

struct Case {
  std::string scale;  // "baseline" or "none"
  int d_model, B;
  bool f64;  // Transformer<double> (F64 files, PyTorch in float64) instead of float
};

void PrintTo(const Case& c, std::ostream* os) {  // for test listings (ctest -N)
  *os << c.scale << " d_model " << c.d_model << " B " << c.B << (c.f64 ? " float64" : " float32");
}

ModelConfig config_of(const Case& c) {
  ModelConfig cfg;
  cfg.n_layer = 2, cfg.d_model = c.d_model, cfg.n_head = 2, cfg.d_ff = 64, cfg.context = 16;
  cfg.scale = c.scale;
  return cfg;
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
    grads.tensors.push_back({p.name, make_tensor(model.grads.data() + p.offset,
                                                 std::vector<int64_t>(p.shape.begin(), p.shape.end()))});
  write_safetensors((dir / "grads.safetensors").string(), grads);
  StFile logits;
  logits.tensors.push_back({"logits", make_tensor(model.logits(), {B, Tn, V})});
  write_safetensors((dir / "logits.safetensors").string(), logits);
}

void write_case(const fs::path& dir, const Case& c, uint64_t seed) {
  const ModelConfig cfg = config_of(c);
  if (c.f64)
    write_case<double>(dir, cfg, cfg, c.B, seed);
  else
    write_case<float>(dir, cfg, cfg, c.B, seed);
}

// The line of `check`'s report that starts with `prefix` (e.g. a tensor name), or "".
std::string report_line(const std::string& output, const std::string& prefix) {
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  return "";
}

Proc check(const fs::path& dir) {
  return run(python() + " " + quote(kScript) + " check --dir " + quote(dir.string()));
}

// Suite names are lower case with "torch" in them so that `ctest -R torch` selects every test here.
class torch_parity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (torch_problem().empty()) return;
    const char* allow = std::getenv("SCALEVEC_ALLOW_NO_TORCH");
    if (allow && std::string(allow) == "1") GTEST_SKIP() << torch_problem();
    FAIL() << torch_problem();
  }
  TempDir dir;
};

class torch_parity_case : public torch_parity, public ::testing::WithParamInterface<Case> {};

TEST_P(torch_parity_case, LossLogitsAndGradientsMatch) {
  write_case(dir.path, GetParam(), 42);
  const Proc r = check(dir.path);
  std::printf("%s", r.output.c_str());  // the per-tensor error table, also when it passes
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\nPASS"), std::string::npos) << r.output;
}

std::string case_name(const ::testing::TestParamInfo<Case>& p) {
  const Case& c = p.param;
  return fmt::format("{}_C{}_B{}_{}", c.scale, c.d_model, c.B, c.f64 ? "f64" : "f32");
}

INSTANTIATE_TEST_SUITE_P(
    Models, torch_parity_case,
    ::testing::Values(Case{"baseline", 32, 2, false}, Case{"none", 32, 2, false},
                      Case{"baseline", 48, 3, false}, Case{"baseline", 32, 2, true},
                      Case{"none", 48, 3, true}),
    case_name);

// Negative control: one gradient entry off by 1e-3 of its tensor's largest entry (well above
// float32 round-off, far below what a gross bug would cause) must fail the check.
TEST_F(torch_parity, DetectsOneWrongGradientEntry) {
  write_case(dir.path, Case{"baseline", 32, 2, false}, 42);
  const std::string path = (dir.path / "grads.safetensors").string();
  StFile g = read_safetensors(path);
  for (auto& [name, t] : g.tensors) {
    if (name != "layers.1.attn_norm.gamma") continue;
    float* v = reinterpret_cast<float*>(t.bytes.data());
    float mx = 0;
    for (size_t i = 0; i < t.bytes.size() / sizeof(float); i++) mx = std::max(mx, std::fabs(v[i]));
    v[3] += 1e-3f * mx;
  }
  write_safetensors(path, g);
  const Proc r = check(dir.path);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.status, 1) << r.output;
  // Exactly that tensor fails; its neighbours and the loss still pass.
  EXPECT_NE(report_line(r.output, "layers.1.attn_norm.gamma ").find("FAIL"), std::string::npos);
  EXPECT_NE(report_line(r.output, "layers.1.attn.wq ").find(" ok"), std::string::npos);
  EXPECT_NE(report_line(r.output, "loss:").find(" ok"), std::string::npos);
}

// Negative control: in float64 the loss must agree to ~1e-14, so a relative change of 1e-10 fails.
TEST_F(torch_parity, DetectsSlightlyWrongLossInFloat64) {
  write_case(dir.path, Case{"baseline", 32, 2, true}, 42);
  const std::string path = (dir.path / "grads.safetensors").string();
  StFile g = read_safetensors(path);
  g.metadata["loss"] = fmt::format("{:.17g}", std::stod(g.metadata.at("loss")) * (1 + 1e-10));
  write_safetensors(path, g);
  const Proc r = check(dir.path);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(report_line(r.output, "loss:").find("FAIL"), std::string::npos) << r.output;
}

// Negative control on the model itself: the checkpoint says rope_base 500 while our numbers were
// computed with 10000, so PyTorch rotates q and k differently; this must be caught, which also
// shows that RoPE is exercised by the test batch.
TEST_F(torch_parity, DetectsADifferentRopeBase) {
  ModelConfig cfg = config_of(Case{"baseline", 32, 2, true});
  ModelConfig other = cfg;
  other.rope_base = 500;
  write_case<double>(dir.path, cfg, other, 2, 42);
  const Proc r = check(dir.path);
  std::printf("%s", r.output.c_str());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(report_line(r.output, "logits ").find("FAIL"), std::string::npos) << r.output;
}

// `scalevec bench` end to end on the tiny preset: our step, the PyTorch step, the parity of the
// initial loss, and the JSON report.
TEST_F(torch_parity, BenchRunsBothAndReportsParity) {
  const fs::path json_path = dir.path / "bench.json";
  const Proc r = run(quote(SCALEVEC_EXE) + " bench --presets tiny --steps 2 --warmup 1 --rounds 1 --threads 1"
                    " --json " + quote(json_path.string()));
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
  Proc r = run(quote(SCALEVEC_EXE) +
              " bench --presets tiny --steps 1 --warmup 0 --threads 1 --python /nonexistent/python3");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("--no-torch"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;

  r = run(quote(SCALEVEC_EXE) + " bench --presets tiny --steps 1 --warmup 0 --threads 1 --no-torch");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("tok/s"), std::string::npos) << r.output;
}
