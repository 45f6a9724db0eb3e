// The GPU model: each class below mirrors one ref class (named in its comment) line for line, with
// device buffers and gpu/ops.h calls. Read it beside ref/model/block.h and ref/scale/*.h.
#include "model.h"

#include <algorithm>
#include <array>

#include "ops.h"
#include "ref/model/transformer.h"
#include "ref/ops/rope.h"

namespace scalevec::gpu {

namespace {

void copy_d2d(float* dst, const float* src, size_t n) {
  if (n) SV_CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice));
}
void zero(float* p, size_t n) {
  if (n) SV_CUDA_CHECK(cudaMemset(p, 0, n * sizeof(float)));
}

// Scratch every module shares (one module runs at a time on the default stream).
struct Shared {
  DeviceArray<float> partial;  // scale_backward's row-block partial sums of dγ
};

// ref/scale/vector.h ScaleVector: γ from the parameters; dγ chained into them.
struct GScale {
  int kind = 0, d = 0;  // ScaleParam as int: 0 none, 1 gamma, 2 magdir, 3 magdir-normalized
  size_t off = 0, off_beta = 0;
  DeviceArray<float> gamma, dgamma;  // (d,)

  GScale() = default;
  explicit GScale(const ScaleVector<float>& s)
      : kind((int)s.kind()), d(s.dim()), off(s.offset()), off_beta(s.beta_offset()) {
    if (kind) gamma.resize(d), dgamma.resize(d), dgamma.zero();
  }
  bool identity() const { return kind == 0; }
  const float* forward(const float* P) {
    scale_vector_forward(gamma.data(), P + off, kind >= 2 ? P + off_beta : nullptr, kind, d);
    return gamma.data();
  }
  void backward(const float* P, float* G) {  // then clears dγ, as the ref does
    scale_vector_backward(G + off, kind >= 2 ? G + off_beta : nullptr, dgamma.data(), P + off,
                          kind >= 2 ? P + off_beta : nullptr, kind, d);
    dgamma.zero();
  }
};

// ref/scale/input_side.h InputSideScale: a_g = γ_g ⊙ n per group.
struct GInputSide {
  int C = 0;
  std::vector<int> group_of;
  std::vector<GScale> g;
  std::vector<DeviceArray<float>> a, da;  // per group (N, C)
  const float* n = nullptr;
  Shared* sh = nullptr;

  GInputSide() = default;
  GInputSide(const InputSideScale<float>& s, int C_, size_t max_rows, Shared* shared) : C(C_), sh(shared) {
    for (int f = 0; f < s.branches(); f++) group_of.push_back(s.group_of(f));
    for (const auto& v : s.groups()) g.emplace_back(v);
    for (auto& v : g) {
      a.emplace_back(v.identity() ? 0 : max_rows * C);
      da.emplace_back(max_rows * C);
    }
  }
  void forward(const float* P, const float* n_, int N) {
    n = n_;
    for (size_t k = 0; k < g.size(); k++)
      if (!g[k].identity()) scale_forward(a[k].data(), n, g[k].forward(P), N, C);
  }
  const float* input(int f) const {
    const int k = group_of[f];
    return g[k].identity() ? n : a[k].data();
  }
  void zero_grad(int N) {
    for (auto& d : da) zero(d.data(), (size_t)N * C);
  }
  float* dinput(int f) { return da[group_of[f]].data(); }
  void backward(const float* P, float* G, float* dn, int N) {
    for (size_t k = 0; k < g.size(); k++) {
      if (g[k].identity()) {
        accumulate(dn, da[k].data(), (size_t)N * C);
        continue;
      }
      scale_backward(dn, g[k].dgamma.data(), da[k].data(), n, g[k].gamma.data(), N, C, sh->partial.data());
      g[k].backward(P, G);
    }
  }
};

// ref/scale/output_side.h OutputSide: y = s ⊙ N_h(u ⊙ z) with whichever stages exist.
struct GOutputSide {
  int d = 0, heads = 1;
  float eps = 1e-5f;
  bool has_norm = false;
  GScale dp, norm;
  DeviceArray<float> y1, dy1, n, rstd, dn;
  const float* z = nullptr;
  Shared* sh = nullptr;

