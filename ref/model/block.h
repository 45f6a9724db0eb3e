// One Pre-Norm transformer block (SCALE_VECTORS.md §2), Llama style, no biases:
//     x_mid = x     + W_o · Attn(RoPE(q), RoPE(k), v),   {q,k,v} = W_{q,k,v} (γ_attn ⊙ N(x))
//     out   = x_mid + W_down · (silu(W_gate a) ⊙ (W_up a)),   a = γ_mlp ⊙ N(x_mid)
// Forward and backward are flat lists of named steps; the backward is the forward read bottom-up.
// Shapes: N = B*T rows, C = d_model, F = d_ff, NH heads of size hs.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../ops/attention.h"
#include "../ops/linear.h"
#include "../ops/residual.h"
#include "../ops/rmsnorm.h"
#include "../ops/rope.h"
#include "../ops/swiglu.h"
#include "../common.h"
#include "../scale/input_side.h"
#include "config.h"

namespace scalevec {

// Backward scratch shared by all blocks (one block is differentiated at a time).
template <class T>
struct BlockScratch {
  std::vector<T> dn, dqkv, datt, dy, dgu, dh;
  void resize(const ModelConfig& c, int max_B) {
    const size_t N = (size_t)max_B * c.context, C = c.d_model, F = c.d_ff;
    dn.resize(N * C), dqkv.resize(N * 3 * C), dy.resize(N * C);
    datt.resize((size_t)max_B * c.n_head * c.context * c.context);
    dgu.resize(N * 2 * F), dh.resize(N * F);
  }
};

// RoPE tables, shared by all blocks.
template <class T>
struct RopeTables {
  std::vector<T> cos, sin;  // (context, hs/2) each
};

template <class T>
class Block {
 public:
  Block(ParamLayout& layout, const ModelConfig& cfg, int layer, int max_B);
  // x: (B, T, C) block input; out: (B, T, C) block output.
  void forward(const T* params, const T* x, T* out, int B, int Tn, const RopeTables<T>& rope);
  // dres: (B, T, C) holds d(out) on entry and d(x) on return.
  void backward(const T* params, T* grads, T* dres, BlockScratch<T>& s, int B, int Tn,
                const RopeTables<T>& rope);

