// Test helpers that drive Model::Forward directly, without the engine: a
// single-process runner that owns one paged KV cache and hands out blocks to
// sequences, plus small logit utilities (argmax, log-softmax).
//
// Used by model_test.cc (paths agree: prefill, decode, ragged batches) and
// model_golden_test.cc (whole chunks of text against reference logits).
//
// Thread safety: a ForwardTestRunner is used from one thread. Ownership: it
// borrows the Model, which must outlive it; it owns its KV cache.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/kv_cache.h"
#include "model/model.h"

namespace formiga::testing {

class ForwardTestRunner {
 public:
  // n_blocks blocks of `block_size` positions, shared by every sequence;
  // kv_type f16 (as llama.cpp's default cache) or f32.
  ForwardTestRunner(Model& model, int64_t n_blocks, int64_t block_size = 4, DType kv_type = DType::kF16)
      : model_(model), block_(block_size), n_blocks_(n_blocks) {
    auto kv = model.NewKvCache(n_blocks, block_size, kv_type);  // each layer's KV with its backend
    EXPECT_TRUE(kv.ok()) << kv.status().ToString();
    if (kv.ok()) kv_ = std::make_unique<KvCache>(std::move(kv.value()));
  }

  int AddSequence() {
    tables_.emplace_back();
    lengths_.push_back(0);
    return static_cast<int>(tables_.size()) - 1;
  }

  int64_t vocab() const { return model_.config().vocab_size; }

  // Feeds chunks[i] to sequence seqs[i] in one ragged batch. rows[i] lists
  // which tokens of chunks[i] (0-based within the chunk, ascending) need
  // logits; the result is (total rows, vocab) in batch order.
  std::vector<float> Run(const std::vector<int>& seqs, const std::vector<std::vector<int32_t>>& chunks,
                         const std::vector<std::vector<int32_t>>& rows) {
    std::vector<int32_t> tokens, positions, seq_of, logit_rows;
    std::vector<int64_t> slots;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const int s = seqs[i];
      const int32_t base = static_cast<int32_t>(tokens.size());
      for (int32_t tok : chunks[i]) {
        const int32_t pos = lengths_[s]++;
        // Blocks handed out in arrival order: sequences interleave in the cache.
        if (pos % block_ == 0) tables_[s].push_back(next_block_++);
        tokens.push_back(tok);
        positions.push_back(pos);
        seq_of.push_back(s);
        slots.push_back(static_cast<int64_t>(tables_[s][pos / block_]) * block_ + pos % block_);
      }
      for (int32_t r : rows[i]) logit_rows.push_back(base + r);
    }
    EXPECT_LE(next_block_, n_blocks_) << "ForwardTestRunner: KV cache too small";
    if (next_block_ > n_blocks_ || kv_ == nullptr) return {};
    std::vector<const int32_t*> table_ptrs;
    for (auto& t : tables_) table_ptrs.push_back(t.data());
    ForwardBatch b;
    b.tokens = tokens.data();
    b.attn = AttentionBatch{static_cast<int64_t>(tokens.size()), positions.data(), seq_of.data(),
                            table_ptrs.data(), slots.data()};
    b.logit_rows = logit_rows.data();
    b.n_logit_rows = static_cast<int64_t>(logit_rows.size());
    std::vector<float> logits(std::max<size_t>(1, logit_rows.size()) * static_cast<size_t>(vocab()));
    Status st = model_.Forward(b, *kv_, logits.data());
    EXPECT_TRUE(st.ok()) << st.ToString();
    logits.resize(logit_rows.size() * static_cast<size_t>(vocab()));
    return logits;
  }

  // Like Run, with logits for the last token of every chunk: (n_chunks, vocab).
  std::vector<float> Step(const std::vector<int>& seqs, const std::vector<std::vector<int32_t>>& chunks) {
    std::vector<std::vector<int32_t>> rows;
    for (const auto& c : chunks) rows.push_back({static_cast<int32_t>(c.size()) - 1});
    return Run(seqs, chunks, rows);
  }

 private:
  Model& model_;
  int64_t block_;
  int64_t n_blocks_;
  int32_t next_block_ = 0;
  std::unique_ptr<KvCache> kv_;
  std::vector<std::vector<int32_t>> tables_;
  std::vector<int32_t> lengths_;
};

inline int32_t Argmax(const float* v, int64_t n) {
  return static_cast<int32_t>(std::max_element(v, v + n) - v);
}

inline float MaxAbsDiff(const float* a, const float* b, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// log-softmax of one row, in double (the KL and perplexity sums need it).
inline std::vector<double> LogSoftmax(const float* logits, int64_t n) {
  double m = logits[0];
  for (int64_t i = 1; i < n; ++i) m = std::max(m, static_cast<double>(logits[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i]) - m);
  const double lse = m + std::log(sum);
  std::vector<double> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<double>(logits[i]) - lse;
  return out;
}

}  // namespace formiga::testing