  GOutputSide() = default;
  GOutputSide(const OutputSide<float>& s, int d_, size_t max_rows, Shared* shared)
      : d(d_), heads(s.heads()), eps(s.eps()), has_norm(s.has_norm()), dp(s.dp()),
        norm(s.norm_scale()), sh(shared) {
    if (has_norm) n.resize(max_rows * d), rstd.resize(max_rows * heads), dn.resize(max_rows * d);
    if (!dp.identity() && has_norm) y1.resize(max_rows * d), dy1.resize(max_rows * d);
  }
  bool identity() const { return dp.identity() && !has_norm; }

  void forward(const float* P, const float* z_, float* y, int N) {
    z = z_;
    const float* in = z;
    if (!dp.identity()) {
      float* out = has_norm ? y1.data() : y;
      scale_forward(out, z, dp.forward(P), N, d);          // y1 = u ⊙ z
      in = out;
    }
    if (!has_norm) {
      if (in != y) copy_d2d(y, in, (size_t)N * d);
      return;
    }
    const int hs = d / heads;
    rmsnorm_forward(n.data(), rstd.data(), in, N * heads, hs, eps);
    if (norm.identity()) copy_d2d(y, n.data(), (size_t)N * d);
    else scale_forward(y, n.data(), norm.forward(P), N, d);  // y = s ⊙ N_h(y1)
  }

  void backward(const float* P, float* G, const float* dy, float* dz, int N) {
    const float* d_in = dy;
    const size_t nd = (size_t)N * d;
    if (has_norm) {
      zero(dn.data(), nd);
      if (norm.identity()) copy_d2d(dn.data(), dy, nd);
      else scale_backward(dn.data(), norm.dgamma.data(), dy, n.data(), norm.gamma.data(), N, d, sh->partial.data());
      if (!norm.identity()) norm.backward(P, G);
      const int hs = d / heads;
      float* target = dp.identity() ? dz : dy1.data();
      if (!dp.identity()) zero(dy1.data(), nd);
      rmsnorm_backward(target, dn.data(), n.data(), rstd.data(), N * heads, hs);
      if (dp.identity()) return;
      d_in = dy1.data();
    }
    if (!dp.identity()) {
      scale_backward(dz, dp.dgamma.data(), d_in, z, dp.gamma.data(), N, d, sh->partial.data());
      dp.backward(P, G);
    } else if (!has_norm) {
      accumulate(dz, dy, nd);
    }
  }
};

// ref/model/block.h LinearBranch.
struct GBranch {
  size_t w = 0;
  int in = 0, out = 0;
  GOutputSide out_side;
  DeviceArray<float> z, y, dz, dy;
  float* Y() { return out_side.identity() ? z.data() : y.data(); }
  float* dY() { return out_side.identity() ? dz.data() : dy.data(); }
};

// Backward scratch shared by all blocks (ref BlockScratch) and the attention workspace.
struct GScratch {
  DeviceArray<float> dn, dy, dh, dpost, attn;
};

// ref/model/block.h Block.
class GBlock {
 public:
  GBlock(const Block<float>& b, const ModelConfig& cfg, int max_B, Shared* sh)
      : cfg_(cfg), C_(cfg.d_model), F_(cfg.d_ff), NH_(cfg.n_head), hs_(cfg.head_size()) {
    const size_t N = (size_t)max_B * cfg.context;
    attn_in_ = GInputSide(b.attn_in(), C_, N, sh);
    mlp_in_ = GInputSide(b.mlp_in(), C_, N, sh);
    auto make = [&](GBranch& g, const LinearBranch<float>& r) {
      g.w = r.w, g.in = r.in, g.out = r.out;
      g.out_side = GOutputSide(r.out_side, r.out, N, sh);
      g.z.resize(N * r.out), g.dz.resize(N * r.out);
      if (!g.out_side.identity()) g.y.resize(N * r.out), g.dy.resize(N * r.out);
    };
    for (int f = 0; f < 3; f++) make(qkv_[f], b.qkv()[f]);
    for (int f = 0; f < 2; f++) make(gu_[f], b.gate_up()[f]);
    w_o_ = b.w_o(), w_down_ = b.w_down();
    post_attn_ = GOutputSide(b.post_attn(), C_, N, sh);
    post_mlp_ = GOutputSide(b.post_mlp(), C_, N, sh);
    n1_.resize(N * C_), rstd1_.resize(N);
    att_.resize((size_t)max_B * NH_ * cfg.context * cfg.context);
    y_.resize(N * C_), o_.resize(N * C_), x_mid_.resize(N * C_), n2_.resize(N * C_), rstd2_.resize(N);
    h_.resize(N * F_);
  }

