// One Pre-Norm transformer block (docs/SCALE_VECTORS.md §2), Llama style, no biases, with every
// scale placement of §4 as a module:
//
//   n = N(x);  a_f = γ_f ⊙ n                      input side   (InputSideScale: shared γ or HG)
//   z_f = W_f a_f,  f ∈ {q, k, v}                 linear branches
//   y_f = out_f(z_f)                              output side  (OutputSide: DP u, DNP u ⊙ N_h,
//                                                               QK-Norm γ ⊙ N_h)
//   o = W_o Attn(RoPE(y_q), RoPE(y_k), y_v);  x_mid = x + post(o)     post-norm γ ⊙ N(o) optional
//   the same for the MLP: f ∈ {gate, up}, h = silu(y_gate) ⊙ y_up, o = W_down h
//
// Forward and backward are flat lists of named steps; the backward is the forward read bottom-up.
// Each step's name is the one its trace(...) line gives it (`scalevec trace` prints them all;
// inside a block they carry the prefix "layers.<l>.", and gradients "grad/").
// Shapes: N = B*T rows, C = d_model, F = d_ff, NH heads of size hs. Every branch has its own
// contiguous (N, d) buffers; a branch without output-side scales uses one buffer for z and y.
#pragma once

#include <algorithm>
#include <array>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "../common.h"
#include "../ops/backend.h"
#include "../scale/input_side.h"
#include "../scale/output_side.h"
#include "config.h"
#include "trace.h"

namespace scalevec {

// Ops is the backend (ref/ops/backend.h): CpuOps<T>, the reference, unless the block runs on the
// GPU (gpu/backend.h). Every array below is an Ops::Array, every arithmetic step an Ops:: call.

// Backward scratch shared by all blocks (one block is differentiated at a time).
template <class T, class Ops = CpuOps<T>>
struct BlockScratch {
  typename Ops::Array dn, datt, dy, dh, dpost;
  void resize(const ModelConfig& c, int max_B) {
    const size_t N = (size_t)max_B * c.context, C = c.d_model, F = c.d_ff;
    dn.resize(N * C), dy.resize(N * C), dh.resize(N * F), dpost.resize(N * C);
    datt.resize(Ops::attention_scratch_size(max_B, c.context, c.n_head, c.head_size()));
  }
};

// RoPE tables, shared by all blocks.
template <class T, class Ops = CpuOps<T>>
struct RopeTables {
  typename Ops::Array cos, sin;  // (context, hs/2) each
};

// One linear branch f at a norm site: its matrix W_f (out x in), its output-side scales, and its
// buffers. Without output-side scales y aliases z.
template <class T, class Ops = CpuOps<T>>
struct LinearBranch {
  size_t w = 0;         // offset of W_f
  int in = 0, out = 0;  // W_f is (out, in)
  OutputSide<T, Ops> out_side;
  typename Ops::Array z, y;    // (N, out): W_f a_f and out_side(z)
  typename Ops::Array dz, dy;  // their gradients
  T* Y() { return out_side.identity() ? z.data() : y.data(); }
  T* dY() { return out_side.identity() ? dz.data() : dy.data(); }
  // Trace names (ref/model/trace.h): "attn.q.z", "attn.q.y" and its input "attn_norm.a" (HG:
  // "attn_norm.q.a"). Without output-side scales y is z, and only z is a step.
  std::string z_name, y_name, a_name;
  const std::string& Y_name() const { return out_side.identity() ? z_name : y_name; }
};

template <class T, class Ops = CpuOps<T>>
class Block {
 public:
  using Linear = LinearBranch<T, Ops>;
  using InputSide = InputSideScale<T, Ops>;
  using OutSide = OutputSide<T, Ops>;

