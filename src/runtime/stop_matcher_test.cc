#include "runtime/stop_matcher.h"

#include <gtest/gtest.h>

namespace formiga {
namespace {

TEST(StopMatcherTest, NoStopsPassesEverything) {
  StopMatcher m({});
  EXPECT_EQ(m.Push("hello"), "hello");
  EXPECT_EQ(m.Flush(), "");
}

TEST(StopMatcherTest, StopSplitAcrossPushesIsNeverEmitted) {
  StopMatcher m({"<|end|>"});
  EXPECT_EQ(m.Push("Olá, tudo bem?<|"), "Olá, tudo bem?");
  EXPECT_EQ(m.Push("en"), "");
  EXPECT_EQ(m.Push("d|> trailing"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "<|end|>");
  EXPECT_EQ(m.Push("more"), "");
}

TEST(StopMatcherTest, FalseStartIsReleased) {
  StopMatcher m({"\n\nUser:"});
  EXPECT_EQ(m.Push("a\n\nUs"), "a");
  EXPECT_EQ(m.Push("ually"), "\n\nUsually");
  EXPECT_FALSE(m.stopped());
  EXPECT_EQ(m.Push("\n"), "");
  EXPECT_EQ(m.Flush(), "\n");
}

TEST(StopMatcherTest, EarliestOfSeveralStops) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(m.Push("hello world"), "hel");
  EXPECT_EQ(m.matched(), "lo w");
}

}  // namespace
}  // namespace formiga
