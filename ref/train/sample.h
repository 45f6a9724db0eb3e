// Text generation from a trained model: feed the last `context` bytes, sample the next byte from
// softmax(logits / temperature) (optionally restricted to the top_k most likely), append, repeat.
#pragma once

#include <string>

#include "../model/transformer.h"
#include "../rng.h"

namespace scalevec {

struct SampleOptions {
  int length = 300;          // bytes to generate
  double temperature = 0.8;  // > 0
  int top_k = 0;             // 0 = no restriction
};

template <class T>
std::string generate(Transformer<T>& model, const std::string& prompt, const SampleOptions& o,
                     Rng& rng);

}  // namespace scalevec
