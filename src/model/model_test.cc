// Whole-model checks on the real test models with the ref backend: the
// forward pass predicts what the model is known to predict, and a prompt fed
// as one prefill chunk, token by token, or inside a batch with another
// sequence gives the same logits (the paged-KV and ragged-batch paths agree).
#include "model/model.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "model/forward_test_util.h"

namespace formiga {
namespace {

using testing::Argmax;
using testing::MaxAbsDiff;
using TestRunner = testing::ForwardTestRunner;

TEST(ModelTest, SmolLM2KnowsTheCapitalOfFranceAndPathsAgree) {
  FORMIGA_REQUIRE_MODEL(path, testing::kSmolLM2);
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto backend = MakeRefBackend();
  auto model = LoadModel(*file, *backend);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const int64_t V = (*model)->config().vocab_size;
  // "The capital of France is" (HF tokenizer ids); " Paris" is 7042.
  const std::vector<int32_t> prompt = {504, 3575, 282, 4649, 314};

  TestRunner prefill(**model, 16);
  int s = prefill.AddSequence();
  std::vector<float> a = prefill.Step({s}, {prompt});
  EXPECT_EQ(Argmax(a.data(), V), 7042);

  // Token by token through the KV cache.
  TestRunner decode(**model, 16);
  s = decode.AddSequence();
  std::vector<float> b;
  for (int32_t tok : prompt) b = decode.Step({s}, {{tok}});
  EXPECT_LT(MaxAbsDiff(a.data(), b.data(), V), 2e-3f);

  // In a ragged batch beside another sequence (prefill chunk + decode token).
  TestRunner mixed(**model, 16);
  int s0 = mixed.AddSequence(), s1 = mixed.AddSequence();
  mixed.Step({s1}, {{1, 2, 3}});
  std::vector<float> c = mixed.Step({s1, s0}, {{4}, prompt});
  EXPECT_LT(MaxAbsDiff(a.data(), c.data() + V, V), 2e-3f);
}

TEST(ModelTest, Gemma3MatchesLlamaCppTopToken) {
  FORMIGA_REQUIRE_MODEL(path, testing::kGemma3);
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto backend = MakeRefBackend();
  auto model = LoadModel(*file, *backend);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const int64_t V = (*model)->config().vocab_size;
  // "<bos>The capital of France is": llama.cpp's top token is " the" (506), logit 19.0.
  const std::vector<int32_t> prompt = {2, 818, 5279, 529, 7001, 563};
  TestRunner runner(**model, 8);
  int s = runner.AddSequence();
  std::vector<float> a = runner.Step({s}, {prompt});
  EXPECT_EQ(Argmax(a.data(), V), 506);
  EXPECT_NEAR(a[506], 19.0, 0.5);
  EXPECT_NEAR(a[1], 8.2, 0.5);
}

}  // namespace
}  // namespace formiga