  void forward(const float* P, const float* x, float* out, int B, int Tn, const float* cos,
               const float* sin, GScratch& s) {
    const int N = B * Tn, C = C_, F = F_;
    const float eps = float(cfg_.norm_eps);
    // --- attention ---
    rmsnorm_forward(n1_.data(), rstd1_.data(), x, N, C, eps);
    attn_in_.forward(P, n1_.data(), N);
    branches_forward(P, attn_in_, qkv_.data(), 3, N);
    float *q = qkv_[0].Y(), *k = qkv_[1].Y(), *v = qkv_[2].Y();
    rope_forward(q, cos, sin, B, Tn, NH_, hs_);
    rope_forward(k, cos, sin, B, Tn, NH_, hs_);
    attention_forward(y_.data(), att_.data(), q, k, v, B, Tn, NH_, hs_, s.attn.data());
    linear_forward(o_.data(), y_.data(), P + w_o_, N, C, C);
    if (!post_attn_.identity()) post_attn_.forward(P, o_.data(), out, N);
    add(x_mid_.data(), x, post_attn_.identity() ? o_.data() : out, (size_t)N * C);
    // --- MLP ---
    rmsnorm_forward(n2_.data(), rstd2_.data(), x_mid_.data(), N, C, eps);
    mlp_in_.forward(P, n2_.data(), N);
    branches_forward(P, mlp_in_, gu_.data(), 2, N);
    swiglu_forward(h_.data(), gu_[0].Y(), gu_[1].Y(), N, F);
    float* o = post_mlp_.identity() ? out : o_.data();
    linear_forward(o, h_.data(), P + w_down_, N, F, C);
    if (!post_mlp_.identity()) post_mlp_.forward(P, o_.data(), out, N);
    add(out, x_mid_.data(), out, (size_t)N * C);
  }

  void backward(const float* P, float* G, float* dres, GScratch& s, int B, int Tn, const float* cos,
                const float* sin) {
    const int N = B * Tn, C = C_, F = F_;
    auto through_post = [&](GOutputSide& post) -> const float* {
      if (post.identity()) return dres;
      zero(s.dpost.data(), (size_t)N * C);
      post.backward(P, G, dres, s.dpost.data(), N);
      return s.dpost.data();
    };
    // --- MLP, in reverse ---
    const float* d_down = through_post(post_mlp_);
    zero(s.dh.data(), (size_t)N * F);
    linear_backward(s.dh.data(), G + w_down_, d_down, h_.data(), P + w_down_, N, F, C);
    zero(gu_[0].dY(), (size_t)N * F), zero(gu_[1].dY(), (size_t)N * F);
    swiglu_backward(gu_[0].dY(), gu_[1].dY(), s.dh.data(), gu_[0].Y(), gu_[1].Y(), N, F);
    branches_backward(P, G, mlp_in_, gu_.data(), 2, s.dn.data(), N);
    rmsnorm_backward(dres, s.dn.data(), n2_.data(), rstd2_.data(), N, C);
    // --- attention, in reverse ---
    const float* d_o = through_post(post_attn_);
    zero(s.dy.data(), (size_t)N * C);
    linear_backward(s.dy.data(), G + w_o_, d_o, y_.data(), P + w_o_, N, C, C);
    float *dq = qkv_[0].dY(), *dk = qkv_[1].dY(), *dv = qkv_[2].dY();
    zero(dq, (size_t)N * C), zero(dk, (size_t)N * C), zero(dv, (size_t)N * C);
    attention_backward(dq, dk, dv, s.dy.data(), att_.data(), qkv_[0].Y(), qkv_[1].Y(), qkv_[2].Y(),
                       B, Tn, NH_, hs_, s.attn.data());
    rope_backward(dq, cos, sin, B, Tn, NH_, hs_);
    rope_backward(dk, cos, sin, B, Tn, NH_, hs_);
    branches_backward(P, G, attn_in_, qkv_.data(), 3, s.dn.data(), N);
    rmsnorm_backward(dres, s.dn.data(), n1_.data(), rstd1_.data(), N, C);
  }

