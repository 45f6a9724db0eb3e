#include "sample.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "../common.h"

namespace scalevec {

template <class T>
std::string generate(Transformer<T>& model, const std::string& prompt, const SampleOptions& o,
                     Rng& rng) {
  require(o.temperature > 0, "temperature = {} must be > 0", o.temperature);
  require(o.length >= 0, "length = {} must be >= 0", o.length);
  const int V = model.config().vocab_size, ctx = model.config().context;
  std::vector<int32_t> tokens;
  for (unsigned char c : prompt.empty() ? std::string("\n") : prompt) tokens.push_back(c);
  std::string out;
  std::vector<double> p(V);
  std::vector<int> order(V);
  for (int i = 0; i < o.length; i++) {
    const int Tn = std::min<int>(ctx, (int)tokens.size());
    model.forward(tokens.data() + tokens.size() - Tn, nullptr, 1, Tn);
    const T* logits = model.logits() + (size_t)(Tn - 1) * V;  // the last position predicts next
    double mx = -1e300;
    for (int v = 0; v < V; v++) mx = std::max(mx, double(logits[v]) / o.temperature);
    for (int v = 0; v < V; v++) p[v] = std::exp(double(logits[v]) / o.temperature - mx);
    if (o.top_k > 0 && o.top_k < V) {  // zero all but the k largest
      std::iota(order.begin(), order.end(), 0);
      std::nth_element(order.begin(), order.begin() + o.top_k, order.end(),
                       [&](int a, int b) { return p[a] > p[b]; });
      for (int j = o.top_k; j < V; j++) p[order[j]] = 0;
    }
    double r = rng.uniform() * std::accumulate(p.begin(), p.end(), 0.0);
    int next = 0;
    for (int v = 0; v < V; v++) {
      if (p[v] > 0) next = v;  // fallback for round-off at the end: the last possible byte
      if (r < p[v]) {
        next = v;
        break;
      }
      r -= p[v];
    }
    tokens.push_back(next);
    out.push_back(char(next));
  }
  return out;
}

template std::string generate<float>(Transformer<float>&, const std::string&, const SampleOptions&,
                                     Rng&);
template std::string generate<double>(Transformer<double>&, const std::string&,
                                      const SampleOptions&, Rng&);

}  // namespace scalevec
