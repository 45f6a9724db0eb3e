// A recorder for one forward and backward pass (`scalevec trace`, tools/cmd_trace.cpp): with one
// set (Transformer::set_trace), the model copies every named step of its call list into it, in
// the order it computes them, and computes exactly what it computes without one.
//
// Names are those of the forward steps, with the layer prefix inside a block, e.g.
// "layers.0.attn.q.z"; a gradient is "grad/" + the name of the activation or parameter it
// belongs to, e.g. "grad/layers.0.attn.q.z", "grad/layers.0.attn.wq". The gradient of an
// activation used in several places is the total: the C++ buffer after every use has added into
// it. tools/torch_ref.py's `trace` records the same names in PyTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "../common.h"

namespace scalevec {

enum class TracePass { Forward, Backward };

template <class T>
struct Trace {
  struct Entry {
    std::string name;            // e.g. "layers.0.attn.q.z" or "grad/layers.0.attn.q.z"
    std::vector<int64_t> shape;  // row-major, e.g. (B, T, C); () for the loss
    std::vector<T> data;         // a copy, taken when the step was computed
    TracePass pass = TracePass::Forward;
  };
  std::vector<Entry> entries;  // in the order the model computed them

  // Copies x (as many values as shape holds) under `name` ("grad/" + name in the backward pass).
  void add(TracePass pass, const std::string& name, const T* x, std::vector<int64_t> shape) {
    Entry e;
    e.name = pass == TracePass::Backward ? "grad/" + name : name;
    require(find(e.name) == nullptr, "trace: step '{}' recorded twice", e.name);
    size_t n = 1;
    for (int64_t d : shape) n *= (size_t)d;
    e.shape = std::move(shape), e.data.assign(x, x + n), e.pass = pass;
    entries.push_back(std::move(e));
  }

  const Entry* find(const std::string& name) const {
    for (const Entry& e : entries)
      if (e.name == name) return &e;
    return nullptr;
  }
};

}  // namespace scalevec
