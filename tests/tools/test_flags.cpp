// The flags of `scalevec train` (tools/config_flags.cpp) against the configs they set, and the
// validators every command's flags share (tools/flags.h). (Here, not in tests/ref: the
// reference's tests do not depend on the command line.)
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "ref/train/config.h"
#include "tools/commands.h"

using namespace scalevec;

// The train flags of `scalevec train` set the new fields, which then survive the JSON a state
// file stores; flags not given keep the base config's values; bad names are refused by the parser.
TEST(TrainFlags, SetTheFieldsAndRoundTripThroughJson) {
  CLI::App app;
  const FlagSet<TrainConfig> flags = train_flags(app);
  app.parse(
      "--optimizer muon --schedule wsd --muon-lr 0.03 --muon-momentum 0.9 --ns-steps 6 "
      "--sgd-momentum 0.5 --decay-frac 0.25 --lr 0.004",
      false);
  TrainConfig t = train_preset("tiny");
  flags.apply(t);
  EXPECT_EQ(t.optimizer, OptimizerKind::Muon);
  EXPECT_EQ(t.schedule, ScheduleKind::Wsd);
  EXPECT_EQ(t.muon_lr, 0.03);
  EXPECT_EQ(t.muon_momentum, 0.9);
  EXPECT_EQ(t.ns_steps, 6);
  EXPECT_EQ(t.sgd_momentum, 0.5);
  EXPECT_EQ(t.decay_frac, 0.25);
  EXPECT_EQ(t.lr, 0.004);
  EXPECT_EQ(t.steps, train_preset("tiny").steps);  // not given: unchanged
  EXPECT_EQ(TrainConfig::from_json(t.to_json()).to_json(), t.to_json());
  const std::string help = app.help();
  for (const char* f : {"--optimizer", "--schedule", "--muon-lr", "--muon-momentum", "--ns-steps",
                        "--sgd-momentum", "--decay-frac"})
    EXPECT_NE(help.find(f), std::string::npos) << f;
  for (const char* args : {"--optimizer lion", "--schedule linear"}) {
    CLI::App app2;
    const FlagSet<TrainConfig> f2 = train_flags(app2);
    EXPECT_THROW(app2.parse(args, false), CLI::ValidationError) << args;
  }
}

// ------------------------------------------------------------------------------------------------
// The validators of tools/flags.h: one per kind of value, shared by every command. Each accepts
// the good values and refuses each bad one with its one-line message.

