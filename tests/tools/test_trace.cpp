// `scalevec trace` (tools/cmd_trace.cpp) and its PyTorch twin `tools/torch_ref.py trace`:
//   - ref level: a recorder (ref/model/trace.h) changes nothing the model computes, bit for bit,
//     and records every activation with its gradient and every parameter gradient;
//   - the CLI: --help, one-line errors, --dump holds exactly the printed tensors, --ckpt traces
//     the saved model;
//   - PyTorch: every traced tensor (each named step and each gradient) of every scale preset
//     with and without QK-Norm and post-norms agrees in float64, in one PyTorch process; and the
//     comparison fails where it must (a wrong RoPE convention in PyTorch, one altered value, a
//     missing or an extra name in scalevec's dump).
// PyTorch is Debian's python3-torch under /usr/bin/python3; without it the PyTorch tests FAIL
// unless SCALEVEC_ALLOW_NO_TORCH=1 (as in test_torch_parity.cpp).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "cli_util.h"
#include "ref/common.h"
#include "ref/model/trace.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"
#include "ref/train/safetensors.h"
#include "tests/ref/single_threaded.h"
#include "torch_util.h"

namespace fs = std::filesystem;
using namespace scalevec;
using namespace cli;  // Args, Result, run, EXPECT_OK, expect_error, lines_of