 private:
  void branches_forward(const float* P, GInputSide& in, GBranch* br, int nb, int N) {
    for (int f = 0; f < nb; f++) {
      GBranch& x = br[f];
      linear_forward(x.z.data(), in.input(f), P + x.w, N, x.in, x.out);
      if (!x.out_side.identity()) x.out_side.forward(P, x.z.data(), x.y.data(), N);
    }
  }
  void branches_backward(const float* P, float* G, GInputSide& in, GBranch* br, int nb, float* dn, int N) {
    in.zero_grad(N);
    for (int f = 0; f < nb; f++) {
      GBranch& x = br[f];
      if (!x.out_side.identity()) {
        zero(x.dz.data(), (size_t)N * x.out);
        x.out_side.backward(P, G, x.dy.data(), x.dz.data(), N);
      }
      linear_backward(in.dinput(f), G + x.w, x.dz.data(), in.input(f), P + x.w, N, x.in, x.out);
    }
    zero(dn, (size_t)N * C_);
    in.backward(P, G, dn, N);
  }

  ModelConfig cfg_;
  int C_, F_, NH_, hs_;
  GInputSide attn_in_, mlp_in_;
  std::array<GBranch, 3> qkv_;
  std::array<GBranch, 2> gu_;
  size_t w_o_ = 0, w_down_ = 0;
  GOutputSide post_attn_, post_mlp_;
  DeviceArray<float> n1_, rstd1_, att_, y_, o_, x_mid_, n2_, rstd2_, h_;
};

}  // namespace

// ref/model/transformer.cpp Transformer.
struct GpuTransformer::Impl {
  Transformer<float> structure;  // parameters-only ref model: the layout and every offset
  Shared shared;
  std::vector<GBlock> blocks;
  GInputSide final_in;
  DeviceArray<float> cos, sin;
  std::vector<DeviceArray<float>> resid;   // L+1 (N, C)
  DeviceArray<float> nf, rstdf, logits, losses, dres, dlogits;
  DeviceArray<int32_t> tokens, targets, positions, offsets;
  std::vector<int32_t> host_tokens;
  GScratch scratch;
  int B = 0, Tn = 0;
  bool has_targets = false;

  explicit Impl(const ModelConfig& cfg) : structure(cfg, 0) {}
};

GpuTransformer::GpuTransformer(const ModelConfig& cfg, int max_B) : cfg_(cfg), max_B_(max_B) {
  cfg_.validate();
  require(max_B >= 1, "GPU model: batch size {} must be >= 1", max_B);
  impl_ = std::make_unique<Impl>(cfg_);
  Impl& m = *impl_;
  const size_t N = (size_t)max_B * cfg.context, C = cfg.d_model, V = cfg.vocab_size, F = cfg.d_ff;
  m.shared.partial.resize(scale_partial_size((int)N, (int)std::max(C, F)));
  m.blocks.reserve(cfg.n_layer);
  for (const auto& b : m.structure.blocks()) m.blocks.emplace_back(b, cfg_, max_B, &m.shared);
  m.final_in = GInputSide(m.structure.final_in(), (int)C, N, &m.shared);
  std::vector<float> cos_h, sin_h;
  rope_tables(cos_h, sin_h, cfg.context, cfg.head_size(), cfg.rope_base);
  m.cos.upload(cos_h), m.sin.upload(sin_h);
  for (int l = 0; l <= cfg.n_layer; l++) m.resid.emplace_back(N * C);
  m.nf.resize(N * C), m.rstdf.resize(N), m.logits.resize(N * V), m.losses.resize(N);
  m.dres.resize(N * C), m.dlogits.resize(N * V);
  m.tokens.resize(N), m.targets.resize(N), m.positions.resize(N), m.offsets.resize(V + 1);
  m.scratch.dn.resize(N * C), m.scratch.dy.resize(N * C), m.scratch.dh.resize(N * F);
  m.scratch.dpost.resize(N * C);
  m.scratch.attn.resize(attention_scratch_size(max_B, cfg.context, cfg.n_head, cfg.head_size()));
  params.resize(layout().total()), grads.resize(layout().total());
  params.zero(), grads.zero();
}

GpuTransformer::~GpuTransformer() = default;

const ParamLayout& GpuTransformer::layout() const { return impl_->structure.layout(); }

