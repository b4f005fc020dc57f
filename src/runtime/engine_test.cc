// The engine on a tiny random-weight llama (formiga synth, SmolLM2's
// tokenizer): batching, chunking, preemption and prefix sharing must never
// change what a sequence generates (greedy), and limits/stops/cancellation
// end requests the way the API promises.
#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/synth.h"
#include "runtime/tiny_model_test_util.h"

namespace formiga {
namespace {

class EngineTest : public TinyModelTest {
 protected:
  struct Output {
    std::vector<int32_t> tokens;
    std::string text;
    FinishReason finish = FinishReason::kNone;
    GenerationStats stats;
  };

  static GenerationRequest Greedy(std::vector<int32_t> prompt, int64_t max_tokens, Output* out) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0.0f;
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    r.on_event = [out](const TokenEvent& e) {
      if (e.token >= 0 && !e.done) out->tokens.push_back(e.token);
      out->text += e.text;
      if (e.done) {
        out->finish = e.finish;
        out->stats = e.stats;
      }
      return true;
    };
    return r;
  }

  static std::vector<int32_t> Prompt(int i, int len) {
    std::vector<int32_t> p;
    for (int k = 0; k < len; ++k) p.push_back(100 + (i * 7919 + k * 104729) % 40000);
    return p;
  }

