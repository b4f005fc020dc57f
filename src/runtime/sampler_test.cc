#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

namespace formiga {
namespace {

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

TEST(SamplerTest, GreedyPicksArgmaxLowestIdOnTies) {
  Sampler s(Greedy(), 4);
  std::vector<float> logits = {1.0f, 3.0f, 3.0f, -1.0f};
  SampledToken t = s.Sample(logits, {});
  EXPECT_EQ(t.id, 1);
  const double z = std::exp(1.0) + 2 * std::exp(3.0) + std::exp(-1.0);
  EXPECT_NEAR(t.logprob, 3.0 - std::log(z), 1e-5);
}

TEST(SamplerTest, TopK1IsGreedy) {
  SamplingParams p;
  p.top_k = 1;
  p.temperature = 1.5f;
  Sampler s(p, 5);
  for (int i = 0; i < 20; ++i) {
    std::vector<float> logits = {0.1f, 0.2f, 2.0f, 0.3f, 1.9f};
    EXPECT_EQ(s.Sample(logits, {}).id, 2);
  }
}

TEST(SamplerTest, SameSeedSameDraws) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  p.seed = 42;
  Sampler a(p, 8), b(p, 8);
  std::vector<int32_t> da, db;
  for (int i = 0; i < 50; ++i) {
    std::vector<float> la(8, 0.0f), lb(8, 0.0f);
    da.push_back(a.Sample(la, {}).id);
    db.push_back(b.Sample(lb, {}).id);
  }
  EXPECT_EQ(da, db);
  p.seed = 43;
  Sampler c(p, 8);
  std::vector<int32_t> dc;
  for (int i = 0; i < 50; ++i) {
    std::vector<float> l(8, 0.0f);
    dc.push_back(c.Sample(l, {}).id);
  }
  EXPECT_NE(da, dc);
}

TEST(SamplerTest, DrawsFollowTheDistribution) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.temperature = 1.0f;
  p.seed = 1;
  Sampler s(p, 3);
  // probabilities 1/7, 2/7, 4/7
  std::map<int32_t, int> hist;
  const int n = 70000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = {0.0f, std::log(2.0f), std::log(4.0f)};
    ++hist[s.Sample(l, {}).id];
  }
  EXPECT_NEAR(hist[0] / double(n), 1.0 / 7, 0.01);
  EXPECT_NEAR(hist[1] / double(n), 2.0 / 7, 0.01);
  EXPECT_NEAR(hist[2] / double(n), 4.0 / 7, 0.01);
}

TEST(SamplerTest, TopPKeepsSmallestSetReachingMass) {
  SamplingParams p;
  p.top_k = 0;
  p.min_p = 0.0f;
  p.top_p = 0.5f;  // probabilities 4/7 > 0.5 alone
  p.temperature = 1.0f;
  Sampler s(p, 3);
  for (int i = 0; i < 100; ++i) {
    std::vector<float> l = {0.0f, std::log(2.0f), std::log(4.0f)};
    EXPECT_EQ(s.Sample(l, {}).id, 2);
  }
}

TEST(SamplerTest, MinPDropsUnlikelyTokens) {
  SamplingParams p;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.3f;  // keeps p >= 0.3 * 4/7: tokens 1 and 2
  p.temperature = 1.0f;
  Sampler s(p, 3);
  for (int i = 0; i < 200; ++i) {
    std::vector<float> l = {0.0f, std::log(2.0f), std::log(4.0f)};
    EXPECT_NE(s.Sample(l, {}).id, 0);
  }
}

TEST(SamplerTest, PenaltiesAndBias) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p, 4);
  std::vector<float> l = {4.0f, -1.0f, 3.0f, 0.0f};
  std::vector<int32_t> history = {0, 0, 1};
  s.Sample(l, history);
  EXPECT_FLOAT_EQ(l[0], 4.0f / 2 - 0.5f - 0.25f * 2);  // 1.0
  EXPECT_FLOAT_EQ(l[1], -1.0f * 2 - 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(l[2], 3.0f);
  SamplingParams q = Greedy();
  q.logit_bias = {{2, -std::numeric_limits<float>::infinity()}, {3, 10.0f}};
  Sampler t(q, 4);
  std::vector<float> l2 = {4.0f, -1.0f, 30.0f, 0.0f};
  EXPECT_EQ(t.Sample(l2, {}).id, 3);
}

