// scalevec trace: one forward and backward pass of a small model in double precision, printing
// every named step of the model's call list (ref/model/block.h, ref/model/transformer.h) with
// its shape, rms and first values, the loss, then every gradient in the order the backward
// computes it. --dump writes them all as one safetensors file; --save-dir also writes the model
// and the batch, so that `tools/torch_ref.py trace --dir DIR --compare` reruns the same pass in
// PyTorch and compares every tensor.
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "commands.h"
#include "ref/common.h"
#include "ref/model/trace.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"
#include "ref/train/safetensors.h"

namespace scalevec {

namespace {

const char* const kDefaultText = "The quick brown fox jumps over the lazy dog.";

// The model traced unless --ckpt: small enough to read every number.
ModelConfig trace_base_config(int seq) {
  ModelConfig c;
  c.n_layer = 1, c.d_model = 8, c.n_head = 2, c.d_ff = 16, c.context = std::max(seq, 2);
  return c;
}

std::string shape_string(const std::vector<int64_t>& s) {  // as Python prints a tuple
  if (s.size() == 1) return fmt::format("({},)", s[0]);
  return fmt::format("({})", fmt::join(s, ", "));
}

std::string quoted_bytes(const int32_t* t, int n) {
  std::string s = "\"";
  for (int i = 0; i < n; i++) {
    const int c = t[i];
    if (c == '\n')
      s += "\\n";
    else if (c == '\t')
      s += "\\t";
    else if (c == '"' || c == '\\')
      s += '\\', s += char(c);
    else if (c >= 32 && c < 127)
      s += char(c);
    else
      s += fmt::format("\\x{:02x}", c);
  }
  return s + "\"";
}

// One line per tensor; tools/torch_ref.py's `trace` prints the same format, so the two outputs
// can be compared side by side.
struct LineFormat {
  size_t name_w = 6, shape_w = 5;
  int values = 4, digits = 6;
  std::string header() const {
    return fmt::format("{:>4}  {:<{}}  {:<{}}  {:<{}}  first values (row-major)", "#", "tensor",
                       name_w, "shape", shape_w, "rms", digits + 6);
  }
  std::string line(size_t i, const Trace<double>::Entry& e) const {
    double ss = 0;
    for (double v : e.data) ss += v * v;
    const double rms = e.data.empty() ? 0.0 : std::sqrt(ss / double(e.data.size()));
    std::string s = fmt::format("{:>4}  {:<{}}  {:<{}}  {:.{}e} ", i, e.name, name_w,
                                shape_string(e.shape), shape_w, rms, digits);
    const size_t k = std::min(e.data.size(), (size_t)values);
    for (size_t j = 0; j < k; j++) s += fmt::format(" {: .{}e}", e.data[j], digits);
    if (e.data.size() > k) s += " ...";
    return s;
  }
};

}  // namespace

Action add_trace(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand(
      "trace",
      "Step through one forward and backward pass (double): every named step and every "
      "gradient, with shape, rms and first values");
  struct Args {
    std::string ckpt, text = kDefaultText, dump, save_dir;
    int batch = 1, seq = 4, values = 4, digits = 6;
    uint64_t seed = 1337;
  };
  auto a = std::make_shared<Args>();
  auto mf = std::make_shared<FlagSet<ModelConfig>>(model_flags(*cmd));
  cmd->add_option("--ckpt", a->ckpt,
                  "trace the model of this run directory or model .safetensors file instead");
  cmd->add_option("--text", a->text,
                  "input bytes: sequence b is bytes [b*T, b*T+T), its targets the next bytes")
      ->capture_default_str();
  cmd->add_option("--batch", a->batch, "sequences B")->capture_default_str()->check(at_least(1));
  cmd->add_option("--seq", a->seq, "sequence length T")->capture_default_str()->check(at_least(1));
  CLI::Option* seed_opt =
      cmd->add_option("--seed", a->seed,
                      "initialization seed (as `train --seed`: the same initial weights for "
                      "the same model flags; a whole number in [0, 2^64 - 1])")
          ->capture_default_str()
          ->check(seed());
  cmd->add_option("--dump", a->dump,
                  "write every traced tensor to this safetensors file (F64), forward steps by "
                  "name, gradients as grad/<name>");
  cmd->add_option("--save-dir", a->save_dir,
                  "also write DIR/model.safetensors, DIR/batch.safetensors and "
                  "DIR/trace.safetensors, for `tools/torch_ref.py trace --dir DIR --compare`");
  cmd->add_option("--values", a->values, "values printed per tensor")
      ->capture_default_str()
      ->check(at_least(0));
  cmd->add_option("--digits", a->digits, "digits after the point of printed numbers")
      ->capture_default_str()
      ->check(CLI::Range(1, 17));
  cmd->footer(
      "The model, unless --ckpt: 1 layer, d_model 8, 2 heads of size 4, d_ff 16, context = --seq "
      "(at least 2), --scale baseline, initialized as `train` initializes it. Every model and "
      "scale flag of `train` changes it (the [tiny: ...] defaults they show are train's presets, "
      "not this command's).\n\n"
      "Forward steps, in order (prefix layers.<l>. inside a block): embed; attn_norm.n = N(x); "
      "attn_norm.a = gamma*n (HG: attn_norm.<f>.a; none without a scale); attn.<f>.z = W_f a and "
      "attn.<f>.y = its output-side scales (only with DP, DNP or QK-Norm), f = q,k,v; "
      "attn.q.rope, attn.k.rope; attn.att (softmax probabilities, B x heads x T x T); attn.y "
      "(heads concatenated); attn.o = W_o y; post_attn_norm.out (--post-norm); x_mid; the same "
      "for the MLP (mlp_norm.*, mlp.gate.*, mlp.up.*, mlp.h = silu(gate)*up, mlp.o = W_down h, "
      "post_mlp_norm.out); out; then final_norm.n, final_norm.a, logits, loss.\n\n"
      "Gradients, grad/<name>, in the order the backward computes them: every activation above "
      "but attn.att and loss (the total over its uses), and every parameter when its part is "
      "done: final_norm and head after the final part, each block's after its backward, tok_emb "
      "last.\n\n"
      "Side by side with PyTorch:\n"
      "  scalevec trace --scale unified --post-norm --save-dir /tmp/tr > /tmp/tr.scalevec.txt\n"
      "  /usr/bin/python3 tools/torch_ref.py trace --dir /tmp/tr > /tmp/tr.torch.txt\n"
      "  diff /tmp/tr.scalevec.txt /tmp/tr.torch.txt    (or: torch_ref.py trace --dir /tmp/tr "
      "--compare, which compares every tensor)");
  return [=]() -> int {
    set_num_threads(1);  // a few hundred numbers: threads would only add noise
    ModelConfig cfg = trace_base_config(a->seq);
    const bool from_ckpt = !a->ckpt.empty();
    std::string model_file;
    if (from_ckpt) {
      require(mf->given().empty(), "--ckpt and model flags ({}) cannot be combined",
              fmt::join(mf->given(), ", "));
      require(seed_opt->count() == 0,
              "--seed sets the initialization: it cannot be combined with --ckpt");
      model_file = std::filesystem::is_directory(a->ckpt) ? model_path(a->ckpt) : a->ckpt;
      cfg = read_model_config(model_file);
    } else {
      mf->apply(cfg);
    }
    cfg.validate();
    const int B = a->batch, Tn = a->seq, N = B * Tn;
    require(Tn <= cfg.context, "--seq {} exceeds the model's context {}", Tn, cfg.context);
    require(a->text.size() >= (size_t)N + 1,
            "--text has {} bytes; --batch {} x --seq {} needs at least {} (the inputs and one more "
            "byte for the last target)",
            a->text.size(), B, Tn, N + 1);

    Transformer<double> model(cfg, B);
    int64_t step = 0;
    if (from_ckpt)
      step = load_model(model_file, model);
    else
      model.init(derive_seed(a->seed, 0));  // the trainer's initialization
    std::vector<int32_t> inputs(N), targets(N);
    for (int n = 0; n < N; n++)
      inputs[n] = (unsigned char)a->text[n], targets[n] = (unsigned char)a->text[n + 1];

    Trace<double> trace;
    model.set_trace(&trace);
    const double loss = model.forward(inputs.data(), targets.data(), B, Tn);
    model.zero_grad();
    model.backward();
    model.set_trace(nullptr);

    fmt::print(
        "scalevec trace: scale={} (param {}, hg {}, dp {}, dnp {}, qk-norm {}, post-norm {}), "
        "layers {}, d_model {}, heads {}, d_ff {}, context {}; {}; float64\n",
        cfg.scale, scale_param_name(cfg.sc.param), cfg.sc.hg ? "on" : "off",
        branches_to_string(cfg.sc.dp), branches_to_string(cfg.sc.dnp),
        cfg.sc.qk_norm ? "on" : "off", cfg.sc.post_norm ? "on" : "off", cfg.n_layer, cfg.d_model,
        cfg.n_head, cfg.d_ff, cfg.context,
        from_ckpt ? fmt::format("weights of {} (step {})", model_file, step)
                  : fmt::format("initialized with --seed {}", a->seed));
    for (int b = 0; b < B; b++) {
      const int32_t *in = inputs.data() + b * Tn, *tg = targets.data() + b * Tn;
      fmt::print("sequence {}: inputs {} [{}]  targets {} [{}]\n", b, quoted_bytes(in, Tn),
                 fmt::join(in, in + Tn, " "), quoted_bytes(tg, Tn), fmt::join(tg, tg + Tn, " "));
    }

    LineFormat lf;
    lf.values = a->values, lf.digits = a->digits;
    size_t n_fwd = 0;
    for (const auto& e : trace.entries) {
      lf.name_w = std::max(lf.name_w, e.name.size());
      lf.shape_w = std::max(lf.shape_w, shape_string(e.shape).size());
      n_fwd += e.pass == TracePass::Forward;
    }
    fmt::print("\nforward: {} steps\n{}\n", n_fwd, lf.header());
    for (size_t i = 0; i < trace.entries.size(); i++) {
      const auto& e = trace.entries[i];
      if (i == n_fwd)
        fmt::print("loss = {:.17g}\n\nbackward: {} gradients, in the order they are computed\n{}\n",
                   loss, trace.entries.size() - n_fwd, lf.header());
      fmt::print("{}\n", lf.line(i + 1, e));
    }

    StFile dump;
    dump.metadata["format"] = "scalevec-trace";
    dump.metadata["config"] = cfg.to_json().dump();
    dump.metadata["loss"] = fmt::format("{:.17g}", loss);
    for (const auto& e : trace.entries)
      dump.tensors.push_back({e.name, make_tensor(e.data.data(), e.shape)});
    if (!a->dump.empty()) write_safetensors(a->dump, dump);
    if (!a->save_dir.empty()) {
      namespace fs = std::filesystem;
      std::error_code ec;
      fs::create_directories(a->save_dir, ec);
      require(!ec, "--save-dir: cannot create '{}': {}", a->save_dir, ec.message());
      save_model(model_path(a->save_dir), model, step);
      StFile batch;
      batch.tensors.push_back({"inputs", make_tensor(inputs.data(), {B, Tn})});
      batch.tensors.push_back({"targets", make_tensor(targets.data(), {B, Tn})});
      write_safetensors((fs::path(a->save_dir) / "batch.safetensors").string(), batch);
      write_safetensors((fs::path(a->save_dir) / "trace.safetensors").string(), dump);
    }
    return 0;
  };
}

}  // namespace scalevec