 private:
  ModelConfig cfg_;
  int C_, F_, NH_, hs_;
  size_t w_qkv_[3], w_o_, w_gu_[2], w_down_;  // parameter offsets: wq wk wv | wo | wgate wup | wdown
  InputSideScale<T> attn_in_, mlp_in_;
  // Activations kept for the backward pass.
  std::vector<T> n1_, rstd1_;  // (N, C), (N,)   N(x)
  std::vector<T> qkv_;         // (N, 3C)        q | k | v, q and k rotated
  std::vector<T> att_;         // (B, NH, T, T)  softmax probabilities
  std::vector<T> y_;           // (N, C)         attention output, heads concatenated
  std::vector<T> x_mid_;       // (N, C)         residual after attention
  std::vector<T> n2_, rstd2_;  // (N, C), (N,)   N(x_mid)
  std::vector<T> gu_;          // (N, 2F)        gate | up
  std::vector<T> h_;           // (N, F)         silu(gate) ⊙ up
};

// ---------------------------------------------------------------------------------------------

template <class T>
Block<T>::Block(ParamLayout& layout, const ModelConfig& cfg, int layer, int max_B)
    : cfg_(cfg), C_(cfg.d_model), F_(cfg.d_ff), NH_(cfg.n_head), hs_(cfg.head_size()) {
  const std::string p = fmt::format("layers.{}.", layer);
  const size_t N = (size_t)max_B * cfg.context;
  const double std_in = 0.02, std_out = 0.02 / std::sqrt(2.0 * cfg.n_layer);  // GPT-2 style
  auto matrix = [&](const std::string& name, int rows, int cols, double std) {
    ParamInfo m;
    m.name = p + name, m.shape = {rows, cols}, m.role = Role::Matrix, m.init_std = std;
    return layout.add(m);
  };
  // Parameters in a fixed order: attention norm, attention, MLP norm, MLP.
  attn_in_ = InputSideScale<T>(layout, p + "attn_norm", C_, cfg.scale_param(),
                               {p + "attn.wq", p + "attn.wk", p + "attn.wv"}, N);
  w_qkv_[0] = matrix("attn.wq", C_, C_, std_in);
  w_qkv_[1] = matrix("attn.wk", C_, C_, std_in);
  w_qkv_[2] = matrix("attn.wv", C_, C_, std_in);
  w_o_ = matrix("attn.wo", C_, C_, std_out);
  mlp_in_ = InputSideScale<T>(layout, p + "mlp_norm", C_, cfg.scale_param(),
                              {p + "mlp.w_gate", p + "mlp.w_up"}, N);
  w_gu_[0] = matrix("mlp.w_gate", F_, C_, std_in);
  w_gu_[1] = matrix("mlp.w_up", F_, C_, std_in);
  w_down_ = matrix("mlp.w_down", C_, F_, std_out);

  n1_.resize(N * C_), rstd1_.resize(N), qkv_.resize(N * 3 * C_);
  att_.resize((size_t)max_B * NH_ * cfg.context * cfg.context);
  y_.resize(N * C_), x_mid_.resize(N * C_), n2_.resize(N * C_), rstd2_.resize(N);
  gu_.resize(N * 2 * F_), h_.resize(N * F_);
}

// [snippet:block_forward]
template <class T>
void Block<T>::forward(const T* P, const T* x, T* out, int B, int Tn, const RopeTables<T>& rope) {
  const int N = B * Tn, C = C_, F = F_;
  const T eps = T(cfg_.norm_eps);
  T *q = qkv_.data(), *k = q + C, *v = q + 2 * C;
  // --- attention ---
  rmsnorm_forward(n1_.data(), rstd1_.data(), x, N, C, C, eps);       // n1 = N(x)
  attn_in_.forward(P, n1_.data(), N);                                 // a_f = γ ⊙ n1
  for (int f = 0; f < 3; f++)                                         // q|k|v = W_f a_f
    linear_forward(qkv_.data() + f * C, attn_in_.input(f), P + w_qkv_[f], N, C, C, 3 * C);
  rope_forward(q, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_, 3 * C);
  rope_forward(k, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_, 3 * C);
  attention_forward(y_.data(), att_.data(), q, k, v, 3 * C, B, Tn, NH_, hs_);
  linear_forward(out, y_.data(), P + w_o_, N, C, C, C);               // out = W_o y (scratch)
  residual_forward(x_mid_.data(), x, out, (size_t)N * C);             // x_mid = x + W_o y
  // --- MLP ---
  rmsnorm_forward(n2_.data(), rstd2_.data(), x_mid_.data(), N, C, C, eps);  // n2 = N(x_mid)
  mlp_in_.forward(P, n2_.data(), N);                                  // a_f = γ ⊙ n2
  for (int f = 0; f < 2; f++)                                         // gate|up = W_f a_f
    linear_forward(gu_.data() + f * F, mlp_in_.input(f), P + w_gu_[f], N, C, F, 2 * F);
  swiglu_forward(h_.data(), gu_.data(), gu_.data() + F, N, F, 2 * F);  // h = silu(gate) ⊙ up
  linear_forward(out, h_.data(), P + w_down_, N, F, C, C);            // out = W_down h
  residual_forward(out, x_mid_.data(), out, (size_t)N * C);           // out = x_mid + W_down h
}
// [end]

// [snippet:block_backward]
template <class T>
void Block<T>::backward(const T* P, T* G, T* dres, BlockScratch<T>& s, int B, int Tn,
                        const RopeTables<T>& rope) {
  const int N = B * Tn, C = C_, F = F_;
  auto zero = [](std::vector<T>& v, size_t n) { std::fill(v.begin(), v.begin() + n, T(0)); };
  // --- MLP, in reverse. out = x_mid + W_down h: d(x_mid) gets dres through the identity, so
  // dres keeps flowing and the MLP path adds into it at the end (rmsnorm_backward accumulates).
  zero(s.dh, (size_t)N * F);
  linear_backward(s.dh.data(), G + w_down_, dres, h_.data(), P + w_down_, N, F, C, C);
  zero(s.dgu, (size_t)N * 2 * F);
  swiglu_backward(s.dgu.data(), s.dgu.data() + F, s.dh.data(), gu_.data(), gu_.data() + F, N, F,
                  2 * F);
  mlp_in_.zero_grad(N);
  for (int f = 0; f < 2; f++)
    linear_backward(mlp_in_.dinput(f), G + w_gu_[f], s.dgu.data() + f * F, mlp_in_.input(f),
                    P + w_gu_[f], N, C, F, 2 * F);
  zero(s.dn, (size_t)N * C);
  mlp_in_.backward(G, s.dn.data(), N);                                // dn2 and dγ_mlp
  rmsnorm_backward(dres, s.dn.data(), n2_.data(), rstd2_.data(), N, C, C);  // dres = d(x_mid)
  // --- attention, in reverse. x_mid = x + W_o y.
  zero(s.dy, (size_t)N * C);
  linear_backward(s.dy.data(), G + w_o_, dres, y_.data(), P + w_o_, N, C, C, C);
  zero(s.dqkv, (size_t)N * 3 * C);
  T *dq = s.dqkv.data(), *dk = dq + C, *dv = dq + 2 * C;
  const T *q = qkv_.data(), *k = q + C, *v = q + 2 * C;
  attention_backward(dq, dk, dv, s.datt.data(), s.dy.data(), att_.data(), q, k, v, 3 * C, B, Tn,
                     NH_, hs_);
  rope_backward(dq, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_, 3 * C);
  rope_backward(dk, rope.cos.data(), rope.sin.data(), B, Tn, NH_, hs_, 3 * C);
  attn_in_.zero_grad(N);
  for (int f = 0; f < 3; f++)
    linear_backward(attn_in_.dinput(f), G + w_qkv_[f], s.dqkv.data() + f * C, attn_in_.input(f),
                    P + w_qkv_[f], N, C, C, 3 * C);
  zero(s.dn, (size_t)N * C);
  attn_in_.backward(G, s.dn.data(), N);                               // dn1 and dγ_attn
  rmsnorm_backward(dres, s.dn.data(), n1_.data(), rstd1_.data(), N, C, C);  // dres = d(x)
}
// [end]

}  // namespace scalevec
