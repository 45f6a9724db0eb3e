// Optimizers: AdamW, Muon and SGD with momentum behind one small interface, with parameter groups
// and weight decay derived from the layout's tags (docs/SCALE_VECTORS.md §5: the paper trains with
// AdamW and with Muon [paper]; SGD with momentum serves the theory chapters).
//
//   adamw  every tensor: AdamW with decoupled weight decay (PyTorch's torch.optim.AdamW)
//   muon   hidden matrices (Role::Matrix): Newton–Schulz orthogonalised momentum; embeddings,
//          head and every vector (scale vectors): AdamW, exactly as the adamw optimizer would
//   sgd    every tensor: heavy-ball momentum with decoupled weight decay (momentum 0 = plain GD)
//
// Weight decay on scale vectors is a policy (docs/SCALE_VECTORS.md §3-4), applied from each scale's
// ScaleType tag, never from a list of tensor names:
//   none  no decay on any scale vector (the common practice: norm gains excluded)
//   all   decay on every scale vector
//   iwd   decay on Input-type scales only (the paper's rule)
// Matrices and the head always decay; embeddings decay when decay_embeddings is set. The same rule
// serves every optimizer; each applies decoupled decay p ← p·(1 − lr·wd) with its own lr.
//
// Learning rates: each optimizer holds its base learning rate(s) in its config; step() takes the
// schedule's multiplier lr_factor ∈ [0, 1] (schedule.h) and uses base · lr_factor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "../params.h"

namespace scalevec {

struct TrainConfig;

enum class WdPolicy { None, All, Iwd };
const char* wd_policy_name(WdPolicy p);
const std::vector<std::string>& wd_policy_list();  // every policy's name, in order

// The optimizers (TrainConfig::optimizer; see the classes below).
enum class OptimizerKind { AdamW, Muon, Sgd };
const char* optimizer_name(OptimizerKind k);          // "adamw", "muon", "sgd"
OptimizerKind parse_optimizer(const std::string& s);  // throws Error naming the known ones
const std::vector<std::string>& optimizer_list();     // every optimizer's name, in order
WdPolicy parse_wd_policy(const std::string& s);       // throws Error on unknown names

struct DecayRule {
  double weight_decay = 0.1;
  WdPolicy scale_policy = WdPolicy::None;
  bool decay_embeddings = false;
  // [snippet:decays]
  bool decays(const ParamInfo& p) const {
    switch (p.role) {
      case Role::Matrix:
      case Role::Head:
        return true;
      case Role::Embedding:
        return decay_embeddings;
      case Role::Scale:
        return scale_policy == WdPolicy::All ||
               (scale_policy == WdPolicy::Iwd && p.scale_type == ScaleType::Input);
    }
    return false;
  }
  // [end]
};

// The interface the trainer and the checkpoints see. `t` counts the steps taken (AdamW's bias
// correction uses it); state() names every buffer an exact resume needs, so that a checkpoint
// saves and restores any optimizer with one loop and can tell one optimizer's state from another's.
template <class T>
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual const char* name() const = 0;  // "adamw", "muon", "sgd" (as in TrainConfig::optimizer)
  // One update of params (layout order) from grads, with every base learning rate × lr_factor.
  virtual void step(T* params, const T* grads, double lr_factor) = 0;
  // Every state buffer by a stable name ("adam.m", "muon.momentum", ...), each of layout size.
  virtual std::vector<std::pair<std::string, std::vector<T>*>> state() = 0;

  int64_t t = 0;  // number of steps taken
};

// Which tensors an optimizer (part) acts on; empty = all of them.
using ParamFilter = std::function<bool(const ParamInfo&)>;

// Runs of adjacent tensors that an optimizer treats alike (same decay decision), so that its
// element-wise update is one parallel loop per run rather than one per tensor.
struct ParamGroup {
  size_t offset, numel;
  bool decay;
};
std::vector<ParamGroup> param_groups(const ParamLayout& layout, const DecayRule& rule,
                                     const ParamFilter& only = {});

// ---------------------------------------------------------------------------------------------
// AdamW.