  Block(ParamLayout& layout, const ModelConfig& cfg, int layer, int max_B);
  // x: (B, T, C) block input; out: (B, T, C) block output.
  void forward(const T* params, const T* x, T* out, int B, int Tn, const RopeTables<T, Ops>& rope);
  // dres: (B, T, C) holds d(out) on entry and d(x) on return.
  void backward(const T* params, T* grads, T* dres, BlockScratch<T, Ops>& s, int B, int Tn,
                const RopeTables<T, Ops>& rope);
  void sites(std::vector<ScaleSite<T>>& out);
  // `scalevec trace`: record every named step of forward and backward into t (nullptr: none).
  void set_trace(Trace<T>* t) {
    static_assert(Ops::host_memory, "the trace reads every step's values from the host");
    trace_ = t;
  }

  // Structure, for `scalevec diagram` and its test.
  const InputSide& attn_in() const { return attn_in_; }
  const InputSide& mlp_in() const { return mlp_in_; }
  const std::array<Linear, 3>& qkv() const { return qkv_; }
  const std::array<Linear, 2>& gate_up() const { return gu_; }
  size_t w_o() const { return w_o_; }
  size_t w_down() const { return w_down_; }
  const OutSide& post_attn() const { return post_attn_; }
  const OutSide& post_mlp() const { return post_mlp_; }

 private:
  InputSide make_site(ParamLayout& layout, const std::string& p, const std::string& norm,
                      const std::string& sub,
                      const std::vector<std::pair<Branch, std::string>>& defs, Linear* br,
                      int d_out, size_t N);
  void branches_forward(const T* P, InputSide& in, Linear* br, int nb, int B, int Tn);
  void branches_backward(const T* P, T* G, InputSide& in, Linear* br, int nb, T* dn, int B, int Tn);
  // `scalevec trace`, each a no-op without a recorder: a step (or its gradient) under
  // "layers.<l>." + name, and the scaled inputs a_f of a site (or their gradients), one per γ.
  void trace(std::string_view name, const T* x, std::initializer_list<int64_t> shape) const;
  void trace_grad(std::string_view name, const T* x, std::initializer_list<int64_t> shape) const;
  void trace_inputs(TracePass pass, InputSide& in, const Linear* br, int nb, int B, int Tn) const;

