// The whole model: byte embedding -> L Pre-Norm blocks -> final norm -> head -> cross-entropy.
//     logits = W_head (γ_final ⊙ N(x_L)),   loss = mean_n CE(logits_n, target_n)
// Parameters and gradients live in two contiguous buffers described by one ParamLayout; the
// model keeps every activation its backward needs for batches of up to max_B sequences
// (max_B = 0 builds parameters only: for inspecting, loading and saving).
//
// Ops is the backend (ref/ops/backend.h): the reference CpuOps<T> by default; the GPU path is
// Transformer<float, gpu::CudaOps> (gpu/model.h), the same code on device arrays.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include <algorithm>
#include <string>

#include "../ops/backend.h"
#include "../rng.h"
#include "block.h"
#include "config.h"
#include "../params.h"
#include "trace.h"

namespace scalevec {

template <class T, class Ops = CpuOps<T>>
class Transformer {
 public:
  Transformer(const ModelConfig& cfg, int max_B);
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  int max_batch() const { return max_B_; }

  typename Ops::Array params;  // (layout().total(),)
  typename Ops::Array grads;   // same layout

  // Random init from the layout's tags: Normal(0, init_std) for matrices, constants for scales.
  // (Host backends; the GPU path copies parameters from a host model.)
  void init(uint64_t seed);

  // tokens, targets: (B, T), B <= max_batch, T <= context. Returns the mean loss; with
  // targets == nullptr only the logits are computed (returns 0).
  T forward(const int32_t* tokens, const int32_t* targets, int B, int Tn);
  // Gradients of the last forward's mean loss (times dloss), accumulated into grads.
  void backward(T dloss = T(1));
  void zero_grad();

  const T* logits() const { return logits_.data(); }  // (B, T, V) of the last forward (Ops memory)
  // Training FLOPs per token (forward + backward): 6 per matrix weight + attention's 12·L·T·C.
  double flops_per_token(int Tn) const;

  // Every scale vector of the model with its type and fold targets (docs/SCALE_VECTORS.md §3).
  std::vector<ScaleSite<T>> scale_sites();

  // `scalevec trace`: the following forward and backward passes copy every named step into t,
  // in the order they compute them (ref/model/trace.h); nullptr (the default) records nothing.
  // Recording never changes what is computed. Host backends only.
  void set_trace(Trace<T>* t);

  // Structure, for `scalevec diagram`, the trace and the tests.
  size_t wte_offset() const { return wte_; }
  size_t head_offset() const { return head_; }
  const std::vector<Block<T, Ops>>& blocks() const { return blocks_; }
  const InputSideScale<T, Ops>& final_in() const { return final_in_; }