struct AdamWConfig {
  // Base learning rate: step(p, g, f) uses lr·f. The default 1 makes f itself the learning rate,
  // which is how the tests and the formula below read.
  double lr = 1.0;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  DecayRule decay;
};

// State: first and second moments m, v (same layout as the parameters; entries of tensors outside
// the filter stay 0) and the step count t.
template <class T>
class AdamW final : public Optimizer<T> {
 public:
  // Acts on the tensors with only(p) true (all if only is empty); the others are left untouched.
  AdamW(const ParamLayout& layout, const AdamWConfig& cfg, const ParamFilter& only = {});
  // One update with learning rate lr = cfg.lr · lr_factor (PyTorch's torch.optim.AdamW formula):
  //     p ← p (1 - lr·wd)            (decoupled decay, only where decays(p))
  //     m ← β1 m + (1-β1) g,   v ← β2 v + (1-β2) g²
  //     p ← p - lr · (m / (1-β1ᵗ)) / (sqrt(v / (1-β2ᵗ)) + eps)
  void step(T* params, const T* grads, double lr_factor) override;
  const char* name() const override { return "adamw"; }
  std::vector<std::pair<std::string, std::vector<T>*>> state() override {
    return {{"adam.m", &m}, {"adam.v", &v}};
  }
  const AdamWConfig& config() const { return cfg_; }

  std::vector<T> m, v;

 private:
  AdamWConfig cfg_;
  std::vector<ParamGroup> groups_;
};

// ---------------------------------------------------------------------------------------------
// Muon (Keller Jordan, 2024). The paper trains with AdamW and with Muon [paper]; which Muon variant
// and hyperparameters it used is not known, so everything below is this project's [choice]: the
// widely used modded-nanogpt form with its defaults (μ = 0.95, Nesterov, 5 Newton–Schulz steps,
// lr 0.02). For each hidden matrix W (R × C, the layout's shape: rows = outputs, columns = inputs,
// like PyTorch's nn.Linear weight):
//     buf ← μ buf + g                           (momentum)
//     g'  ← g + μ buf                           (Nesterov; g' = buf without it)
//     O   ← NewtonSchulz5(g')                   (≈ U Vᵀ for g' = U Σ Vᵀ: all singular values ≈ 1)
//     W   ← W (1 − lr·wd) − lr · sqrt(max(1, R/C)) · O      lr = muon_lr · lr_factor
// The orthogonalised update moves every singular direction of W by about the same amount, however
// unequal the gradient's singular values are. O has min(R, C) singular values ≈ 1, so its entries
// have RMS ≈ 1/sqrt(max(R, C)); the factor sqrt(max(1, R/C)) makes the step's RMS per entry
// lr/sqrt(C) (C = fan-in) for tall and wide matrices alike. Weight decay on the matrices is
// decoupled and scaled by Muon's own lr [choice], so with the defaults it is ten times AdamW's per
// step (0.02 vs 2e-3 times wd). Every other tensor (embedding, head, scale vectors) gets AdamW with
// learning rate adamw.lr · lr_factor, bit for bit what the adamw optimizer does: the scale vectors,
// the paper's subject, are never orthogonalised (a vector has no singular directions to equalise).
// Cost: Newton–Schulz adds 5·(4m²n + 2m³) ≤ 30·m²n FLOPs per m × n matrix (m ≤ n) and step, at
// most a share 5m/(B·T) of the forward and backward passes' 6·B·T·m·n: small at the batches Muon
// was designed for, noticeable at this project's (tiny preset: m = 128, B·T = 2048, up to ~30%).
struct MuonConfig {
  double lr = 0.02;        // base learning rate of the hidden matrices
  double momentum = 0.95;  // μ
  bool nesterov = true;
  int ns_steps = 5;   // Newton–Schulz iterations
  AdamWConfig adamw;  // embeddings, head, vectors; adamw.decay also decides the matrices'
};

template <class T>
class Muon final : public Optimizer<T> {
 public:
  Muon(const ParamLayout& layout, const MuonConfig& cfg);
  void step(T* params, const T* grads, double lr_factor) override;
  const char* name() const override { return "muon"; }
  std::vector<std::pair<std::string, std::vector<T>*>> state() override {
    return {{"adam.m", &adam_.m}, {"adam.v", &adam_.v}, {"muon.momentum", &momentum}};
  }
  const MuonConfig& config() const { return cfg_; }