  ModelConfig cfg_;
  int C_, F_, NH_, hs_;
  InputSide attn_in_, mlp_in_;
  std::array<Linear, 3> qkv_;  // q, k, v: (N, C) each
  std::array<Linear, 2> gu_;   // gate, up: (N, F) each
  size_t w_o_ = 0, w_down_ = 0;
  OutSide post_attn_, post_mlp_;  // post-sublayer norms (identity unless enabled)
  // Activations kept for the backward pass.
  typename Ops::Array n1_, rstd1_;  // (N, C), (N,)   N(x)
  typename Ops::Array att_;         // (B, NH, T, T)  softmax probabilities
  typename Ops::Array y_;           // (N, C)         attention output, heads concatenated
  typename Ops::Array o_;           // (N, C)         W_o y or W_down h before a post-norm
  typename Ops::Array x_mid_;       // (N, C)         residual after attention
  typename Ops::Array n2_, rstd2_;  // (N, C), (N,)   N(x_mid)
  typename Ops::Array h_;           // (N, F)         silu(gate) ⊙ up
  Trace<T>* trace_ = nullptr;       // `scalevec trace`'s recorder, if any
  std::string prefix_;              // "layers.<l>.": the prefix of its trace names
};

// ---------------------------------------------------------------------------------------------

inline size_t add_matrix(ParamLayout& layout, const std::string& name, int rows, int cols,
                         double std) {
  ParamInfo m;
  m.name = name, m.shape = {rows, cols}, m.role = Role::Matrix, m.init_std = std;
  return layout.add(m);
}

// One norm site: its input-side scale(s), then per branch the matrix and the output-side scales.
template <class T, class Ops>
typename Block<T, Ops>::InputSide Block<T, Ops>::make_site(
    ParamLayout& layout, const std::string& p, const std::string& norm, const std::string& sub,
    const std::vector<std::pair<Branch, std::string>>& defs, Linear* br, int d_out, size_t N) {
  const ScaleConfig& sc = cfg_.sc;
  auto is_qk = [](Branch b) { return b == Branch::Q || b == Branch::K; };
  // A post-norm after the sublayer removes any global factor of v (attention is linear in v) and
  // of up (h = silu(gate) ⊙ up is linear in up); q, k and gate enter nonlinearly.
  auto post_cancels = [&](Branch b) { return sc.post_norm && (b == Branch::V || b == Branch::Up); };
  auto normalized = [&](Branch b) {
    return sc.has(sc.dnp, b) || (sc.qk_norm && is_qk(b)) || post_cancels(b);
  };
  std::vector<InputBranch> ins;
  for (const auto& [b, w] : defs) ins.push_back({branch_name(b), p + sub + "." + w, normalized(b)});
  InputSide in(layout, p + norm, C_, sc.param, ins, sc.hg, sc.skip_cancelled_magnitude, N);
  std::vector<FoldTarget> maps;
  for (size_t f = 0; f < defs.size(); f++) {
    const Branch b = defs[f].first;
    Linear& x = br[f];
    x.in = C_, x.out = d_out;
    x.z_name = sub + "." + branch_name(b) + ".z", x.y_name = sub + "." + branch_name(b) + ".y";
    x.a_name = sc.hg ? norm + "." + branch_name(b) + ".a" : norm + ".a";
    x.w = add_matrix(layout, ins[f].w_name, d_out, C_, 0.02);
    maps.push_back({x.w, d_out, C_, true});
    typename OutSide::Spec s;
    s.param = sc.param, s.dp = sc.has(sc.dp, b), s.heads = is_qk(b) ? NH_ : 1,
    s.eps = cfg_.norm_eps;
    s.downstream_norm = post_cancels(b), s.skip_cancelled = sc.skip_cancelled_magnitude;
    const std::string bn = p + sub + "." + branch_name(b);
    if (sc.has(sc.dnp, b)) s.norm = bn + "_dnp", s.norm_symbol = "u";
    if (sc.qk_norm && is_qk(b)) s.norm = bn + "_norm", s.norm_symbol = "gamma";
    x.out_side = OutSide(layout, bn, d_out, s, {x.w, d_out, C_, false}, ins[f].w_name, N);
    x.z.resize(N * d_out), x.dz.resize(N * d_out);
    if (!x.out_side.identity()) x.y.resize(N * d_out), x.dy.resize(N * d_out);
  }
  in.set_targets(maps);
  return in;
}

// A post-sublayer norm γ ⊙ N(o) on the output o of the matrix at w_off (rows x cols).
template <class T, class Ops>
OutputSide<T, Ops> post_norm(ParamLayout& layout, const std::string& name, size_t w_off, int rows,
                             int cols, const std::string& w_name, ScaleParam param, double eps,
                             size_t N) {
  typename OutputSide<T, Ops>::Spec s;
  s.param = param, s.norm = name, s.norm_symbol = "gamma", s.heads = 1, s.eps = eps;
  return OutputSide<T, Ops>(layout, name, rows, s, {w_off, rows, cols, false}, w_name, N);
}

template <class T, class Ops>
Block<T, Ops>::Block(ParamLayout& layout, const ModelConfig& cfg, int layer, int max_B)
    : cfg_(cfg), C_(cfg.d_model), F_(cfg.d_ff), NH_(cfg.n_head), hs_(cfg.head_size()) {
  const std::string p = fmt::format("layers.{}.", layer);
  prefix_ = p;
  const size_t N = (size_t)max_B * cfg.context;
  const double std_out = 0.02 / std::sqrt(2.0 * cfg.n_layer);  // GPT-2 style residual scaling
  // Parameters in forward order: attention norm, q k v (+ output scales), wo, post-norm, MLP norm,
  // gate up (+ output scales), down, post-norm.
  attn_in_ =
      make_site(layout, p, "attn_norm", "attn",
                {{Branch::Q, "wq"}, {Branch::K, "wk"}, {Branch::V, "wv"}}, qkv_.data(), C_, N);
  w_o_ = add_matrix(layout, p + "attn.wo", C_, C_, std_out);
  if (cfg.sc.post_norm)
    post_attn_ = post_norm<T, Ops>(layout, p + "post_attn_norm", w_o_, C_, C_, p + "attn.wo",
                                   cfg.sc.param, cfg.norm_eps, N);
  mlp_in_ = make_site(layout, p, "mlp_norm", "mlp",
                      {{Branch::Gate, "w_gate"}, {Branch::Up, "w_up"}}, gu_.data(), F_, N);
  w_down_ = add_matrix(layout, p + "mlp.w_down", C_, F_, std_out);
  if (cfg.sc.post_norm)
    post_mlp_ = post_norm<T, Ops>(layout, p + "post_mlp_norm", w_down_, C_, F_, p + "mlp.w_down",
                                  cfg.sc.param, cfg.norm_eps, N);

  n1_.resize(N * C_), rstd1_.resize(N);
  att_.resize((size_t)max_B * NH_ * cfg.context * cfg.context);
  y_.resize(N * C_), o_.resize(N * C_), x_mid_.resize(N * C_), n2_.resize(N * C_), rstd2_.resize(N);
  h_.resize(N * F_);
}

// z_f = W_f a_f, then y_f = out_f(z_f), for the nb branches of one site.
template <class T, class Ops>
void Block<T, Ops>::branches_forward(const T* P, InputSide& in, Linear* br, int nb, int B, int Tn) {
  const int N = B * Tn;
  trace_inputs(TracePass::Forward, in, br, nb, B, Tn);  // a_f
  for (int f = 0; f < nb; f++) {
    Linear& x = br[f];
    Ops::linear_forward(x.z.data(), in.input(f), P + x.w, N, x.in, x.out);
    trace(x.z_name, x.z.data(), {B, Tn, x.out});
    if (x.out_side.identity()) continue;
    x.out_side.forward(P, x.z.data(), x.y.data(), N);
    trace(x.y_name, x.y.data(), {B, Tn, x.out});
  }
}

// From dY of every branch: dz_f, dW_f, and the input side's dn (+=) and dγ.
template <class T, class Ops>
void Block<T, Ops>::branches_backward(const T* P, T* G, InputSide& in, Linear* br, int nb, T* dn,
                                      int B, int Tn) {
  const int N = B * Tn;
  in.zero_grad(N);
  for (int f = 0; f < nb; f++) {
    Linear& x = br[f];
    if (!x.out_side.identity()) {
      Ops::zero(x.dz.data(), (size_t)N * x.out);
      x.out_side.backward(P, G, x.dy.data(), x.dz.data(), N);
      trace_grad(x.z_name, x.dz.data(), {B, Tn, x.out});
    }
    Ops::linear_backward(in.dinput(f), G + x.w, x.dz.data(), in.input(f), P + x.w, N, x.in, x.out);
  }
  trace_inputs(TracePass::Backward, in, br, nb, B, Tn);  // d(a_f)
  Ops::zero(dn, (size_t)N * C_);
  in.backward(P, G, dn, N);
}

// clang-format off: the call list's aligned comments are its reading
// [snippet:block_forward]
template <class T, class Ops>
void Block<T, Ops>::forward(const T* P, const T* x, T* out, int B, int Tn,
                            const RopeTables<T, Ops>& rope) {
  const int N = B * Tn, C = C_, F = F_;
  const T eps = T(cfg_.norm_eps);
  // --- attention ---
  Ops::rmsnorm_forward(n1_.data(), rstd1_.data(), x, N, C, eps);  // n1 = N(x)
  trace("attn_norm.n", n1_.data(), {B, Tn, C});
  attn_in_.forward(P, n1_.data(), N);                    // a_f = γ_f ⊙ n1
  branches_forward(P, attn_in_, qkv_.data(), 3, B, Tn);  // y_f = out_f(W_f a_f)
  T *q = qkv_[0].Y(), *k = qkv_[1].Y(), *v = qkv_[2].Y();
  Ops::rope_forward(q, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_);
  Ops::rope_forward(k, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_);
  trace("attn.q.rope", q, {B, Tn, C}), trace("attn.k.rope", k, {B, Tn, C});
  Ops::attention_forward(y_.data(), att_.data(), q, k, v, B, Tn, NH_, hs_);
  trace("attn.att", att_.data(), {B, NH_, Tn, Tn}), trace("attn.y", y_.data(), {B, Tn, C});
  Ops::linear_forward(o_.data(), y_.data(), P + w_o_, N, C, C);  // o = W_o y
  trace("attn.o", o_.data(), {B, Tn, C});
  if (!post_attn_.identity()) {  // o ← γ ⊙ N(o)
    post_attn_.forward(P, o_.data(), out, N);
    trace("post_attn_norm.out", out, {B, Tn, C});
  }
  Ops::residual_forward(x_mid_.data(), x, post_attn_.identity() ? o_.data() : out, (size_t)N * C);
  trace("x_mid", x_mid_.data(), {B, Tn, C});
  // --- MLP ---
  Ops::rmsnorm_forward(n2_.data(), rstd2_.data(), x_mid_.data(), N, C, eps);  // n2 = N(x_mid)
  trace("mlp_norm.n", n2_.data(), {B, Tn, C});
  mlp_in_.forward(P, n2_.data(), N);                             // a_f = γ_f ⊙ n2
  branches_forward(P, mlp_in_, gu_.data(), 2, B, Tn);            // y_f = out_f(W_f a_f)
  Ops::swiglu_forward(h_.data(), gu_[0].Y(), gu_[1].Y(), N, F);  // h = silu(gate) ⊙ up
  trace("mlp.h", h_.data(), {B, Tn, F});
  T* o = post_mlp_.identity() ? out : o_.data();
  Ops::linear_forward(o, h_.data(), P + w_down_, N, F, C);  // o = W_down h
  trace("mlp.o", o, {B, Tn, C});
  if (!post_mlp_.identity()) {  // o ← γ ⊙ N(o)
    post_mlp_.forward(P, o_.data(), out, N);
    trace("post_mlp_norm.out", out, {B, Tn, C});
  }
  Ops::residual_forward(out, x_mid_.data(), out, (size_t)N * C);  // out = x_mid + o
  trace("out", out, {B, Tn, C});
}
// [end]
// clang-format on

// clang-format off: the call list's aligned comments are its reading
// [snippet:block_backward]
template <class T, class Ops>
void Block<T, Ops>::backward(const T* P, T* G, T* dres, BlockScratch<T, Ops>& s, int B, int Tn,
                             const RopeTables<T, Ops>& rope) {
  const int N = B * Tn, C = C_, F = F_;
  auto zero = [](T* p, size_t n) { Ops::zero(p, n); };
  // d(post-norm output) = dres; through the post-norm (if any) to d(o).
  auto through_post = [&](OutSide& post, std::string_view name) -> const T* {
    if (post.identity()) return dres;
    trace_grad(name, dres, {B, Tn, C});
    zero(s.dpost.data(), (size_t)N * C);
    post.backward(P, G, dres, s.dpost.data(), N);
    return s.dpost.data();
  };
  // --- MLP, in reverse. out = x_mid + o: d(x_mid) gets dres through the identity, so dres keeps
  // flowing and the MLP path adds into it at the end (rmsnorm_backward accumulates).
  const T* d_down = through_post(post_mlp_, "post_mlp_norm.out");
  trace_grad("mlp.o", d_down, {B, Tn, C});
  zero(s.dh.data(), (size_t)N * F);
  Ops::linear_backward(s.dh.data(), G + w_down_, d_down, h_.data(), P + w_down_, N, F, C);
  trace_grad("mlp.h", s.dh.data(), {B, Tn, F});
  zero(gu_[0].dY(), (size_t)N * F), zero(gu_[1].dY(), (size_t)N * F);
  Ops::swiglu_backward(gu_[0].dY(), gu_[1].dY(), s.dh.data(), gu_[0].Y(), gu_[1].Y(), N, F);
  trace_grad(gu_[0].Y_name(), gu_[0].dY(), {B, Tn, F});
  trace_grad(gu_[1].Y_name(), gu_[1].dY(), {B, Tn, F});
  branches_backward(P, G, mlp_in_, gu_.data(), 2, s.dn.data(), B, Tn);  // dn2 and dγ_mlp
  trace_grad("mlp_norm.n", s.dn.data(), {B, Tn, C});
  Ops::rmsnorm_backward(dres, s.dn.data(), n2_.data(), rstd2_.data(), N, C);  // dres = d(x_mid)
  trace_grad("x_mid", dres, {B, Tn, C});
  // --- attention, in reverse. x_mid = x + o.
  const T* d_o = through_post(post_attn_, "post_attn_norm.out");
  trace_grad("attn.o", d_o, {B, Tn, C});
  zero(s.dy.data(), (size_t)N * C);
  Ops::linear_backward(s.dy.data(), G + w_o_, d_o, y_.data(), P + w_o_, N, C, C);
  trace_grad("attn.y", s.dy.data(), {B, Tn, C});
  T *dq = qkv_[0].dY(), *dk = qkv_[1].dY(), *dv = qkv_[2].dY();
  zero(dq, (size_t)N * C), zero(dk, (size_t)N * C), zero(dv, (size_t)N * C);
  Ops::attention_backward(dq, dk, dv, s.datt.data(), s.dy.data(), att_.data(), qkv_[0].Y(),
                          qkv_[1].Y(), qkv_[2].Y(), B, Tn, NH_, hs_);
  trace_grad("attn.q.rope", dq, {B, Tn, C}), trace_grad("attn.k.rope", dk, {B, Tn, C});
  trace_grad(qkv_[2].Y_name(), dv, {B, Tn, C});
  Ops::rope_backward(dq, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_);
  Ops::rope_backward(dk, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_);
  trace_grad(qkv_[0].Y_name(), dq, {B, Tn, C}), trace_grad(qkv_[1].Y_name(), dk, {B, Tn, C});
  branches_backward(P, G, attn_in_, qkv_.data(), 3, s.dn.data(), B, Tn);  // dn1 and dγ_attn
  trace_grad("attn_norm.n", s.dn.data(), {B, Tn, C});
  Ops::rmsnorm_backward(dres, s.dn.data(), n1_.data(), rstd1_.data(), N, C);  // dres = d(x)
}
// [end]
// clang-format on

template <class T, class Ops>
void Block<T, Ops>::trace(std::string_view name, const T* x,
                          std::initializer_list<int64_t> shape) const {
  if (trace_) trace_->add(TracePass::Forward, prefix_ + std::string(name), x, shape);
}

template <class T, class Ops>
void Block<T, Ops>::trace_grad(std::string_view name, const T* x,
                               std::initializer_list<int64_t> shape) const {
  if (trace_) trace_->add(TracePass::Backward, prefix_ + std::string(name), x, shape);
}

// One entry per γ group (its first branch names it); none for an identity γ, whose a_f is n.
template <class T, class Ops>
void Block<T, Ops>::trace_inputs(TracePass pass, InputSide& in, const Linear* br, int nb, int B,
                                 int Tn) const {
  if (!trace_) return;
  for (int f = 0; f < nb; f++) {
    const int g = in.group_of(f);
    if (in.groups()[g].identity() || (f > 0 && in.group_of(f - 1) == g)) continue;
    const T* a = pass == TracePass::Forward ? in.input(f) : in.dinput(f);
    trace_->add(pass, prefix_ + br[f].a_name, a, {B, Tn, C_});
  }
}

template <class T, class Ops>
void Block<T, Ops>::sites(std::vector<ScaleSite<T>>& out) {
  attn_in_.sites(out);
  for (auto& b : qkv_) b.out_side.sites(out);
  post_attn_.sites(out);
  mlp_in_.sites(out);
  for (auto& b : gu_) b.out_side.sites(out);
  post_mlp_.sites(out);
}

}  // namespace scalevec
