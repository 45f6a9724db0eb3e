#include "model_gradcheck.h"

#include "../rng.h"

namespace scalevec {

// Entries to check in one tensor: all when small, else half uniformly at random and half among
// entries whose analytic gradient is nonzero (an embedding row is zero unless its token occurs).
static std::vector<size_t> pick_entries(const double* g, size_t numel, size_t k, Rng& rng) {
  if (numel <= k) return all_indices(numel);
  std::vector<size_t> nonzero, out;
  for (size_t i = 0; i < numel; i++)
    if (g[i] != 0) nonzero.push_back(i);
  for (size_t j = 0; j < k; j++) {
    const bool from_nonzero = (j % 2 == 1) && !nonzero.empty();
    out.push_back(from_nonzero ? nonzero[rng.below(nonzero.size())] : rng.below(numel));
  }
  return out;
}

std::vector<TensorCheck> gradcheck_model(Transformer<double>& model, const ModelCheckOptions& o,
                                         ModelCheckBatch* used) {
  Rng rng(o.seed);
  model.init(derive_seed(o.seed, 0));
  if (o.randomize_scales)
    for (const auto& p : model.layout().params())
      if (p.role == Role::Scale)
        for (size_t i = 0; i < p.numel; i++) model.params[p.offset + i] = 0.5 + rng.uniform();
  const int V = model.config().vocab_size, N = o.batch * o.seq;
  std::vector<int32_t> tokens(N), targets(N);
  for (int n = 0; n < N; n++) tokens[n] = int32_t(rng.below(V)), targets[n] = int32_t(rng.below(V));

  auto loss = [&] { return model.forward(tokens.data(), targets.data(), o.batch, o.seq); };
  loss();
  model.zero_grad();
  model.backward();
  const std::vector<double> analytic = model.grads;
  if (used) *used = {tokens, targets, model.params, analytic};

  std::vector<TensorCheck> out;
  for (const auto& p : model.layout().params()) {
    auto idx = pick_entries(analytic.data() + p.offset, p.numel, o.samples, rng);
    TensorCheck t{p.name, p.numel, {}};
    t.stats = check_entries(model.params.data() + p.offset, analytic.data() + p.offset, idx, loss,
                            o.h, o.rtol, o.atol);
    out.push_back(t);
  }
  return out;
}

}  // namespace scalevec