  std::vector<T> momentum;  // buf of every matrix entry (layout size; 0 outside the matrices)

 private:
  struct Matrix {
    size_t offset;
    int rows, cols;
    bool decay;
  };
  MuonConfig cfg_;
  AdamW<T> adam_;  // the non-matrix tensors
  std::vector<Matrix> matrices_;
  std::vector<T> update_, work_;  // scratch: g' and Newton–Schulz's buffers (not state)
};

// Newton–Schulz orthogonalisation, the quintic iteration of Muon [choice: Keller Jordan's
// coefficients]. Writes to out (R × C, row-major) an approximation of U Vᵀ where G = U Σ Vᵀ:
//     X ← G / (‖G‖_F + 1e-7)                     (all singular values ≤ 1)
//     transpose X if R > C                       (so that X Xᵀ is the smaller Gram matrix)
//     repeat `steps` times:  A = X Xᵀ,  B = b A + c A A,  X ← a X + B X
//     (a, b, c) = (3.4445, −4.7750, 2.0315)
// Each iteration maps every singular value σ of X to φ(σ) = aσ + bσ³ + cσ⁵ and keeps the singular
// vectors. The coefficients trade exactness for speed: φ'(0) = a is large, so small singular values
// grow fast, but φ has no fixed point at 1; after 5 steps the singular values land in roughly
// [0.7, 1.2] rather than at 1 (measured in tests/ref/test_optim.cpp). work must hold at least
// newton_schulz_work(R, C) values.
template <class T>
void newton_schulz(const T* G, T* out, int R, int C, int steps, T* work);
size_t newton_schulz_work(int R, int C);
inline constexpr double kNsA = 3.4445, kNsB = -4.7750, kNsC = 2.0315;

// ---------------------------------------------------------------------------------------------
// SGD with (heavy-ball) momentum and decoupled weight decay, lr = cfg.lr · lr_factor:
//     p ← p (1 − lr·wd)   where decays(p)
//     buf ← μ buf + g,    p ← p − lr · buf        (μ = 0: plain gradient descent, p ← p − lr·g)
// PyTorch's torch.optim.SGD(momentum=μ) without dampening or Nesterov, except that its
// weight_decay is an L2 term in the gradient; here decay is decoupled [choice], as in AdamW and
// Muon, so that the weight-decay policies mean the same thing under every optimizer.
struct SgdConfig {
  double lr = 1.0;        // base learning rate (default 1: lr_factor is the learning rate)
  double momentum = 0.9;  // μ
  DecayRule decay;
};

template <class T>
class Sgd final : public Optimizer<T> {
 public:
  Sgd(const ParamLayout& layout, const SgdConfig& cfg);
  void step(T* params, const T* grads, double lr_factor) override;
  const char* name() const override { return "sgd"; }
  std::vector<std::pair<std::string, std::vector<T>*>> state() override {
    return {{"sgd.momentum", &momentum}};
  }
  const SgdConfig& config() const { return cfg_; }

  std::vector<T> momentum;  // buf

 private:
  SgdConfig cfg_;
  std::vector<ParamGroup> groups_;
};

// ---------------------------------------------------------------------------------------------

// The optimizer TrainConfig::optimizer names, configured from the TrainConfig (base learning rates
// lr and muon_lr, betas, momenta, decay rule).
template <class T>
std::unique_ptr<Optimizer<T>> make_optimizer(const ParamLayout& layout, const TrainConfig& cfg);

// Global L2 norm of the gradient (summed in double, fixed order); if it exceeds max_norm > 0, the
// gradient is scaled down to max_norm. Returns the norm before clipping.
template <class T>
double clip_grad_norm(T* grads, size_t n, double max_norm);

extern template class AdamW<float>;
extern template class AdamW<double>;
extern template class Muon<float>;
extern template class Muon<double>;
extern template class Sgd<float>;
extern template class Sgd<double>;

}  // namespace scalevec