namespace {

using torch_util::kScript, torch_util::quote, torch_util::Proc, torch_util::sh, torch_util::python,
    torch_util::randomize;
// SCALEVEC_TRACE_KEEP=1 keeps it, to rerun torch_ref.py trace on it by hand.
struct TempDir : torch_util::TempDir {
  TempDir() : torch_util::TempDir("scalevec-trace", "SCALEVEC_TRACE_KEEP") {}
};

// Every valid (preset, QK-Norm, post-norm) combination, named like test_torch_parity's cases.
struct Variant {
  std::string preset;
  bool qk = false, post = false;
  std::string name() const { return preset + (qk ? "+qk_norm" : "") + (post ? "+post_norm" : ""); }
  // DNP on q, k (dnp, unified) cannot be combined with QK-Norm: the config refuses it.
  bool valid() const { return !(qk && (preset == "dnp" || preset == "unified")); }
  Args flags() const {
    Args a{"--scale", preset};
    if (qk) a.push_back("--qk-norm");
    if (post) a.push_back("--post-norm");
    return a;
  }
};

std::vector<Variant> all_variants() {
  std::vector<Variant> v;
  for (const std::string& p : scale_strategy_names())
    for (bool qk : {false, true})
      for (bool post : {false, true}) v.push_back({p, qk, post});
  return v;
}

// ------------------------------------------------------------------------------------------------
// The recorder in ref/: nothing changes, everything is recorded.

ModelConfig small_config(const Variant& v) {
  ModelConfig cfg;
  cfg.n_layer = 2, cfg.d_model = 16, cfg.n_head = 2, cfg.d_ff = 24, cfg.context = 8;
  cfg.set_scale(v.preset);
  cfg.sc.qk_norm = v.qk, cfg.sc.post_norm = v.post;
  return cfg;
}

template <class T>
void expect_recording_changes_nothing(const ModelConfig& cfg) {
  const int B = 2, Tn = cfg.context, N = B * Tn, V = cfg.vocab_size;
  Transformer<T> plain(cfg, B), traced(cfg, B);
  randomize(plain, 7), randomize(traced, 7);
  Rng rng(8);
  std::vector<int32_t> in(N), tg(N);
  for (int n = 0; n < N; n++) in[n] = (int32_t)rng.below(V), tg[n] = (int32_t)rng.below(V);
  Trace<T> trace;
  traced.set_trace(&trace);
  const T l1 = plain.forward(in.data(), tg.data(), B, Tn);
  const T l2 = traced.forward(in.data(), tg.data(), B, Tn);
  plain.zero_grad(), traced.zero_grad();
  plain.backward(), traced.backward();
  EXPECT_EQ(std::memcmp(&l1, &l2, sizeof(T)), 0);
  EXPECT_EQ(std::memcmp(plain.logits(), traced.logits(), sizeof(T) * N * V), 0);
  EXPECT_EQ(std::memcmp(plain.grads.data(), traced.grads.data(), sizeof(T) * plain.grads.size()),
            0);

  // Every forward step but the attention probabilities and the loss has its gradient, every
  // parameter its gradient, and the copies are the model's values.
  std::set<std::string> names;
  size_t n_fwd = 0;
  for (const auto& e : trace.entries) {
    names.insert(e.name);
    size_t numel = 1;
    for (int64_t d : e.shape) numel *= (size_t)d;
    EXPECT_EQ(e.data.size(), numel) << e.name;
    if (e.pass == TracePass::Forward) n_fwd++;
  }
  EXPECT_EQ(names.size(), trace.entries.size());
  for (size_t i = 0; i < trace.entries.size(); i++)  // forward steps first, then the backward
    EXPECT_EQ(trace.entries[i].pass, i < n_fwd ? TracePass::Forward : TracePass::Backward) << i;
  for (size_t i = 0; i < n_fwd; i++) {
    const std::string& n = trace.entries[i].name;
    const bool scratch = n == "loss" || n.find(".attn.att") != std::string::npos;
    EXPECT_EQ(names.count("grad/" + n), scratch ? 0u : 1u) << n;
  }
  for (const auto& p : traced.layout().params()) {
    const auto* e = trace.find("grad/" + p.name);
    ASSERT_NE(e, nullptr) << p.name;
    EXPECT_EQ(std::memcmp(e->data.data(), traced.grads.data() + p.offset, sizeof(T) * p.numel), 0);
  }
  EXPECT_EQ(trace.entries.size(),
            n_fwd + (n_fwd - 1 - cfg.n_layer) + traced.layout().params().size());
  ASSERT_NE(trace.find("logits"), nullptr);
  EXPECT_EQ(std::memcmp(trace.find("logits")->data.data(), traced.logits(), sizeof(T) * N * V), 0);
  ASSERT_NE(trace.find("loss"), nullptr);
  EXPECT_EQ(trace.find("loss")->data.at(0), l2);

  // Without the recorder, nothing more is recorded.
  traced.set_trace(nullptr);
  const size_t before = trace.entries.size();
  traced.forward(in.data(), tg.data(), B, Tn);
  traced.backward();
  EXPECT_EQ(trace.entries.size(), before);
}

TEST(trace_ref, RecordingChangesNothingAndRecordsEveryStepAndGradient) {
  for (const Variant& v : all_variants()) {
    if (!v.valid()) continue;
    SCOPED_TRACE(v.name());
    expect_recording_changes_nothing<double>(small_config(v));
    expect_recording_changes_nothing<float>(small_config(v));
  }
}

// ------------------------------------------------------------------------------------------------
// The command line.

// One printed trace line: "   7  layers.0.attn.q.rope   (1, 4, 8)   9.97e-01   -3.3e-01 ...".
struct Line {
  int index = 0;
  std::string name, shape, rms, text;
};

std::vector<Line> trace_lines(const std::string& output) {
  std::vector<Line> out;
  for (const std::string& l : cli::lines_of(output)) {
    std::istringstream in(l);
    Line t;
    if (!(in >> t.index) || !(in >> t.name)) continue;
    const size_t open = l.find('(', l.find(t.name) + t.name.size());
    const size_t close = l.find(')', open);
    if (open == std::string::npos || close == std::string::npos) continue;
    t.shape = l.substr(open, close - open + 1);
    std::istringstream rest(l.substr(close + 1));
    rest >> t.rms;
    t.text = l;
    out.push_back(t);
  }
  return out;
}

std::string shape_string(const std::vector<int64_t>& s) {
  if (s.size() == 1) return fmt::format("({},)", s[0]);
  return fmt::format("({})", fmt::join(s, ", "));
}

TEST(trace_cli, HelpDescribesTheModelAndTheSteps) {
  const cli::Result r = cli::run({"trace", "--help"});
  EXPECT_OK(r);
  for (const char* s :
       {"--save-dir", "--dump", "--ckpt", "--text", "--scale", "--qk-norm",
        "1 layer, d_model 8, 2 heads", "attn.q.rope", "grad/<name>", "torch_ref.py trace"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
}

TEST(trace_cli, BadInputGivesOneLineError) {
  TempDir dir;
  cli::expect_error(cli::run({"trace", "--no-such-flag"}), "--no-such-flag");
  cli::expect_error(cli::run({"trace", "--batch", "0"}), "--batch");
  cli::expect_error(cli::run({"trace", "--seq", "40", "--batch", "2"}), "--text");
  cli::expect_error(cli::run({"trace", "--seq", "9", "--context", "8"}), "context");
  // DNP on q, k is a QK-Norm already: the config refuses the pair.
  cli::expect_error(cli::run({"trace", "--scale", "unified", "--qk-norm"}), "--qk-norm");
  cli::expect_error(cli::run({"trace", "--ckpt", (dir.path / "nothing").string()}), "nothing");
  EXPECT_OK(cli::run({"trace", "--save-dir", dir.path.string()}));
  cli::expect_error(cli::run({"trace", "--ckpt", dir.path.string(), "--layers", "2"}), "--ckpt");
  cli::expect_error(cli::run({"trace", "--ckpt", dir.path.string(), "--seed", "3"}), "--seed");
}

// The names in order for `--scale unified --post-norm` (1 layer): HG (one a per branch), DNP on
// q, k (their y), DP on v, gate, up (their y), magdir (beta, alpha) except where a normalization
// cancels the magnitude (plain gamma: attn_norm.q/k/v and mlp_norm.up), post-norms.
const char* const kUnifiedPostNormNames =
    "embed layers.0.attn_norm.n layers.0.attn_norm.q.a layers.0.attn_norm.k.a "
    "layers.0.attn_norm.v.a layers.0.attn.q.z layers.0.attn.q.y layers.0.attn.k.z "
    "layers.0.attn.k.y layers.0.attn.v.z layers.0.attn.v.y layers.0.attn.q.rope "
    "layers.0.attn.k.rope layers.0.attn.att layers.0.attn.y layers.0.attn.o "
    "layers.0.post_attn_norm.out layers.0.x_mid layers.0.mlp_norm.n layers.0.mlp_norm.gate.a "
    "layers.0.mlp_norm.up.a layers.0.mlp.gate.z layers.0.mlp.gate.y layers.0.mlp.up.z "
    "layers.0.mlp.up.y layers.0.mlp.h layers.0.mlp.o layers.0.post_mlp_norm.out layers.0.out "
    "final_norm.n final_norm.a logits loss "
    "grad/logits grad/final_norm.a grad/final_norm.n grad/layers.0.out grad/final_norm.beta "
    "grad/final_norm.alpha grad/head grad/layers.0.post_mlp_norm.out grad/layers.0.mlp.o "
    "grad/layers.0.mlp.h grad/layers.0.mlp.gate.y grad/layers.0.mlp.up.y grad/layers.0.mlp.gate.z "
    "grad/layers.0.mlp.up.z grad/layers.0.mlp_norm.gate.a grad/layers.0.mlp_norm.up.a "
    "grad/layers.0.mlp_norm.n grad/layers.0.x_mid grad/layers.0.post_attn_norm.out "
    "grad/layers.0.attn.o grad/layers.0.attn.y grad/layers.0.attn.q.rope "
    "grad/layers.0.attn.k.rope grad/layers.0.attn.v.y grad/layers.0.attn.q.y "
    "grad/layers.0.attn.k.y grad/layers.0.attn.q.z grad/layers.0.attn.k.z grad/layers.0.attn.v.z "
    "grad/layers.0.attn_norm.q.a grad/layers.0.attn_norm.k.a grad/layers.0.attn_norm.v.a "
    "grad/layers.0.attn_norm.n grad/embed grad/layers.0.attn_norm.q.gamma "
    "grad/layers.0.attn_norm.k.gamma grad/layers.0.attn_norm.v.gamma grad/layers.0.attn.wq "
    "grad/layers.0.attn.q_dnp.beta grad/layers.0.attn.q_dnp.alpha grad/layers.0.attn.wk "
    "grad/layers.0.attn.k_dnp.beta grad/layers.0.attn.k_dnp.alpha grad/layers.0.attn.wv "
    "grad/layers.0.attn.v_dp.u grad/layers.0.attn.wo grad/layers.0.post_attn_norm.beta "
    "grad/layers.0.post_attn_norm.alpha grad/layers.0.mlp_norm.gate.beta "
    "grad/layers.0.mlp_norm.gate.alpha grad/layers.0.mlp_norm.up.gamma grad/layers.0.mlp.w_gate "
    "grad/layers.0.mlp.gate_dp.beta grad/layers.0.mlp.gate_dp.alpha grad/layers.0.mlp.w_up "
    "grad/layers.0.mlp.up_dp.u grad/layers.0.mlp.w_down grad/layers.0.post_mlp_norm.beta "
    "grad/layers.0.post_mlp_norm.alpha grad/tok_emb";

TEST(trace_cli, DumpHoldsExactlyThePrintedTensors) {
  TempDir dir;
  const fs::path dump = dir.path / "t.safetensors";
  const cli::Result r =
      cli::run({"trace", "--scale", "unified", "--post-norm", "--dump", dump.string()});
  EXPECT_OK(r);
  const std::vector<Line> lines = trace_lines(r.out);
  const StFile f = read_safetensors(dump.string());  // in file order
  ASSERT_EQ(f.tensors.size(), lines.size()) << r.out;
  std::vector<std::string> printed;
  for (size_t i = 0; i < lines.size(); i++) {
    const auto& [name, t] = f.tensors[i];
    SCOPED_TRACE(name);
    printed.push_back(lines[i].name);
    EXPECT_EQ(lines[i].index, (int)i + 1);
    EXPECT_EQ(lines[i].name, name);
    EXPECT_EQ(t.dtype, "F64");
    EXPECT_EQ(lines[i].shape, shape_string(t.shape));
    std::vector<double> v(t.bytes.size() / sizeof(double));
    std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
    double ss = 0;
    for (double x : v) ss += x * x;
    EXPECT_EQ(lines[i].rms, fmt::format("{:.6e}", std::sqrt(ss / double(v.size()))));
  }
  EXPECT_EQ(fmt::format("{}", fmt::join(printed, " ")), kUnifiedPostNormNames);
  EXPECT_NE(r.out.find("loss = " + f.metadata.at("loss") + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("forward: 33 steps"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("backward: 60 gradients"), std::string::npos) << r.out;
}

// The model --save-dir writes is the traced one: tracing it with --ckpt prints the same lines.
TEST(trace_cli, TracingTheSavedModelPrintsTheSameTrace) {
  TempDir dir;
  const Args flags{"--scale",
                   "magdir-normalized",
                   "--qk-norm",
                   "--layers",
                   "2",
                   "--batch",
                   "2",
                   "--seq",
                   "3",
                   "--seed",
                   "5",
                   "--text",
                   "Hello, scale vectors!"};
  const cli::Result a = cli::run(Args{"trace"} + flags + Args{"--save-dir", dir.path.string()});
  EXPECT_OK(a);
  const cli::Result b = cli::run({"trace", "--ckpt", dir.path.string(), "--batch", "2", "--seq",
                                  "3", "--text", "Hello, scale vectors!"});
  EXPECT_OK(b);
  const auto la = trace_lines(a.out), lb = trace_lines(b.out);
  ASSERT_EQ(la.size(), lb.size());
  ASSERT_GT(la.size(), 50u);
  for (size_t i = 0; i < la.size(); i++) EXPECT_EQ(la[i].text, lb[i].text);
  EXPECT_NE(a.out.find("inputs \"Hel\""), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("sequence 1: inputs \"lo,\" [108 111 44]  targets \"o, \""),
            std::string::npos)
      << a.out;
  // batch.safetensors: what tools/torch_ref.py reads.
  const StFile batch = read_safetensors((dir.path / "batch.safetensors").string());
  ASSERT_NE(batch.find("inputs"), nullptr);
  EXPECT_EQ(batch.find("inputs")->dtype, "I32");
  EXPECT_EQ(batch.find("targets")->shape, (std::vector<int64_t>{2, 3}));
}

// ------------------------------------------------------------------------------------------------
// PyTorch.

Proc torch_trace(const std::vector<fs::path>& dirs, const std::string& extra) {
  std::string cmd = python() + " " + quote(kScript) + " trace" + extra;
  for (const auto& d : dirs) cmd += " --dir " + quote(d.string());
  return sh(cmd);
}

// The line of `output` that starts with `prefix`, or "".
std::string line_starting(const std::string& output, const std::string& prefix) {
  for (const std::string& l : cli::lines_of(output))
    if (l.rfind(prefix, 0) == 0) return l;
  return "";
}

// torch_ref.py's output for one --dir: from its "torch_ref trace: <dir>:" line to the next.
std::string section(const std::string& output, const fs::path& d) {
  const std::string head = "torch_ref trace: " + d.string() + ":";
  const size_t begin = output.find(head);
  if (begin == std::string::npos) return "";
  const size_t end = output.find("torch_ref trace: ", begin + head.size());
  return output.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

double worst_rel(const std::string& summary) {  // "... worst NAME rel 1.2e-15 (...)"
  const size_t at = summary.find(" rel ");
  return at == std::string::npos ? INFINITY : std::atof(summary.c_str() + at + 5);
}

const Args kShape{"--layers", "2", "--batch", "2", "--seq", "5"};

class trace_torch : public ::testing::Test {
 protected:
  void SetUp() override { torch_util::require_torch(); }
  TempDir dir;
};

// Every preset with and without QK-Norm and post-norms from its initialization, and four
// configurations with parameters far from it (γ ≠ 1, so every scale's use shows) traced from a
// checkpoint: every step and every gradient agrees with PyTorch to 64 float64 unit roundoffs.
TEST_F(trace_torch, EveryPresetAgreesWithPyTorchStepByStepInFloat64) {
  std::vector<std::pair<std::string, fs::path>> cases;
  std::vector<std::string> refused;
  for (const Variant& v : all_variants()) {
    const fs::path d = dir.path / v.name();
    const cli::Result r =
        cli::run(Args{"trace"} + v.flags() + kShape + Args{"--save-dir", d.string()});
    if (!v.valid()) {
      SCOPED_TRACE(v.name());
      cli::expect_error(r, "--qk-norm");
      refused.push_back(v.name());
      continue;
    }
    EXPECT_OK(r);
    cases.push_back({v.name(), d});
  }
  EXPECT_EQ(fmt::format("{}", fmt::join(refused, " ")),
            "dnp+qk_norm dnp+qk_norm+post_norm unified+qk_norm unified+qk_norm+post_norm");

  using enum Branch;
  ModelConfig hg_all = small_config({"hg", true, true});  // DP q, gate; DNP v, up; 4 heads; mdn
  hg_all.n_head = 4, hg_all.sc.dp = {Q, Gate}, hg_all.sc.dnp = {V, Up};
  hg_all.sc.param = ScaleParam::MagDirNormalized, hg_all.sc.skip_cancelled_magnitude = true;
  ModelConfig unified_noskip = small_config({"unified"});  // a β that DNP cancels
  unified_noskip.sc.skip_cancelled_magnitude = false;
  hg_all.scale = unified_noskip.scale = "custom";
  const std::vector<std::pair<std::string, ModelConfig>> random = {
      {"random_unified+post_norm", small_config({"unified", false, true})},
      {"random_magdir-normalized+qk_norm+post_norm",
       small_config({"magdir-normalized", true, true})},
      {"random_hg+dp_q,gate+dnp_v,up+qk+post+mdn_NH4", hg_all},
      {"random_unified-skip_off", unified_noskip},
  };
  for (const auto& [name, cfg] : random) {
    const fs::path d = dir.path / name, ckpt = dir.path / (name + ".ckpt");
    Transformer<double> model(cfg, 0);
    randomize(model, 11);
    save_model(ckpt.string(), model, 0);
    EXPECT_OK(cli::run({"trace", "--ckpt", ckpt.string(), "--batch", "2", "--seq", "5",
                        "--save-dir", d.string()}));
    cases.push_back({name, d});
  }

  std::vector<fs::path> dirs;
  for (const auto& c : cases) dirs.push_back(c.second);
  const Proc r = torch_trace(dirs, " --quiet --compare");
  double overall = 0;
  std::printf("%-48s %s\n", "configuration", "max error relative to max|tensor| (worst tensor)");
  for (const auto& [name, d] : cases) {
    SCOPED_TRACE(name);
    const std::string line = line_starting(r.output, "summary " + d.string() + ":");
    const double rel = worst_rel(line);
    overall = std::max(overall, rel);
    std::printf("%-48s %s\n", name.c_str(),
                line.empty() ? "(no summary)" : line.substr(line.find(": ") + 2).c_str());
    EXPECT_NE(line.find(": PASS"), std::string::npos) << section(r.output, d);
  }
  std::printf("overall max relative error %.3e (tolerance 64 * 2^-53 = %.3e)\n", overall,
              64 * std::ldexp(1.0, -53));
  EXPECT_EQ(r.status, 0) << r.output;
}

// Negative controls: the comparison fails for a wrong RoPE convention on PyTorch's side (and
// points at the first step it changes), for one value of scalevec's dump off by 1e-9 of its
// tensor's scale, and for a name missing from or added to the dump. Also: PyTorch prints the
// same trace lines, in the same order, as scalevec.
TEST_F(trace_torch, ComparisonFailsWhereItMust) {
  const fs::path base = dir.path / "base";
  const cli::Result ours = cli::run(Args{"trace", "--scale", "unified", "--post-norm"} + kShape +
                                    Args{"--save-dir", base.string()});
  ASSERT_TRUE(ours.exited && ours.code == 0) << ours;
  auto variant = [&](const std::string& name, auto edit) {
    const fs::path d = dir.path / name;
    fs::copy(base, d, fs::copy_options::recursive);
    const std::string path = (d / "trace.safetensors").string();
    StFile f = read_safetensors(path);
    edit(f);
    write_safetensors(path, f);
    return d;
  };
  const fs::path altered = variant("altered", [](StFile& f) {
    for (auto& [name, t] : f.tensors) {
      if (name != "grad/layers.0.attn.wq") continue;
      double* v = reinterpret_cast<double*>(t.bytes.data());
      double mx = 0;
      for (size_t i = 0; i < t.bytes.size() / sizeof(double); i++)
        mx = std::max(mx, std::fabs(v[i]));
      v[3] += 1e-9 * mx;
    }
  });
  const fs::path missing = variant("missing", [](StFile& f) {
    std::erase_if(f.tensors, [](const auto& t) { return t.first == "layers.1.mlp.h"; });
  });
  const fs::path extra = variant("extra", [](StFile& f) {
    f.tensors.push_back({"grad/layers.0.bogus", f.tensors.front().second});
  });

  const Proc r = torch_trace({base, altered, missing, extra}, " --compare");
  std::printf("%s\n", line_starting(r.output, "summary " + base.string() + ":").c_str());
  std::printf("%s\n", line_starting(r.output, "summary " + altered.string() + ":").c_str());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(line_starting(r.output, "summary " + base.string() + ": PASS"), "") << r.output;
  const std::string alt = section(r.output, altered);
  EXPECT_NE(line_starting(alt, "grad/layers.0.attn.wq ").find("FAIL"), std::string::npos) << alt;
  EXPECT_NE(line_starting(alt, "grad/layers.0.attn.wk ").find(" ok"), std::string::npos) << alt;
  EXPECT_NE(line_starting(r.output, "summary " + altered.string() + ": FAIL"), "") << r.output;
  for (const auto& [d, name] :
       {std::pair{missing, "'layers.1.mlp.h'"}, {extra, "'grad/layers.0.bogus'"}}) {
    const std::string s = section(r.output, d);
    EXPECT_NE(line_starting(s, "names differ").find(name), std::string::npos) << s;
    EXPECT_NE(line_starting(r.output, "summary " + d.string() + ": FAIL"), "") << r.output;
  }

  // Side by side: the same lines (index, name, shape) in the same order; most are identical.
  const auto mine = trace_lines(ours.out), theirs = trace_lines(section(r.output, base));
  ASSERT_EQ(mine.size(), theirs.size()) << section(r.output, base);
  size_t identical = 0;
  for (size_t i = 0; i < mine.size(); i++) {
    EXPECT_EQ(mine[i].index, theirs[i].index);
    EXPECT_EQ(mine[i].name, theirs[i].name);
    EXPECT_EQ(mine[i].shape, theirs[i].shape) << mine[i].name;
    identical += mine[i].text == theirs[i].text;
  }
  std::printf("side by side: %zu of %zu trace lines identical to the digit\n", identical,
              mine.size());

  // PyTorch with rotate-half RoPE replaced by interleaved pairs: everything before the rotation
  // agrees, the rotated q is the first step to fail.
  const Proc m = torch_trace({base}, " --quiet --compare --mutate rope-interleaved");
  EXPECT_EQ(m.status, 1) << m.output;
  for (const char* ok : {"embed ", "layers.0.attn.q.z ", "layers.0.attn.k.y "})
    EXPECT_NE(line_starting(m.output, ok).find(" ok"), std::string::npos) << ok << "\n" << m.output;
  for (const char* bad : {"layers.0.attn.q.rope ", "logits ", "grad/tok_emb "})
    EXPECT_NE(line_starting(m.output, bad).find("FAIL"), std::string::npos) << bad << "\n"
                                                                            << m.output;
  std::printf("--mutate rope-interleaved: %s\n",
              line_starting(m.output, "layers.0.attn.q.rope ").c_str());
}

// torch_ref.py trace refuses what it cannot do, with exit status 2.
TEST_F(trace_torch, BadInputExitsWith2) {
  const fs::path d = dir.path / "d";
  EXPECT_OK(cli::run({"trace", "--save-dir", d.string()}));
  EXPECT_EQ(torch_trace({d, d}, " --dump x.safetensors").status, 2);
  fs::remove(d / "trace.safetensors");
  const Proc r = torch_trace({d}, " --compare");
  EXPECT_EQ(r.status, 2) << r.output;
  // Without --compare it only traces (and dumps): exit 0, and the dump has the printed names.
  const fs::path dump = dir.path / "torch.safetensors";
  const Proc t = torch_trace({d}, " --dump " + quote(dump.string()));
  EXPECT_EQ(t.status, 0) << t.output;
  const StFile f = read_safetensors(dump.string());
  const auto lines = trace_lines(t.output);
  ASSERT_EQ(f.tensors.size(), lines.size());
  for (size_t i = 0; i < lines.size(); i++) EXPECT_EQ(f.tensors[i].first, lines[i].name);
}

}  // namespace
