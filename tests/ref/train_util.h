// Helpers shared by the training test suites (test_train, test_optim): a temporary directory,
// expected errors, file bytes, a deterministic synthetic text, hand-made tensor descriptions, a
// micro model config and a small train() setup.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"
#include "ref/train/config.h"
#include "ref/train/data.h"
#include "ref/train/trainer.h"

namespace scalevec::test {

// A fresh directory under the test temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "scalevec_test_XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs f, which must throw scalevec::Error whose message contains every one of `parts`.
template <class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no scalevec::Error thrown";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// Deterministic pseudo-English: words drawn by a seeded generator.
inline std::string synthetic_text(size_t n, uint64_t seed) {
  static const char* words[] = {"the",    "scale", "vector", "of",     "a",    "norm",
                                "folds",  "into",  "next",   "linear", "map",  "and",
                                "weight", "decay", "helps",  "it",     "loss", "falls",
                                "with",   "every", "step",   "gamma",  "is",   "one"};
  Rng rng(seed);
  std::string s;
  while (s.size() < n) {
    s += words[rng.below(std::size(words))];
    s += rng.below(9) == 0 ? ".\n" : " ";
  }
  s.resize(n);
  return s;
}

// A tensor description for hand-made layouts.
inline ParamInfo info(const std::string& name, std::vector<int> shape, Role role,
                      ScaleType type = ScaleType::Input) {
  ParamInfo p;
  p.name = name, p.shape = std::move(shape), p.role = role, p.scale_type = type;
  return p;
}

// A micro model (float) for checkpoint tests.
inline ModelConfig micro_config() {
  ModelConfig c;
  c.n_layer = 1, c.d_model = 8, c.n_head = 2, c.d_ff = 8, c.context = 4;
  return c;
}

// A small model, a short run and a synthetic text for train(): resume, determinism, sanity.
struct TrainSetup {
  ModelConfig model;
  TrainConfig train;
  TextData data;
  TrainSetup() {
    model.n_layer = 1, model.d_model = 16, model.n_head = 2, model.d_ff = 32, model.context = 16;
    train.batch = 4, train.steps = 12, train.lr = 3e-3, train.warmup = 2, train.seed = 42;
    train.eval_every = 5, train.eval_batches = 2, train.wd_policy = WdPolicy::Iwd;
    data = split_text(synthetic_text(200 * 1024, 8), model.context, "synthetic");
  }
  TrainResult run(const std::string& out, int stop_at = 0, bool resume = false) const {
    TrainOptions o;
    o.out_dir = out, o.stop_at = stop_at, o.resume = resume, o.progress = false;
    o.sample.length = 0;
    return scalevec::train(model, train, data, o);
  }
};

// The weights of a run directory's checkpoint.
inline std::vector<float> final_params(const ModelConfig& cfg, const std::string& dir) {
  Transformer<float> m(cfg, 0);
  load_model(model_path(dir), m);
  return m.params;
}

}  // namespace scalevec::test
