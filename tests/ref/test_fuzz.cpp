// A deterministic mutation fuzzer of the checkpoint readers (read_safetensors, read_model_config,
// load_model, load_state). The seed corpus is a real checkpoint (a model file and an AdamW state
// file of a small model); each case applies one to three random mutations to one of them (bit
// flips, random bytes, truncation, insertion, a duplicated span, a header length change, a digit
// of a header number changed) and loads the result. Every case must end in one of two ways:
//   rejected   scalevec::Error (a one-line message), or
//   benign     loaded, and what was loaded equals the original (e.g. a space of the header's
//              padding changed).
// A load that succeeds with different content is a silent acceptance; any other exception
// (std::bad_alloc, a JSON library exception, ...) escapes the readers' checks. Both fail the test.
// SCALEVEC_FUZZ_CASES sets the number of cases (default 50000, about ten seconds here);
// tools/fuzz.sh runs a long campaign, under the sanitizer build when there is one.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ref/common.h"
#include "ref/model/transformer.h"
#include "ref/rng.h"
#include "ref/train/checkpoint.h"
#include "ref/train/optim.h"
#include "ref/train/safetensors.h"
#include "train_util.h"

namespace scalevec {
namespace {

using test::read_bytes;
using test::TempDir;
using test::write_bytes;

std::string mutate(std::string b, Rng& rng) {
  const int n = 1 + (int)rng.below(3);
  for (int k = 0; k < n && !b.empty(); k++) {
    const size_t at = rng.below(b.size());
    switch (rng.below(7)) {
      case 0:  // one bit
        b[at] = char(b[at] ^ (1 << rng.below(8)));
        break;
      case 1:  // a random byte
        b[at] = char(rng.below(256));
        break;
      case 2:  // truncated
        b.resize(at);
        break;
      case 3:  // random bytes inserted
        b.insert(at, std::string(1 + rng.below(16), char(rng.below(256))));
        break;
      case 4: {  // a span duplicated
        const size_t len = std::min<size_t>(1 + rng.below(64), b.size() - at);
        b.insert(at, b.substr(at, len));
        break;
      }
      case 5:  // the header length
        if (b.size() >= 8) b[rng.below(8)] = char(rng.below(256));
        break;
      case 6: {  // a digit inside the header (a shape, an offset, a config value, a step)
        uint64_t h = 0;
        for (int i = 0; i < 8 && i < (int)b.size(); i++)
          h |= uint64_t((unsigned char)b[i]) << (8 * i);
        const size_t end = std::min<uint64_t>(b.size(), 8 + h);
        std::vector<size_t> digits;
        for (size_t i = 8; i < end; i++)
          if (b[i] >= '0' && b[i] <= '9') digits.push_back(i);
        if (!digits.empty()) b[digits[rng.below(digits.size())]] = char('0' + rng.below(10));
        break;
      }
    }
  }
  return b;
}

TEST(Fuzz, CheckpointReadersRejectEveryHarmfulMutation) {
  const char* env = std::getenv("SCALEVEC_FUZZ_CASES");
  const int cases = env ? std::atoi(env) : 50000;
  TempDir dir;
  ModelConfig cfg = test::micro_config();
  Transformer<float> model(cfg, 0);
  model.init(3);
  AdamW<float> opt(model.layout(), AdamWConfig{});
  for (auto& [name, buf] : opt.state())
    for (size_t i = 0; i < buf->size(); i++) (*buf)[i] = 0.001f * float(i % 17);
  opt.t = 9;
  TrainState st;
  st.step = 9, st.data_rng = 12345, st.train = train_preset("tiny");
  save_checkpoint(dir / "run", model, opt, st, 1);
  const std::string model_file = model_path(dir / "run"), state_file = state_path(dir / "run");
  const std::string corpus[2] = {read_bytes(model_file), read_bytes(state_file)};
  const std::vector<float> want_params = model.params;
  const std::vector<float> want_m = opt.m, want_v = opt.v;

  Rng rng(20261201);
  int rejected = 0, benign = 0, silent = 0, escaped = 0;
  const std::string probe = dir / "case.safetensors";
  for (int c = 0; c < cases; c++) {
    const int which = (int)rng.below(2);
    const std::string bytes = mutate(corpus[which], rng);
    write_bytes(probe, bytes);
    try {
      if (which == 0) {
        const ModelConfig got = read_model_config(probe);
        Transformer<float> m(got, 0);
        const int64_t step = load_model(probe, m);
        if (got == cfg && step == 9 && m.params == want_params)
          benign++;
        else
          silent++, ADD_FAILURE() << "case " << c << ": a changed model file was accepted";
      } else {
        AdamW<float> o(model.layout(), AdamWConfig{});
        const TrainState s = load_state(probe, o);
        if (s.step == 9 && s.data_rng == 12345 && o.t == 9 && o.m == want_m && o.v == want_v &&
            s.train.to_json() == st.train.to_json())
          benign++;
        else
          silent++, ADD_FAILURE() << "case " << c << ": a changed state file was accepted";
      }
    } catch (const Error&) {
      rejected++;
    } catch (const std::exception& e) {
      escaped++;
      ADD_FAILURE() << "case " << c << ": " << typeid(e).name() << " escaped: " << e.what();
    }
  }
  std::printf(
      "[measured] fuzz: %d mutated checkpoint files: %d rejected with an error, %d benign "
      "(loaded, equal to the original), %d silently accepted, %d other exceptions\n",
      cases, rejected, benign, silent, escaped);
  EXPECT_EQ(silent, 0);
  EXPECT_EQ(escaped, 0);
  EXPECT_GT(rejected, cases * 9 / 10);
}

}  // namespace
}  // namespace scalevec