  Output Solo(const std::vector<int32_t>& prompt, int64_t max_tokens) {
    EngineOptions o;
    o.n_ctx = 128;
    o.max_seqs = 1;
    auto e = Engine::Create(*model_, *tokenizer_, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    Output out;
    EXPECT_TRUE((*e)->Submit(Greedy(prompt, max_tokens, &out)).ok());
    EXPECT_TRUE((*e)->RunUntilIdle().ok());
    return out;
  }

};

TEST_F(EngineTest, EightPromptsInOneBatchEqualTheirSoloRuns) {
  std::vector<Output> solo;
  for (int i = 0; i < 8; ++i) solo.push_back(Solo(Prompt(i, 3 + i * 2), 10));
  EngineOptions o;
  o.n_ctx = 128;
  o.max_seqs = 8;
  auto e = Engine::Create(*model_, *tokenizer_, o);
  ASSERT_TRUE(e.ok());
  std::vector<Output> batched(8);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE((*e)->Submit(Greedy(Prompt(i, 3 + i * 2), 10, &batched[i])).ok());
  ASSERT_TRUE((*e)->RunUntilIdle().ok());
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(batched[i].tokens, solo[i].tokens) << "prompt " << i;
    EXPECT_EQ(batched[i].text, solo[i].text) << "prompt " << i;
    EXPECT_EQ(batched[i].finish, FinishReason::kLength);
  }
  EXPECT_EQ((*e)->block_pool().num_free(), (*e)->block_pool().num_blocks());
}

TEST_F(EngineTest, ChunkedPrefillAndPreemptionChangeNothing) {
  std::vector<Output> solo;
  for (int i = 0; i < 4; ++i) solo.push_back(Solo(Prompt(i, 21), 12));
  EngineOptions o;
  o.n_ctx = 40;
  o.block_size = 4;
  o.n_blocks = 12;         // room for ~1.5 sequences: forces preemption
  o.max_batch_tokens = 7;  // forces chunked prefill
  o.max_seqs = 4;
  o.prefix_cache = false;
  auto e = Engine::Create(*model_, *tokenizer_, o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  std::vector<Output> out(4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE((*e)->Submit(Greedy(Prompt(i, 21), 12, &out[i])).ok());
  ASSERT_TRUE((*e)->RunUntilIdle().ok());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i].tokens, solo[i].tokens) << "prompt " << i;
  EXPECT_GT((*e)->num_preemptions(), 0u);
}

TEST_F(EngineTest, SharedPrefixIsReusedAndGivesTheSameOutput) {
  std::vector<int32_t> prompt = Prompt(5, 40);
  Output solo = Solo(prompt, 6);
  EngineOptions o;
  o.n_ctx = 128;
  o.max_seqs = 2;
  auto e = Engine::Create(*model_, *tokenizer_, o);
  ASSERT_TRUE(e.ok());
  Output first, second;
  ASSERT_TRUE((*e)->Submit(Greedy(prompt, 6, &first)).ok());
  ASSERT_TRUE((*e)->RunUntilIdle().ok());
  ASSERT_TRUE((*e)->Submit(Greedy(prompt, 6, &second)).ok());
  ASSERT_TRUE((*e)->RunUntilIdle().ok());
  EXPECT_EQ(first.tokens, solo.tokens);
  EXPECT_EQ(second.tokens, solo.tokens);
  EXPECT_EQ(first.stats.cached_prompt_tokens, 0);
  EXPECT_EQ(second.stats.cached_prompt_tokens, 32);  // two full blocks of 16 (the last token is recomputed)
  EXPECT_GT((*e)->block_pool().hits(), 0u);
}

TEST_F(EngineTest, StopStringEndsBeforeItAndIsNotShown) {
  std::vector<int32_t> prompt = Prompt(2, 5);
  Output solo = Solo(prompt, 12);
  ASSERT_GE(solo.tokens.size(), 4u);
  // Stop at the text of the 4th generated token.
  const std::string stop = tokenizer_->Decode(std::vector<int32_t>{solo.tokens[3]}, true);
  ASSERT_FALSE(stop.empty());
  const size_t at = solo.text.find(stop);
  ASSERT_NE(at, std::string::npos);
  EngineOptions o;
  o.n_ctx = 128;
  auto e = Engine::Create(*model_, *tokenizer_, o);
  Output out;
  GenerationRequest r = Greedy(prompt, 12, &out);
  r.stop = {stop};
  ASSERT_TRUE((*e)->Submit(std::move(r)).ok());
  ASSERT_TRUE((*e)->RunUntilIdle().ok());
  EXPECT_EQ(out.finish, FinishReason::kStop);
  EXPECT_EQ(out.text, solo.text.substr(0, at));
}

TEST_F(EngineTest, LimitsAndCancellation) {
  EngineOptions o;
  o.n_ctx = 16;
  auto e = Engine::Create(*model_, *tokenizer_, o);
  ASSERT_TRUE(e.ok());
  Output out;
  // Too long and empty prompts are refused with a reason.
  auto too_long = (*e)->Submit(Greedy(Prompt(0, 16), 4, &out));
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("--ctx"), std::string::npos);
  EXPECT_FALSE((*e)->Submit(Greedy({}, 4, &out)).ok());
  // The context ends generation with "length".
  Output ctx_out;
  ASSERT_TRUE((*e)->Submit(Greedy(Prompt(0, 10), 100, &ctx_out)).ok());
  ASSERT_TRUE((*e)->RunUntilIdle().ok());
  EXPECT_EQ(ctx_out.finish, FinishReason::kLength);
  EXPECT_EQ(ctx_out.tokens.size(), 6u);
  // A callback returning false cancels; blocks are freed.
  Output cancelled;
  GenerationRequest r = Greedy(Prompt(1, 4), 50, &cancelled);
  int seen = 0;
  auto inner = r.on_event;
  r.on_event = [&seen, inner](const TokenEvent& ev) {
    inner(ev);
    return ++seen < 3;
  };
  ASSERT_TRUE((*e)->Submit(std::move(r)).ok());
  ASSERT_TRUE((*e)->RunUntilIdle().ok());
  EXPECT_EQ(cancelled.finish, FinishReason::kCancelled);
  EXPECT_EQ(cancelled.tokens.size(), 3u);
  EXPECT_EQ((*e)->block_pool().num_free(), (*e)->block_pool().num_blocks());
}

}  // namespace
}  // namespace formiga
