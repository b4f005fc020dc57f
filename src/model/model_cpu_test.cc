// The real test models on the cpu backend: the same facts model_test.cc
// checks with the ref backend, plus agreement with the ref backend's logits.
//
// Tolerance: the cpu backend quantizes MatMul activations to int8 (Q8 blocks
// of 32 / Q8_K blocks of 256), as llama.cpp does. SmolLM2 has outlier
// channels (a block holding one huge activation rounds its small neighbours
// coarsely), so over 30 layers this moves logits noticeably. Softmax ignores
// a common shift, so logits are compared after removing the mean difference
// (measured shifts -0.17..0.35): measured max |cpu - ref| 0.76 and mean 0.15
// over the 49152 logits of each of the 5 positions (uncentered: 1.09). With
// the activations left in f32 (a diagnostic build) the max is 0.007, so the
// difference is the int8 rounding alone, whose kernels cpu_matmul_test checks
// exactly. We require centered max < 1.2, mean < 0.25 and the same top-1
// token at every position.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "kernels/kv_cache.h"
#include "model/model.h"

namespace formiga {
namespace {

constexpr int64_t kBlock = 16;

// Runs one sequence through `model` in chunks; returns the logits of every
// token, (n_tokens, vocab).
std::vector<float> RunSequence(Model& model, const std::vector<int32_t>& tokens, int64_t chunk) {
  const int64_t V = model.config().vocab_size;
  const int64_t n = static_cast<int64_t>(tokens.size());
  auto kv = KvCache::Create(model.config().n_layers, 8, model.kv_layout(kBlock, DType::kF16));
  EXPECT_TRUE(kv.ok()) << kv.status().ToString();
  // Blocks in reverse order: the block table is not the identity.
  std::vector<int32_t> table = {7, 5, 3, 1, 6, 4, 2, 0};
  const int32_t* tables[] = {table.data()};
  std::vector<float> all(static_cast<size_t>(n * V));
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t T = std::min(chunk, n - start);
    std::vector<int32_t> pos, seq(static_cast<size_t>(T), 0), rows;
    std::vector<int64_t> slots;
    for (int64_t t = 0; t < T; ++t) {
      const int32_t p = static_cast<int32_t>(start + t);
      pos.push_back(p);
      slots.push_back(static_cast<int64_t>(table[p / kBlock]) * kBlock + p % kBlock);
      rows.push_back(static_cast<int32_t>(t));
    }
    ForwardBatch b;
    b.tokens = tokens.data() + start;
    b.attn = AttentionBatch{T, pos.data(), seq.data(), tables, slots.data()};
    b.logit_rows = rows.data();
    b.n_logit_rows = T;
    Status st = model.Forward(b, *kv, all.data() + start * V);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return all;
}

int32_t Argmax(const float* v, int64_t n) { return static_cast<int32_t>(std::max_element(v, v + n) - v); }

TEST(ModelCpuTest, SmolLM2KnowsParisAndAgreesWithRef) {
  FORMIGA_REQUIRE_MODEL(path, testing::kSmolLM2);
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto cpu = MakeCpuBackend(0);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  auto ref = MakeRefBackend();
  auto cpu_model = LoadModel(*file, **cpu);
  auto ref_model = LoadModel(*file, *ref);
  ASSERT_TRUE(cpu_model.ok()) << cpu_model.status().ToString();
  ASSERT_TRUE(ref_model.ok()) << ref_model.status().ToString();
  const int64_t V = (*cpu_model)->config().vocab_size;
  // "The capital of France is"; " Paris" is 7042.
  const std::vector<int32_t> prompt = {504, 3575, 282, 4649, 314};
  const std::vector<float> a = RunSequence(**cpu_model, prompt, 5);
  EXPECT_EQ(Argmax(a.data() + 4 * V, V), 7042);

  const std::vector<float> r = RunSequence(**ref_model, prompt, 5);
  float worst = 0;
  double worst_mean = 0;
  for (int64_t p = 0; p < 5; ++p) {
    const float* ap = a.data() + p * V;
    const float* rp = r.data() + p * V;
    // Softmax ignores a common shift of all logits: compare centered logits.
    double shift = 0;
    for (int64_t i = 0; i < V; ++i) shift += ap[i] - rp[i];
    shift /= static_cast<double>(V);
    float m = 0;
    double sum = 0;
    for (int64_t i = 0; i < V; ++i) {
      const float d = static_cast<float>(std::fabs(ap[i] - rp[i] - shift));
      m = std::max(m, d);
      sum += d;
    }
    worst = std::max(worst, m);
    worst_mean = std::max(worst_mean, sum / static_cast<double>(V));
    EXPECT_LT(m, 1.2f) << "position " << p;
    EXPECT_LT(sum / static_cast<double>(V), 0.25) << "position " << p;
    // The same top token, unless the reference itself is a near-tie there:
    // the cpu backend rounds activations to int8, so at a position whose top
    // two logits are closer than that rounding moves them (position 2 here:
    // " the" vs " France", 0.5 apart in llama.cpp) either is right; its choice
    // must then be within kNearTie of the reference's best.
    constexpr float kNearTie = 1.0f;
    const int64_t ca = Argmax(ap, V);
    const int64_t ra = Argmax(rp, V);
    EXPECT_TRUE(ca == ra || rp[ca] >= rp[ra] - kNearTie)
        << "position " << p << ": cpu picks " << ca << " (ref logit " << rp[ca] << "), ref picks " << ra
        << " (" << rp[ra] << ")";
  }
  std::printf("SmolLM2 cpu vs ref over 5 positions: max |logit diff| %.4f, mean |diff| %.4f\n", worst, worst_mean);

  // Token by token through the KV cache: the cpu kernels are batch-invariant
  // (a token's result never depends on its neighbours in the batch), so the
  // logits are bit-identical to the prefill's.
  const std::vector<float> b = RunSequence(**cpu_model, prompt, 1);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  // Chunks of 2 (a prefill chunk attending to cached blocks).
  const std::vector<float> c = RunSequence(**cpu_model, prompt, 2);
  EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float)));
}

TEST(ModelCpuTest, Gemma3MatchesLlamaCppTopToken) {
  FORMIGA_REQUIRE_MODEL(path, testing::kGemma3);
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto cpu = MakeCpuBackend(0);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  auto model = LoadModel(*file, **cpu);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const int64_t V = (*model)->config().vocab_size;
  // "<bos>The capital of France is": llama.cpp's top token is " the" (506), logit 19.0.
  const std::vector<int32_t> prompt = {2, 818, 5279, 529, 7001, 563};
  const std::vector<float> a = RunSequence(**model, prompt, 6);
  const float* last = a.data() + 5 * V;
  EXPECT_EQ(Argmax(last, V), 506);
  EXPECT_NEAR(last[506], 19.0, 0.5);
  EXPECT_NEAR(last[1], 8.2, 0.5);
}

}  // namespace
}  // namespace formiga