TEST(SamplerTest, PenaltyWindowOnlySeesRecentTokens) {
  SamplingParams p = Greedy();
  p.presence_penalty = 10.0f;
  p.penalty_last_n = 1;
  Sampler s(p, 3);
  std::vector<float> l = {5.0f, 4.0f, 0.0f};
  EXPECT_EQ(s.Sample(l, std::vector<int32_t>{0, 1}).id, 0);  // only token 1 penalized
}

TEST(SamplerTest, TopLogprobsReportTheModelDistribution) {
  SamplingParams p;
  p.temperature = 0.5f;
  p.top_k = 1;  // the filters must not change what is reported
  p.top_logprobs = 3;
  Sampler s(p, 4);
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
  SampledToken t = s.Sample(logits, {});
  const double z = std::exp(1.0) + std::exp(3.0) + std::exp(2.0) + std::exp(-1.0);
  ASSERT_EQ(t.top.size(), 3u);
  EXPECT_EQ(t.top[0].first, 1);
  EXPECT_EQ(t.top[1].first, 2);
  EXPECT_EQ(t.top[2].first, 0);
  EXPECT_NEAR(t.top[0].second, 3.0 - std::log(z), 1e-5);
  EXPECT_NEAR(t.model_logprob, 3.0 - std::log(z), 1e-5);
  EXPECT_NEAR(t.logprob, 0.0, 1e-6);  // under top-k 1 the pick was certain
  SamplingParams off = Greedy();
  Sampler plain(off, 4);
  std::vector<float> again = {1.0f, 3.0f, 2.0f, -1.0f};
  EXPECT_TRUE(plain.Sample(again, {}).top.empty());
  SamplingParams bad;
  bad.top_logprobs = 21;
  EXPECT_FALSE(bad.Validate(4).ok());
}

TEST(SamplerTest, TopLogprobsOverALargeVocabularyAndBannedTokens) {
  // A vocabulary the size of SmolLM2's with ties: the reported top 20 are
  // the 20 largest logits, ties by id, as a full sort gives them; and when
  // -inf logits leave fewer than asked, those are listed last.
  const int64_t V = 49152;
  std::vector<float> logits(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) logits[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 1000) / 100.0f;
  SamplingParams p = Greedy();
  p.top_logprobs = 20;
  Sampler s(p, V);
  SampledToken t = s.Sample(logits, {});
  std::vector<std::pair<float, int32_t>> all;
  for (int64_t i = 0; i < V; ++i) all.emplace_back(logits[static_cast<size_t>(i)], static_cast<int32_t>(i));
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  ASSERT_EQ(t.top.size(), 20u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(t.top[i].first, all[i].second) << i;
  EXPECT_EQ(t.id, all[0].second);

  const float inf = std::numeric_limits<float>::infinity();
  SamplingParams q = Greedy();
  q.top_logprobs = 4;
  Sampler small(q, 5);
  std::vector<float> banned = {-inf, 2.0f, -inf, 1.0f, -inf};
  SampledToken b = small.Sample(banned, {});
  ASSERT_EQ(b.top.size(), 4u);
  EXPECT_EQ(b.top[0].first, 1);
  EXPECT_EQ(b.top[1].first, 3);
  EXPECT_EQ(b.top[2].first, 0);  // -inf ones after, by id
  EXPECT_EQ(b.top[3].first, 2);
  EXPECT_EQ(b.top[2].second, -inf);
}

TEST(SamplerTest, ValidateNamesTheField) {
  SamplingParams p;
  p.top_p = 0.0f;
  EXPECT_NE(p.Validate(10).message().find("top_p"), std::string::npos);
  p = SamplingParams();
  p.logit_bias = {{10, 1.0f}};
  EXPECT_NE(p.Validate(10).message().find("outside the vocabulary"), std::string::npos);
  EXPECT_TRUE(SamplingParams().Validate(10).ok());
}

}  // namespace
}  // namespace formiga
