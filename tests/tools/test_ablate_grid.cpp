// The grid of `scalevec ablate` without running anything (tools/ablate_grid.h): flag strings split
// as a shell splits them and joined back, seeds, arm specs and names, arms resolved exactly as
// `scalevec train` would build them, the refused flags, grid.json written and read back, and the
// comparability rule. (test_ablate.cpp drives the binary over whole grids.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "ref/common.h"
#include "tools/ablate_grid.h"

namespace {

using namespace scalevec;
namespace fs = std::filesystem;

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(AblateGrid, FlagStringsSplitLikeAShellAndJoinBack) {
  const auto w = split_words("--lr 1e-3  'a b' \"c \\\" d\" e\\ f", "t");
  EXPECT_EQ(w, (std::vector<std::string>{"--lr", "1e-3", "a b", "c \" d", "e f"}));
  EXPECT_EQ(split_words(join_words(w), "t"), w) << join_words(w);
  EXPECT_EQ(join_words({"--data", "/tmp/x.txt"}), "--data /tmp/x.txt") << "plain words stay plain";
  EXPECT_NE(error_of([] { split_words("--arm 'open", "arm 'x'"); }).find("unterminated '"),
            std::string::npos);
  EXPECT_NE(error_of([] { split_words("\"open", "t"); }).find("unterminated \""),
            std::string::npos);
}

TEST(AblateGrid, SeedsAreListsAndRanges) {
  EXPECT_EQ(parse_seeds("1-3,7"), (std::vector<uint64_t>{1, 2, 3, 7}));
  EXPECT_EQ(parse_seeds("5"), (std::vector<uint64_t>{5}));
  for (const char* bad : {"", "3-1", "1,1", "a", "1-", "-3", "1,,2", "99999999999999999999"})
    EXPECT_FALSE(error_of([&] { parse_seeds(bad); }).empty()) << "'" << bad << "' accepted";
  EXPECT_NE(error_of([] { parse_seeds("1,2,1"); }).find("seed 1 is listed twice"),
            std::string::npos);
}

TEST(AblateGrid, ArmSpecsNamesAndBuiltins) {
  EXPECT_EQ(parse_arm_spec("lowlr=--lr 1e-3"),
            (std::pair<std::string, std::string>{"lowlr", "--lr 1e-3"}));
  EXPECT_EQ(parse_arm_spec("plain="), (std::pair<std::string, std::string>{"plain", ""}));
  for (const auto& [name, flags] : kBuiltinArms)
    EXPECT_EQ(parse_arm_spec(name).second, flags) << name;
  EXPECT_NE(error_of([] { parse_arm_spec("nosuch"); }).find("built-in arm"), std::string::npos);
  EXPECT_TRUE(valid_arm_name("qk-iwd_2.b"));
  for (const char* bad : {"", ".hidden", "-x", "a/b", "a b"})
    EXPECT_FALSE(valid_arm_name(bad)) << bad;
}

TEST(AblateGrid, ArmsResolveAsTrainBuildsThem) {
  const ArmDef a = resolve_arm("u", "tiny", "--steps 40 --warmup 5", "--scale unified --lr 1e-3");
  ModelConfig m = model_preset("tiny");
  m.set_scale("unified");
  EXPECT_EQ(a.model, m);
  EXPECT_EQ(a.train.steps, 40);
  EXPECT_EQ(a.train.lr, 1e-3);
  EXPECT_EQ(a.train.wd_policy, WdPolicy::Iwd)
      << "unified implies --wd-policy iwd, as in scalevec train";
  EXPECT_EQ(a.train.ckpt_every, a.train.eval_every)
      << "a checkpoint at every evaluation unless given";
  EXPECT_FALSE(a.resolved().at("train").contains("seed")) << "the seed is each run's own";
  // The arm's own flags win over the common ones; an explicit --wd-policy wins over the implied.
  EXPECT_EQ(resolve_arm("x", "tiny", "--lr 2e-3", "--lr 5e-4").train.lr, 5e-4);
  EXPECT_EQ(resolve_arm("x", "tiny", "", "--scale unified --wd-policy none").train.wd_policy,
            WdPolicy::None);
}

TEST(AblateGrid, FlagsThatAblateOwnsAreRefused) {
  for (const char* f : {"--seed 3", "--out d", "--resume", "--preset small", "--threads 2",
                        "--device cuda", "--precision bf16", "--data f.txt"})
    EXPECT_FALSE(error_of([&] { resolve_arm("x", "tiny", "", f); }).empty()) << f;
  EXPECT_EQ(refused_flag("--data", true), "") << "--data is allowed as a common flag";
  EXPECT_NE(
      error_of([] { resolve_arm("x", "tiny", "", "--no-such-flag 1"); }).find("--no-such-flag"),
      std::string::npos);
  EXPECT_NE(error_of([] { resolve_arm("bad name", "tiny", "", ""); }).find("not valid"),
            std::string::npos);
}

TEST(AblateGrid, GridFileRoundTripsAndComparabilityHolds) {
  const fs::path dir = fs::temp_directory_path() / "scalevec-ablate-grid-test";
  fs::create_directories(dir);
  Grid g;
  g.seeds = {1, 2}, g.baseline = "baseline", g.commands = {"scalevec ablate --out x"};
  merge_arms(g,
             {resolve_arm("baseline", "tiny", "--steps 20 --warmup 2", ""),
              resolve_arm("none", "tiny", "--steps 20 --warmup 2", "--scale none")},
             false, dir.string());
  ASSERT_EQ(g.arms.size(), 2u);
  write_grid((dir / "grid.json").string(), g);
  const Grid r = read_grid((dir / "grid.json").string());
  ASSERT_EQ(r.arms.size(), 2u);
  EXPECT_EQ(r.arms[1].flags, "--scale none");
  EXPECT_EQ(r.arms[1].resolved, g.arms[1].resolved);
  EXPECT_EQ(r.seeds, g.seeds);
  EXPECT_EQ(r.commands, g.commands);
  EXPECT_NO_THROW(check_comparable(r));

  // Redefining an arm needs --force; an arm of another length is not comparable.
  Grid h = r;
  EXPECT_NE(error_of([&] {
              merge_arms(h, {resolve_arm("none", "tiny", "--steps 20 --warmup 2", "--lr 1e-4")},
                         false, dir.string());
            }).find("--force"),
            std::string::npos);
  merge_arms(h, {resolve_arm("short", "tiny", "--steps 10 --warmup 2", "")}, false, dir.string());
  EXPECT_NE(error_of([&] { check_comparable(h); }).find("different numbers of tokens"),
            std::string::npos);
  h.allow_different_tokens = true;
  EXPECT_NO_THROW(check_comparable(h));

  std::ofstream(dir / "bad.json") << "{\"format\": \"something else\"}";
  EXPECT_FALSE(error_of([&] { read_grid((dir / "bad.json").string()); }).empty());
  EXPECT_EQ(run_dir("out", "hg", 3), "out/runs/hg/seed3");
  fs::remove_all(dir);
}

}  // namespace
