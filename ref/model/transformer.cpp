#include "transformer.h"

#include <algorithm>
#include <cstring>

#include "../common.h"
#include "../rng.h"

namespace scalevec {

template <class T>
Transformer<T>::Transformer(const ModelConfig& cfg, int max_B) : cfg_(cfg), max_B_(max_B) {
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
  final_in_ = InputSideScale<T>(layout_, "final_norm", cfg.d_model, cfg.sc.param,
                                {{"head", "head", false}}, false, false, N);
  ParamInfo h;
  h.name = "head", h.shape = {cfg.vocab_size, cfg.d_model}, h.role = Role::Head, h.init_std = 0.02;
  head_ = layout_.add(h);
  final_in_.set_targets({{head_, cfg.vocab_size, cfg.d_model, true}});

  params.assign(layout_.total(), T(0));
  grads.assign(layout_.total(), T(0));
  rope_tables(rope_.cos, rope_.sin, cfg.context, cfg.head_size(), cfg.rope_base);
  resid_.assign(cfg.n_layer + 1, std::vector<T>(N * C));
  nf_.resize(N * C), rstdf_.resize(N), logits_.resize(N * V), losses_.resize(N);
  tokens_.resize(N), targets_.resize(N);
  dres_.resize(N * C), dlogits_.resize(N * V);
  scratch_.resize(cfg, max_B);
}

template <class T>
void Transformer<T>::init(uint64_t seed) {
  Rng rng(seed);
  for (const auto& p : layout_.params()) {
    T* w = params.data() + p.offset;
    if (p.role == Role::Scale)
      std::fill(w, w + p.numel, T(p.init_value));
    else
      for (size_t i = 0; i < p.numel; i++) w[i] = T(p.init_std * rng.normal());
  }
}

// [snippet:model_forward]
template <class T>
T Transformer<T>::forward(const int32_t* tokens, const int32_t* targets, int B, int Tn) {
  require(B >= 1 && B <= max_B_, "batch {} outside [1, {}]", B, max_B_);
  require(Tn >= 1 && Tn <= cfg_.context, "sequence length {} outside [1, {}]", Tn, cfg_.context);
  const int N = B * Tn, C = cfg_.d_model, V = cfg_.vocab_size;
  for (int n = 0; n < N; n++)
    require(tokens[n] >= 0 && tokens[n] < V, "token {} at position {} is not in [0, {})",
            tokens[n], n, V);
  B_ = B, T_ = Tn;
  std::copy(tokens, tokens + N, tokens_.begin());
  const T* P = params.data();
  embedding_forward(resid_[0].data(), tokens, P + wte_, N, C);          // x_0 = wte[tokens]
  trace("embed", resid_[0].data(), {B, Tn, C});
  for (int l = 0; l < cfg_.n_layer; l++)                                  // x_{l+1} = block_l(x_l)
    blocks_[l].forward(P, resid_[l].data(), resid_[l + 1].data(), B, Tn, rope_);
  rmsnorm_forward(nf_.data(), rstdf_.data(), resid_.back().data(), N, C, C, T(cfg_.norm_eps));
  trace("final_norm.n", nf_.data(), {B, Tn, C});
  final_in_.forward(P, nf_.data(), N);                                    // a = γ_final ⊙ N(x_L)
  if (!final_in_.groups()[0].identity())                                  // (without γ: a = n)
    trace("final_norm.a", final_in_.input(0), {B, Tn, C});
  linear_forward(logits_.data(), final_in_.input(0), P + head_, N, C, V, V);  // logits = W_head a
  trace("logits", logits_.data(), {B, Tn, V});
  has_targets_ = targets != nullptr;
  if (!targets) return T(0);
  std::copy(targets, targets + N, targets_.begin());
  const T loss = crossentropy_forward(losses_.data(), logits_.data(), targets, N, V);
  trace("loss", &loss, {});
  return loss;
}
// [end]

// [snippet:model_backward]
template <class T>
void Transformer<T>::backward(T dloss) {
  require(has_targets_, "backward() needs a forward() with targets (there is no loss to differentiate)");
  const int B = B_, Tn = T_, N = B * Tn, C = cfg_.d_model, V = cfg_.vocab_size;
  const T* P = params.data();
  T* G = grads.data();
  std::fill(dlogits_.begin(), dlogits_.begin() + (size_t)N * V, T(0));
  crossentropy_backward(dlogits_.data(), logits_.data(), targets_.data(), N, V, dloss);
  trace_grad("logits", dlogits_.data(), {B, Tn, V});
  final_in_.zero_grad(N);
  linear_backward(final_in_.dinput(0), G + head_, dlogits_.data(), final_in_.input(0), P + head_,
                  N, C, V, V);
  if (!final_in_.groups()[0].identity())                                  // (without γ: a = n)
    trace_grad("final_norm.a", final_in_.dinput(0), {B, Tn, C});
  std::vector<T>& dnf = scratch_.dn;
  std::fill(dnf.begin(), dnf.begin() + (size_t)N * C, T(0));
  final_in_.backward(P, G, dnf.data(), N);                                   // dN(x_L), dγ_final
  trace_grad("final_norm.n", dnf.data(), {B, Tn, C});
  std::fill(dres_.begin(), dres_.begin() + (size_t)N * C, T(0));
  rmsnorm_backward(dres_.data(), dnf.data(), nf_.data(), rstdf_.data(), N, C, C);  // d(x_L)
  trace_residual_grad(cfg_.n_layer);                      // d(x_L), then d(final_norm), d(head)
  for (int l = cfg_.n_layer - 1; l >= 0; l--) {                           // d(x_l) from d(x_{l+1})
    blocks_[l].backward(P, G, dres_.data(), scratch_, B, Tn, rope_);
    trace_residual_grad(l);                               // d(x_l), then block l's parameters
  }
  embedding_backward(G + wte_, dres_.data(), tokens_.data(), N, C);       // d(wte)
  trace_param_grad("tok_emb");
}
// [end]

template <class T>
void Transformer<T>::zero_grad() {
  std::fill(grads.begin(), grads.end(), T(0));
}

template <class T>
double Transformer<T>::flops_per_token(int Tn) const {
  double matrix = 0;
  for (const auto& p : layout_.params())
    if (p.role == Role::Matrix || p.role == Role::Head) matrix += double(p.numel);
  return 6.0 * matrix + 12.0 * cfg_.n_layer * Tn * cfg_.d_model;
}

template <class T>
std::vector<ScaleSite<T>> Transformer<T>::scale_sites() {
  std::vector<ScaleSite<T>> out;
  for (auto& b : blocks_) b.sites(out);
  final_in_.sites(out);
  return out;
}

template <class T>
void Transformer<T>::set_trace(Trace<T>* t) {
  trace_ = t;
  for (auto& b : blocks_) b.set_trace(t);
}

template <class T>
void Transformer<T>::trace(std::string_view name, const T* x,
                           std::initializer_list<int64_t> shape) const {
  if (trace_) trace_->add(TracePass::Forward, std::string(name), x, shape);
}

template <class T>
void Transformer<T>::trace_grad(std::string_view name, const T* x,
                                std::initializer_list<int64_t> shape) const {
  if (trace_) trace_->add(TracePass::Backward, std::string(name), x, shape);
}

template <class T>
void Transformer<T>::trace_residual_grad(int l) const {
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

template <class T>
void Transformer<T>::trace_param_grad(const char* name) const {
  if (!trace_) return;
  const ParamInfo& p = layout_.get(name);
  trace_->add(TracePass::Backward, p.name, grads.data() + p.offset,
              std::vector<int64_t>(p.shape.begin(), p.shape.end()));
}

template class Transformer<float>;
template class Transformer<double>;

}  // namespace scalevec
