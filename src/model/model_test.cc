// Whole-model checks on the real test models with the ref backend: the
// forward pass predicts what the model is known to predict, and a prompt fed
// as one prefill chunk, token by token, or inside a batch with another
// sequence gives the same logits (the paged-KV and ragged-batch paths agree).
#include "model/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "core/test_models.h"
#include "formats/gguf.h"

namespace formiga {
namespace {

// A single-process driver for tests: one KV cache, sequences with their own
// block tables.
class TestRunner {
 public:
  TestRunner(Model& model, int64_t n_blocks) : model_(model) {
    auto kv = KvCache::Create(model.config().n_layers, n_blocks, model.kv_layout(kBlock, DType::kF16));
    EXPECT_TRUE(kv.ok()) << kv.status().ToString();
    kv_ = std::make_unique<KvCache>(std::move(kv.value()));
  }

  int AddSequence() {
    tables_.emplace_back();
    lengths_.push_back(0);
    return static_cast<int>(tables_.size()) - 1;
  }

  // Feeds chunks[i] to sequence seqs[i] in one ragged batch; returns the logits of
  // the last token of every chunk, (n_chunks, vocab).
  std::vector<float> Step(const std::vector<int>& seqs, const std::vector<std::vector<int32_t>>& chunks) {
    std::vector<int32_t> tokens, positions, seq_of, rows;
    std::vector<int64_t> slots;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int s = seqs[i];
      for (int32_t tok : chunks[i]) {
        const int32_t pos = lengths_[s]++;
        // Blocks handed out in arrival order: sequences interleave in the cache.
        if (pos % kBlock == 0) tables_[s].push_back(next_block_++);
        tokens.push_back(tok);
        positions.push_back(pos);
        seq_of.push_back(s);
        slots.push_back(static_cast<int64_t>(tables_[s][pos / kBlock]) * kBlock + pos % kBlock);
      }
      rows.push_back(static_cast<int32_t>(tokens.size()) - 1);
    }
    std::vector<const int32_t*> table_ptrs;
    for (auto& t : tables_) table_ptrs.push_back(t.data());
    ForwardBatch b;
    b.tokens = tokens.data();
    b.attn = AttentionBatch{static_cast<int64_t>(tokens.size()), positions.data(), seq_of.data(),
                            table_ptrs.data(), slots.data()};
    b.logit_rows = rows.data();
    b.n_logit_rows = static_cast<int64_t>(rows.size());
    std::vector<float> logits(rows.size() * static_cast<size_t>(model_.config().vocab_size));
    Status st = model_.Forward(b, *kv_, logits.data());
    EXPECT_TRUE(st.ok()) << st.ToString();
    return logits;
  }

 private:
  static constexpr int kBlock = 4;
  Model& model_;
  int32_t next_block_ = 0;
  std::unique_ptr<KvCache> kv_;
  std::vector<std::vector<int32_t>> tables_;
  std::vector<int32_t> lengths_;
};

int32_t Argmax(const float* v, int64_t n) { return static_cast<int32_t>(std::max_element(v, v + n) - v); }

float MaxAbsDiff(const float* a, const float* b, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

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