void GpuTransformer::set_params(const std::vector<float>& host) {
  require(host.size() == layout().total(), "GPU model: {} parameters given, the layout has {}",
          host.size(), layout().total());
  params.upload(host.data(), host.size());
}
std::vector<float> GpuTransformer::get_params() const { return params.to_host(); }
std::vector<float> GpuTransformer::get_grads() const { return grads.to_host(); }
const float* GpuTransformer::logits() const { return impl_->logits.data(); }
double GpuTransformer::flops_per_token(int Tn) const { return impl_->structure.flops_per_token(Tn); }
void GpuTransformer::zero_grad() { grads.zero(); }

float GpuTransformer::forward(const int32_t* tokens, const int32_t* targets, int B, int Tn) {
  Impl& m = *impl_;
  require(B >= 1 && B <= max_B_, "batch {} outside [1, {}]", B, max_B_);
  require(Tn >= 1 && Tn <= cfg_.context, "sequence length {} outside [1, {}]", Tn, cfg_.context);
  const int N = B * Tn, C = cfg_.d_model, V = cfg_.vocab_size;
  for (int n = 0; n < N; n++)
    require(tokens[n] >= 0 && tokens[n] < V, "token {} at position {} is not in [0, {})", tokens[n], n, V);
  m.B = B, m.Tn = Tn;
  m.host_tokens.assign(tokens, tokens + N);
  m.tokens.upload(tokens, N);
  const float* P = params.data();
  embedding_forward(m.resid[0].data(), m.tokens.data(), P + m.structure.wte_offset(), N, C);
  for (int l = 0; l < cfg_.n_layer; l++)
    m.blocks[l].forward(P, m.resid[l].data(), m.resid[l + 1].data(), B, Tn, m.cos.data(), m.sin.data(),
                        m.scratch);
  rmsnorm_forward(m.nf.data(), m.rstdf.data(), m.resid.back().data(), N, C, float(cfg_.norm_eps));
  m.final_in.forward(P, m.nf.data(), N);
  linear_forward(m.logits.data(), m.final_in.input(0), P + m.structure.head_offset(), N, C, V);
  m.has_targets = targets != nullptr;
  if (!targets) return 0.f;
  m.targets.upload(targets, N);
  crossentropy_forward(m.losses.data(), m.logits.data(), m.targets.data(), N, V);
  std::vector<float> losses(N);
  m.losses.download(losses.data(), N);
  float total = 0.f;  // the reference's order and precision (ref/ops/crossentropy.h)
  for (float l : losses) total += l;
  return total / N;
}

void GpuTransformer::backward(float dloss) {
  Impl& m = *impl_;
  require(m.has_targets, "backward() needs a forward() with targets (there is no loss to differentiate)");
  const int B = m.B, Tn = m.Tn, N = B * Tn, C = cfg_.d_model, V = cfg_.vocab_size;
  const float* P = params.data();
  float* G = grads.data();
  zero(m.dlogits.data(), (size_t)N * V);
  crossentropy_backward(m.dlogits.data(), m.logits.data(), m.targets.data(), N, V, dloss);
  m.final_in.zero_grad(N);
  linear_backward(m.final_in.dinput(0), G + m.structure.head_offset(), m.dlogits.data(),
                  m.final_in.input(0), P + m.structure.head_offset(), N, C, V);
  float* dnf = m.scratch.dn.data();
  zero(dnf, (size_t)N * C);
  m.final_in.backward(P, G, dnf, N);
  zero(m.dres.data(), (size_t)N * C);
  rmsnorm_backward(m.dres.data(), dnf, m.nf.data(), m.rstdf.data(), N, C);
  for (int l = cfg_.n_layer - 1; l >= 0; l--)
    m.blocks[l].backward(P, G, m.dres.data(), m.scratch, B, Tn, m.cos.data(), m.sin.data());
  // Embedding: positions grouped by token (counting sort on the host: a fixed order, no atomics).
  std::vector<int32_t> offsets(V + 1, 0), positions(N);
  for (int n = 0; n < N; n++) offsets[m.host_tokens[n] + 1]++;
  for (int v = 0; v < V; v++) offsets[v + 1] += offsets[v];
  std::vector<int32_t> fill(offsets.begin(), offsets.end() - 1);
  for (int n = 0; n < N; n++) positions[fill[m.host_tokens[n]]++] = n;
  m.positions.upload(positions.data(), N);
  m.offsets.upload(offsets.data(), V + 1);
  embedding_backward(G + m.structure.wte_offset(), m.dres.data(), m.positions.data(), m.offsets.data(), V, C);
}

}  // namespace scalevec::gpu