 private:
  ModelConfig cfg_;
  int max_B_;
  ParamLayout layout_;
  size_t wte_, head_;  // parameter offsets
  std::vector<Block<T, Ops>> blocks_;
  InputSideScale<T, Ops> final_in_;
  RopeTables<T, Ops> rope_;
  using Array = typename Ops::Array;
  // Activations.
  std::vector<Array> resid_;               // L+1 buffers (N, C): input of each block, final
  Array nf_, rstdf_;                       // (N, C), (N,): N(x_L)
  Array logits_, losses_;                  // (N, V), (N,)
  std::vector<int32_t> tokens_, targets_;  // (N,) host copies of the last batch
  int B_ = 0, T_ = 0;
  bool has_targets_ = false;  // the last forward computed a loss
  // Backward scratch.
  Array dres_, dlogits_;  // (N, C), (N, V)
  BlockScratch<T, Ops> scratch_;
  // `scalevec trace` (no-ops without a recorder): one step or its gradient; d(x_l) of the
  // residual stream (x_0 = "embed", x_{l+1} = "layers.<l>.out") followed by the gradients of the
  // parameters of the part just differentiated (block l, or for l = L the final norm and head);
  // one parameter's gradient.
  Trace<T>* trace_ = nullptr;
  void trace(std::string_view name, const T* x, std::initializer_list<int64_t> shape) const;
  void trace_grad(std::string_view name, const T* x, std::initializer_list<int64_t> shape) const;
  void trace_residual_grad(int l) const;
  void trace_param_grad(const char* name) const;
};

// ---------------------------------------------------------------------------------------------

template <class T, class Ops>
Transformer<T, Ops>::Transformer(const ModelConfig& cfg, int max_B) : cfg_(cfg), max_B_(max_B) {
  cfg_.validate();
  require(max_B >= 0, "batch size {} must be >= 0", max_B);
  const size_t N = (size_t)max_B * cfg.context, C = cfg.d_model, V = cfg.vocab_size;
  ParamInfo e;
  e.name = "tok_emb", e.shape = {cfg.vocab_size, cfg.d_model}, e.role = Role::Embedding;
  e.init_std = 0.02;
  wte_ = layout_.add(e);
  blocks_.reserve(cfg.n_layer);
  for (int l = 0; l < cfg.n_layer; l++) blocks_.emplace_back(layout_, cfg, l, max_B);
  // The final norm keeps one γ [paper: HG is for the branches of a block]; it feeds only the head.
  final_in_ = InputSideScale<T, Ops>(layout_, "final_norm", cfg.d_model, cfg.sc.param,
                                     {{"head", "head", false}}, false, false, N);
  ParamInfo h;
  h.name = "head", h.shape = {cfg.vocab_size, cfg.d_model}, h.role = Role::Head, h.init_std = 0.02;
  head_ = layout_.add(h);
  final_in_.set_targets({{head_, cfg.vocab_size, cfg.d_model, true}});

  params = Array(layout_.total()), grads = Array(layout_.total());
  std::vector<T> cos, sin;
  rope_tables(cos, sin, cfg.context, cfg.head_size(), cfg.rope_base);
  rope_.cos = Ops::from_host(cos), rope_.sin = Ops::from_host(sin);
  for (int l = 0; l <= cfg.n_layer; l++) resid_.emplace_back(N * C);
  nf_.resize(N * C), rstdf_.resize(N), logits_.resize(N * V), losses_.resize(N);
  tokens_.resize(N), targets_.resize(N);
  dres_.resize(N * C), dlogits_.resize(N * V);
  scratch_.resize(cfg, max_B);
}

template <class T, class Ops>
void Transformer<T, Ops>::init(uint64_t seed) {
  static_assert(Ops::host_memory, "init() writes the parameters from the host");
  Rng rng(seed);
  for (const auto& p : layout_.params()) {
    T* w = params.data() + p.offset;
    if (p.role == Role::Scale)
      std::fill(w, w + p.numel, T(p.init_value));
    else
      for (size_t i = 0; i < p.numel; i++) w[i] = T(p.init_std * rng.normal());
  }
}

// clang-format off: the call list's aligned comments are its reading
// [snippet:model_forward]
template <class T, class Ops>
T Transformer<T, Ops>::forward(const int32_t* tokens, const int32_t* targets, int B, int Tn) {
  require(B >= 1 && B <= max_B_, "batch {} outside [1, {}]", B, max_B_);
  require(Tn >= 1 && Tn <= cfg_.context, "sequence length {} outside [1, {}]", Tn, cfg_.context);
  const int N = B * Tn, C = cfg_.d_model, V = cfg_.vocab_size;
  for (int n = 0; n < N; n++)
    require(tokens[n] >= 0 && tokens[n] < V, "token {} at position {} is not in [0, {})", tokens[n],
            n, V);
  B_ = B, T_ = Tn;
  for (int n = 0; n < N; n++) tokens_[n] = tokens[n];
  const T* P = params.data();
  Ops::embedding_forward(resid_[0].data(), tokens, P + wte_, N, C);  // x_0 = wte[tokens]
  trace("embed", resid_[0].data(), {B, Tn, C});
  for (int l = 0; l < cfg_.n_layer; l++)  // x_{l+1} = block_l(x_l)
    blocks_[l].forward(P, resid_[l].data(), resid_[l + 1].data(), B, Tn, rope_);
  Ops::rmsnorm_forward(nf_.data(), rstdf_.data(), resid_.back().data(), N, C, T(cfg_.norm_eps));
  trace("final_norm.n", nf_.data(), {B, Tn, C});
  final_in_.forward(P, nf_.data(), N);    // a = γ_final ⊙ N(x_L)
  if (!final_in_.groups()[0].identity())  // (without γ: a = n)
    trace("final_norm.a", final_in_.input(0), {B, Tn, C});
  Ops::linear_forward(logits_.data(), final_in_.input(0), P + head_, N, C, V);  // logits = W_head a
  trace("logits", logits_.data(), {B, Tn, V});
  has_targets_ = targets != nullptr;
  if (!targets) return T(0);
  for (int n = 0; n < N; n++) targets_[n] = targets[n];
  const T loss = Ops::crossentropy_forward(losses_.data(), logits_.data(), targets, N, V);
  trace("loss", &loss, {});
  return loss;
}
// [end]
// clang-format on

// clang-format off: the call list's aligned comments are its reading
// [snippet:model_backward]
template <class T, class Ops>
void Transformer<T, Ops>::backward(T dloss) {
  require(has_targets_,
          "backward() needs a forward() with targets (there is no loss to differentiate)");
  const int B = B_, Tn = T_, N = B * Tn, C = cfg_.d_model, V = cfg_.vocab_size;
  const T* P = params.data();
  T* G = grads.data();
  Ops::zero(dlogits_.data(), (size_t)N * V);
  Ops::crossentropy_backward(dlogits_.data(), logits_.data(), targets_.data(), N, V, dloss);
  trace_grad("logits", dlogits_.data(), {B, Tn, V});
  final_in_.zero_grad(N);
  Ops::linear_backward(final_in_.dinput(0), G + head_, dlogits_.data(), final_in_.input(0),
                       P + head_, N, C, V);
  if (!final_in_.groups()[0].identity())  // (without γ: a = n)
    trace_grad("final_norm.a", final_in_.dinput(0), {B, Tn, C});
  Array& dnf = scratch_.dn;
  Ops::zero(dnf.data(), (size_t)N * C);
  final_in_.backward(P, G, dnf.data(), N);  // dN(x_L), dγ_final
  trace_grad("final_norm.n", dnf.data(), {B, Tn, C});
  Ops::zero(dres_.data(), (size_t)N * C);
  Ops::rmsnorm_backward(dres_.data(), dnf.data(), nf_.data(), rstdf_.data(), N, C);  // d(x_L)
  trace_residual_grad(cfg_.n_layer);             // d(x_L), then d(final_norm), d(head)
  for (int l = cfg_.n_layer - 1; l >= 0; l--) {  // d(x_l) from d(x_{l+1})
    blocks_[l].backward(P, G, dres_.data(), scratch_, B, Tn, rope_);
    trace_residual_grad(l);  // d(x_l), then block l's parameters
  }
  Ops::embedding_backward(G + wte_, dres_.data(), tokens_.data(), N, V, C);  // d(wte)
  trace_param_grad("tok_emb");
}
// [end]
// clang-format on

template <class T, class Ops>
void Transformer<T, Ops>::zero_grad() {
  Ops::zero(grads.data(), grads.size());
}

template <class T, class Ops>
double Transformer<T, Ops>::flops_per_token(int Tn) const {
  double matrix = 0;
  for (const auto& p : layout_.params())
    if (p.role == Role::Matrix || p.role == Role::Head) matrix += double(p.numel);
  return 6.0 * matrix + 12.0 * cfg_.n_layer * Tn * cfg_.d_model;
}

template <class T, class Ops>
std::vector<ScaleSite<T>> Transformer<T, Ops>::scale_sites() {
  std::vector<ScaleSite<T>> out;
  for (auto& b : blocks_) b.sites(out);
  final_in_.sites(out);
  return out;
}

template <class T, class Ops>
void Transformer<T, Ops>::set_trace(Trace<T>* t) {
  static_assert(Ops::host_memory, "the trace reads every step's values from the host");
  trace_ = t;
  for (auto& b : blocks_) b.set_trace(t);
}

template <class T, class Ops>
void Transformer<T, Ops>::trace(std::string_view name, const T* x,
                                std::initializer_list<int64_t> shape) const {
  if (trace_) trace_->add(TracePass::Forward, std::string(name), x, shape);
}

template <class T, class Ops>
void Transformer<T, Ops>::trace_grad(std::string_view name, const T* x,
                                     std::initializer_list<int64_t> shape) const {
  if (trace_) trace_->add(TracePass::Backward, std::string(name), x, shape);
}

template <class T, class Ops>
void Transformer<T, Ops>::trace_residual_grad(int l) const {
  if (!trace_) return;
  const std::string x_l = l == 0 ? "embed" : fmt::format("layers.{}.out", l - 1);
  trace_->add(TracePass::Backward, x_l, dres_.data(), {B_, T_, cfg_.d_model});
  const std::string block = fmt::format("layers.{}.", l);
  for (const auto& p : layout_.params()) {
    const bool final_part = p.name == "head" || p.name.rfind("final_norm.", 0) == 0;
    const bool part = l == cfg_.n_layer ? final_part : p.name.rfind(block, 0) == 0;
    if (part) trace_param_grad(p.name.c_str());
  }
}

template <class T, class Ops>
void Transformer<T, Ops>::trace_param_grad(const char* name) const {
  if (!trace_) return;
  const ParamInfo& p = layout_.get(name);
  trace_->add(TracePass::Backward, p.name, grads.data() + p.offset,
              std::vector<int64_t>(p.shape.begin(), p.shape.end()));
}

// Compiled once, in transformer.cpp.
extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace scalevec
