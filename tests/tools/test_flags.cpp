// The flags of `scalevec train` (tools/config_flags.cpp) against the configs they set. (Here, not
// in tests/ref: the reference's tests do not depend on the command line.)
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "ref/train/config.h"
#include "tools/commands.h"

using namespace scalevec;

// The train flags of `scalevec train` set the new fields, which then survive the JSON a state
// file stores; flags not given keep the base config's values; bad names are refused by the parser.
TEST(TrainFlags, SetTheFieldsAndRoundTripThroughJson) {
  CLI::App app;
  const FlagSet<TrainConfig> flags = train_flags(app);
  app.parse("--optimizer muon --schedule wsd --muon-lr 0.03 --muon-momentum 0.9 --ns-steps 6 "
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

