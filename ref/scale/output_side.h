// Output-side placements of scale vectors on one linear branch z = W_f a (docs/SCALE_VECTORS.md §2,
// §4):
//
//   identity       y = z
//   DP             y = u ⊙ z                 u Input-type: u ⊙ (W a) = (diag(u) W) a folds into
//                                            the rows of W_f                              [paper]
//   normalized     y = s ⊙ N_h(·)            s Output-type: it restores the magnitude that N_h
//                                            has just removed; no linear map can absorb it
// where N_h is RMSNorm over each of h heads (h = NH for q and k, 1 otherwise). The normalized
// stage is DNP's u (DNP: y = u ⊙ N_h(W a), [paper]; per-head form: [choice]), a QK-Norm's γ
// (architecture switch, docs/SCALE_VECTORS.md §2), or a post-sublayer norm's γ (Gemma "sandwich").
// The two stages compose as y = s ⊙ N_h(u ⊙ z) when a DP branch also has a QK-Norm.
//
// z and y are (N, d) contiguous; the module keeps what its backward needs.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "../ops/backend.h"
#include "fold.h"
#include "vector.h"

namespace scalevec {

template <class T, class Ops = CpuOps<T>>
class OutputSide {
 public:
  OutputSide() = default;  // identity

  struct Spec {
    ScaleParam param = ScaleParam::Gamma;
    bool dp = false;          // stage 1: y1 = u ⊙ z, parameters `<branch>_dp.u`
    std::string norm;         // stage 2 prefix ("" = none), e.g. "layers.0.attn.q_dnp"
    std::string norm_symbol;  // its parameter name: "u" (DNP) or "gamma" (QK-Norm, post-norm)
    int heads = 1;            // stage 2 normalizes each of `heads` groups of d / heads channels
    double eps = 1e-5;
    // A normalization further downstream removes any global factor of this branch's output (a
    // post-norm after v or up: the sublayer output is linear in them). Then the magnitude β of
    // a magdir scale here gets no gradient; with skip_cancelled such a scale uses plain γ.
    bool downstream_norm = false;
    bool skip_cancelled = false;
  };

  // branch: e.g. "layers.0.attn.q"; w: the branch's linear map (d x in) and its name, the map
  // the scales fold into (stage 1) or cannot fold into (stage 2).
  OutputSide(ParamLayout& layout, const std::string& branch, int d, const Spec& s, FoldTarget w,
             const std::string& w_name, size_t max_rows)
      : d_(d), heads_(s.heads), eps_(T(s.eps)) {
    rows_ = w;
    rows_.columns = false;
    auto param_for = [&](bool cancelled) {
      return s.skip_cancelled && cancelled && has_magnitude(s.param) ? ScaleParam::Gamma : s.param;
    };
    if (s.dp) {  // Input-type. A normalization after it (stage 2 or downstream) cancels its
                 // magnitude.
      dp_name_ = branch + "_dp";
      const bool cancelled = !s.norm.empty() || s.downstream_norm;
      dp_ = ScaleVector<T, Ops>(layout, dp_name_, "u", d, param_for(cancelled),
                                {ScaleType::Input, "rows of " + w_name, cancelled});
    }
    if (!s.norm.empty()) {
      norm_name_ = s.norm;
      norm_ = ScaleVector<T, Ops>(
          layout, s.norm, s.norm_symbol, d, param_for(s.downstream_norm),
          {ScaleType::Output, "none: restores the magnitude the normalization before it removes",
           s.downstream_norm});
      n_.resize(max_rows * d), rstd_.resize(max_rows * heads_), dn_.resize(max_rows * d);
      has_norm_ = true;
    }
    if (s.dp && has_norm_) y1_.resize(max_rows * d), dy1_.resize(max_rows * d);
  }

  bool identity() const { return dp_.identity() && !has_norm_; }
  // Structure, for `scalevec diagram`.
  const ScaleVector<T, Ops>& dp() const { return dp_; }
  const ScaleVector<T, Ops>& norm_scale() const { return norm_; }
  bool has_norm() const { return has_norm_; }
  int heads() const { return heads_; }
  T eps() const { return eps_; }

  // clang-format off: the call list's aligned comments are its reading
  // [snippet:output_side_pass]
  // y = s ⊙ N_h(u ⊙ z) with whichever stages exist. z, y: (N, d); y must not alias z.
  void forward(const T* P, const T* z, T* y, int N) {
    z_ = z;
    const T* in = z;
    if (!dp_.identity()) {
      T* out = has_norm_ ? y1_.data() : y;
      Ops::scale_forward(out, z, dp_.forward(P), N, d_);  // y1 = u ⊙ z
      in = out;
    }
    if (!has_norm_) {
      if (in != y) Ops::copy(y, in, (size_t)N * d_);  // no stage at all: identity
      return;
    }
    const int hs = d_ / heads_;  // N_h: rows of hs channels
    Ops::rmsnorm_forward(n_.data(), rstd_.data(), in, N * heads_, hs, eps_);
    if (norm_.identity())
      Ops::copy(y, n_.data(), (size_t)N * d_);
    else
      Ops::scale_forward(y, n_.data(), norm_.forward(P), N, d_);  // y = s ⊙ N_h(y1)
  }

  // dz += d(output)/dz applied to dy; scale gradients go to G.
  void backward(const T* P, T* G, const T* dy, T* dz, int N) {
    const T* d_in = dy;
    if (has_norm_) {
      const size_t n = (size_t)N * d_;
      Ops::zero(dn_.data(), n);
      if (norm_.identity())
        Ops::copy(dn_.data(), dy, n);
      else
        Ops::scale_backward(dn_.data(), norm_.grad(), dy, n_.data(), norm_.value(), N, d_);
      norm_.backward(P, G);
      const int hs = d_ / heads_;
      T* target = dp_.identity() ? dz : dy1_.data();  // d(input of N_h)
      if (!dp_.identity()) Ops::zero(dy1_.data(), n);
      Ops::rmsnorm_backward(target, dn_.data(), n_.data(), rstd_.data(), N * heads_, hs);
      if (dp_.identity()) return;
      d_in = dy1_.data();
    }
    if (!dp_.identity()) {  // y1 = u ⊙ z
      Ops::scale_backward(dz, dp_.grad(), d_in, z_, dp_.value(), N, d_);
      dp_.backward(P, G);
    } else if (!has_norm_) {
      Ops::accumulate(dz, dy, (size_t)N * d_);
    }
  }
  // [end]
  // clang-format on

  // The scale sites of this branch, for folding and inspection.
  void sites(std::vector<ScaleSite<T>>& out) {
    if (!dp_.identity()) out.push_back({dp_name_, ScaleType::Input, &dp_, {rows_}});
    if (has_norm_ && !norm_.identity())
      out.push_back({norm_name_, ScaleType::Output, &norm_, {rows_}});
  }

 private:
  int d_ = 0, heads_ = 1;
  T eps_ = T(1e-5);
  FoldTarget rows_;  // the rows of the branch's linear map
  bool has_norm_ = false;
  std::string dp_name_, norm_name_;
  ScaleVector<T, Ops> dp_, norm_;  // stage 1 u (DP), stage 2 scale (DNP u / QK-Norm γ / post γ)
  const T* z_ = nullptr;           // (N, d) raw branch output of the last forward (the
                                   // caller keeps it alive until backward)
  typename Ops::Array y1_, dy1_;   // (N, d) stage-1 output and its gradient (both stages)
  typename Ops::Array n_, rstd_, dn_;  // (N, d), (N*heads,), (N, d): N_h output, its 1/rms, grad
};

}  // namespace scalevec
