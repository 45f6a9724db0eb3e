// The whole model: byte embedding -> L Pre-Norm blocks -> final norm -> head -> cross-entropy.
//     logits = W_head (γ_final ⊙ N(x_L)),   loss = mean_n CE(logits_n, target_n)
// Parameters and gradients live in two contiguous buffers described by one ParamLayout; the
// model keeps every activation its backward needs for batches of up to max_B sequences
// (max_B = 0 builds parameters only: for inspecting, loading and saving).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "../ops/crossentropy.h"
#include "../ops/embedding.h"
#include "block.h"
#include "config.h"
#include "../params.h"
#include "trace.h"

namespace scalevec {

template <class T>
class Transformer {
 public:
  Transformer(const ModelConfig& cfg, int max_B);
  Transformer(const Transformer&) = delete;
  Transformer& operator=(const Transformer&) = delete;

  const ModelConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  int max_batch() const { return max_B_; }

  std::vector<T> params;  // (layout().total(),)
  std::vector<T> grads;   // same layout

  // Random init from the layout's tags: Normal(0, init_std) for matrices, constants for scales.
  void init(uint64_t seed);

  // tokens, targets: (B, T), B <= max_batch, T <= context. Returns the mean loss; with
  // targets == nullptr only the logits are computed (returns 0).
  T forward(const int32_t* tokens, const int32_t* targets, int B, int Tn);
  // Gradients of the last forward's mean loss (times dloss), accumulated into grads.
  void backward(T dloss = T(1));
  void zero_grad();

  const T* logits() const { return logits_.data(); }  // (B, T, V) of the last forward
  // Training FLOPs per token (forward + backward): 6 per matrix weight + attention's 12·L·T·C.
  double flops_per_token(int Tn) const;

  // Every scale vector of the model with its type and fold targets (docs/SCALE_VECTORS.md §3).
  std::vector<ScaleSite<T>> scale_sites();

  // `scalevec trace`: the following forward and backward passes copy every named step into t,
  // in the order they compute them (ref/model/trace.h); nullptr (the default) records nothing.
  // Recording never changes what is computed.
  void set_trace(Trace<T>* t);

  // Structure, for the CUDA mirror (gpu/model.cpp builds the same model from these).
  size_t wte_offset() const { return wte_; }
  size_t head_offset() const { return head_; }
  const std::vector<Block<T>>& blocks() const { return blocks_; }
  const InputSideScale<T>& final_in() const { return final_in_; }

 private:
  ModelConfig cfg_;
  int max_B_;
  ParamLayout layout_;
  size_t wte_, head_;                       // parameter offsets
  std::vector<Block<T>> blocks_;
  InputSideScale<T> final_in_;
  RopeTables<T> rope_;
  // Activations.
  std::vector<std::vector<T>> resid_;       // L+1 buffers (N, C): input of each block, final
  std::vector<T> nf_, rstdf_;               // (N, C), (N,): N(x_L)
  std::vector<T> logits_, losses_;          // (N, V), (N,)
  std::vector<int32_t> tokens_, targets_;   // (N,) copies of the last batch
  int B_ = 0, T_ = 0;
  bool has_targets_ = false;                // the last forward computed a loss
  // Backward scratch.
  std::vector<T> dres_, dlogits_;           // (N, C), (N, V)
  BlockScratch<T> scratch_;
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

extern template class Transformer<float>;
extern template class Transformer<double>;

}  // namespace scalevec