namespace {

// The validator's message for `s` ("" when accepted).
std::string check(const CLI::Validator& v, std::string s) { return v(s); }

void expect_accepts(const CLI::Validator& v, std::initializer_list<std::string> good) {
  for (const auto& s : good) EXPECT_EQ(check(v, s), "") << "'" << s << "' refused";
}
// Each bad value is refused with exactly `message` with the value in place of {}.
void expect_refuses(const CLI::Validator& v, std::initializer_list<std::string> bad,
                    const std::string& message) {
  for (const auto& s : bad) EXPECT_EQ(check(v, s), fmt::format(fmt::runtime(message), s)) << s;
}

// A command with one option checked by `v`, parsed from `args`.
template <class T>
T parse_one(const CLI::Validator& v, const std::string& args) {
  CLI::App app;
  T value{};
  app.add_option("--x", value)->check(v);
  app.parse(args, false);
  return value;
}
std::string parse_error(const CLI::Validator& v, const std::string& args) {
  CLI::App app;
  double value = 0;
  app.add_option("--x", value)->check(v);
  try {
    app.parse(args, false);
  } catch (const CLI::ParseError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Validators, SeedIsAnyUnsigned64BitNumberWithoutSignOrWrap) {
  expect_accepts(seed(), {"0", "1", "1337", "18446744073709551615", "007"});
  expect_refuses(seed(),
                 {"-1", "18446744073709551616", "99999999999999999999", "+5", "3abc", " 3", "3 ",
                  "", "1e3", "0x10", "1.0", "-0", "inf", "nan"},
                 "must be a whole number in [0, 18446744073709551615], got '{}'");
  EXPECT_EQ(seed_error("-1"), check(seed(), "-1"));
  EXPECT_EQ(parse_one<uint64_t>(seed(), "--x 18446744073709551615"),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(parse_error(seed(), "--x -1"),
            "--x: must be a whole number in [0, 18446744073709551615], got '-1'");
}

TEST(Validators, WholeNumberIsTheWholeTokenInTheTypesRange) {
  const CLI::Validator v = whole_number<int>();
  expect_accepts(v, {"0", "-3", "2147483647", "-2147483648"});
  expect_refuses(v, {"2147483648", "4294967297", "3abc", "0x10", "+1", "1.5", "1e3", ""},
                 "must be a whole number in [-2147483648, 2147483647], got '{}'");
  expect_refuses(whole_number<int>(1, 9), {"0", "10"},
                 "must be a whole number in [1, 9], got '{}'");
}

TEST(Validators, ThreadCountIsZeroOrUpToFourPerLogicalCpu) {
  const unsigned cpus = std::thread::hardware_concurrency();
  EXPECT_EQ(max_threads(), 4 * int(cpus > 0 ? std::min(cpus, 1024u) : 64u));
  const std::string top = std::to_string(max_threads()), over = std::to_string(max_threads() + 1);
  expect_accepts(thread_count(), {"0", "1", top});
  const std::string message = fmt::format(
      "must be 0 (the OpenMP default) or a whole number in [1, {}] (4 per logical CPU: more "
      "threads only oversubscribe the cores), got '{{}}'",
      max_threads());
  for (const std::string& s : {over, std::string("100000"), std::string("-1"), std::string("2.5"),
                               std::string("3abc"), std::string("")})
    EXPECT_EQ(check(thread_count(), s), fmt::format(fmt::runtime(message), s)) << s;
  EXPECT_NE(threads_help().find("at most " + top), std::string::npos) << threads_help();
}

TEST(Validators, TemperatureIsFiniteAndANormalFloat32) {
  expect_accepts(temperature(), {"0.8", "1", "2", "1e-30", "1.2e-38", "3e38"});
  expect_refuses(temperature(),
                 {"0", "-1", "-0.5", "inf", "-inf", "nan", "1e-300", "1e-39", "1e39", "1e400",
                  "3abc", "", " 1"},
                 "must be a finite number > 0 (from 1.2e-38 to 3.4e38, the normal float32 range), "
                 "got '{}'");
  EXPECT_EQ(parse_one<double>(temperature(), "--x 0.25"), 0.25);
}

TEST(Validators, RelativeToleranceIsInZeroOne) {
  expect_accepts(relative_tolerance(), {"1e-6", "0.5", "0.999"});
  expect_refuses(relative_tolerance(), {"0", "-1e-6", "1", "2", "inf", "nan", "3abc", ""},
                 "must be a relative tolerance in (0, 1) (at 1 or more a result of all zeros "
                 "passes), got '{}'");
}

TEST(Validators, AbsoluteToleranceIsFiniteAndNonNegative) {
  expect_accepts(absolute_tolerance(), {"0", "1e-10", "5"});
  expect_refuses(absolute_tolerance(), {"-1e-10", "inf", "nan", "-inf", "1e400", "3abc", ""},
                 "must be a finite absolute tolerance >= 0, got '{}'");
}

TEST(Validators, FinitePositive) {
  expect_accepts(finite_positive(), {"1", "989.5", "1e-300", "3e-4"});
  expect_refuses(finite_positive(), {"0", "-0", "-1", "inf", "nan", "1e400", "3abc", "", "0x10"},
                 "must be a finite number > 0, got '{}'");
}

TEST(Validators, AtLeastRefusesNonNumbersAndNonFinite) {
  expect_accepts(at_least(1), {"1", "300"});
  expect_refuses(at_least(1), {"0", "-5", "inf"}, "must be >= 1, got {}");
  expect_refuses(at_least(1), {"3abc", "nan", "", " 3", "0x10"}, "'{}' is not a number");
}

// The config flags: integer fields are whole tokens in their type's range (4294967297 does not
// wrap to 1), the seed follows seed(), and the float fields reach validate(), which refuses what
// float32 cannot use.
TEST(ConfigFlags, IntegersAreWholeTokensAndTheSeedIsSeed) {
  auto error_of = [](const std::string& args) -> std::string {
    CLI::App app;
    const FlagSet<ModelConfig> m = model_flags(app);
    const FlagSet<TrainConfig> t = train_flags(app);
    try {
      app.parse(args, false);
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    ModelConfig mc = model_preset("tiny");
    TrainConfig tc = train_preset("tiny");
    m.apply(mc), t.apply(tc);
    try {
      mc.validate(), tc.validate();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error_of("--seed 18446744073709551615 --layers 2"), "");
  EXPECT_EQ(error_of("--seed -1"), "--seed: " + seed_error("-1"));
  EXPECT_EQ(error_of("--seed 18446744073709551616"),
            "--seed: " + seed_error("18446744073709551616"));
  EXPECT_EQ(error_of("--layers 4294967297"),
            "--layers: must be a whole number in [-2147483648, 2147483647], got '4294967297'");
  EXPECT_EQ(error_of("--batch 3abc"),
            "--batch: must be a whole number in [-2147483648, 2147483647], got '3abc'");
  EXPECT_EQ(error_of("--norm-eps 1e-300").rfind("norm_eps = 1e-300 is not usable in float32", 0),
            0u)
      << error_of("--norm-eps 1e-300");
  EXPECT_EQ(error_of("--adam-eps 1e-50").rfind("adam_eps = 1e-50 is not usable in float32", 0), 0u);
  CLI::App app;
  const FlagSet<TrainConfig> t = train_flags(app);
  app.parse("--seed 18446744073709551615", false);
  TrainConfig tc;
  t.apply(tc);
  EXPECT_EQ(tc.seed, std::numeric_limits<uint64_t>::max());
}
