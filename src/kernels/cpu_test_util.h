// Helpers shared by the cpu backend tests: random inputs, error measures and
// backend construction. Test-only (included by *_test.cc files).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/quant.h"
#include "kernels/backend.h"

namespace formiga::testing {

inline std::vector<float> RandomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline double Rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return v.empty() ? 0.0 : std::sqrt(s / static_cast<double>(v.size()));
}

// max |a - b| / rms(ref): the error measure every tolerance below is stated in.
inline double RelMaxErr(const std::vector<float>& got, const std::vector<float>& ref) {
  double m = 0;
  for (size_t i = 0; i < ref.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(got[i]) - ref[i]));
  const double rms = Rms(ref);
  return rms > 0 ? m / rms : m;
}

inline std::unique_ptr<Backend> CpuBackendOrDie(int threads) {
  auto be = MakeCpuBackend(threads);
  EXPECT_TRUE(be.ok()) << be.status().ToString();
  return be.ok() ? std::move(be.value()) : nullptr;
}

// Every weight type the backends compute with.
inline constexpr DType kWeightTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0, DType::kQ4_1,
                                         DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ2_K, DType::kQ3_K,
                                         DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Weights W (N, C) of `type` made from random f32 values (QuantizeRow also
// converts to f32/f16/bf16).
inline std::vector<uint8_t> MakeWeights(DType type, int64_t N, int64_t C, uint32_t seed) {
  const std::vector<float> w = RandomVector(static_cast<size_t>(N * C), seed, 0.5f);
  const size_t row_bytes = DTypeRowBytes(type, static_cast<uint64_t>(C));
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    EXPECT_TRUE(QuantizeRow(type, w.data() + n * C, out.data() + row_bytes * static_cast<size_t>(n), C).ok());
  }
  return out;
}

// A paged cache holding several sequences whose blocks are scattered
// (shuffled block ids), and a ragged batch taking the last tokens of each.
struct PagedSetup {
  KvLayout layout;
  std::vector<uint8_t> k, v;
  std::vector<std::vector<int32_t>> tables;
  std::vector<const int32_t*> table_ptrs;
  std::vector<int32_t> positions, seq_of;
  std::vector<int64_t> slots;
  AttentionBatch batch;
  std::vector<float> q;

  // lengths[s]: tokens of sequence s in the cache; batch_tokens[s]: how many
  // of its last tokens are in the batch.
  // bs: positions per KV block.
  PagedSetup(const std::vector<int>& lengths, const std::vector<int>& batch_tokens, int64_t H, int64_t KH,
             int64_t D, DType type, Backend& store_be, uint32_t seed, int64_t bs = 4) {
    layout = KvLayout{bs, KH, D, type};
    int64_t n_blocks = 0;
    for (int len : lengths) n_blocks += (len + bs - 1) / bs;
    n_blocks += 3;  // unused blocks in between
    std::vector<int32_t> ids(static_cast<size_t>(n_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), std::mt19937(seed));
    k.assign(static_cast<size_t>(DTypeRowBytes(type, static_cast<uint64_t>(n_blocks * bs * KH * D))), 0);
    v.assign(k.size(), 0);
    size_t next = 0;
    for (int len : lengths) {
      tables.emplace_back();
      for (int64_t b = 0; b < (len + bs - 1) / bs; ++b) tables.back().push_back(ids[next++]);
    }
    for (auto& t : tables) table_ptrs.push_back(t.data());
    // Fill every sequence's K/V through the ref StoreKv.
    for (size_t s = 0; s < lengths.size(); ++s) {
      std::vector<int32_t> pos, sq;
      std::vector<int64_t> sl;
      for (int p = 0; p < lengths[s]; ++p) {
        pos.push_back(p);
        sq.push_back(static_cast<int32_t>(s));
        sl.push_back(static_cast<int64_t>(tables[s][p / bs]) * bs + p % bs);
      }
      const auto kk = RandomVector(static_cast<size_t>(lengths[s] * KH * D), seed + 10 + static_cast<uint32_t>(s));
      const auto vv = RandomVector(kk.size(), seed + 20 + static_cast<uint32_t>(s));
      AttentionBatch fill{lengths[s], pos.data(), sq.data(), table_ptrs.data(), sl.data()};
      store_be.StoreKv(kk.data(), vv.data(), fill, KvLayerView{k.data(), v.data(), layout});
    }
    for (size_t s = 0; s < lengths.size(); ++s) {
      for (int p = lengths[s] - batch_tokens[s]; p < lengths[s]; ++p) {
        positions.push_back(p);
        seq_of.push_back(static_cast<int32_t>(s));
        slots.push_back(static_cast<int64_t>(tables[s][p / bs]) * bs + p % bs);
      }
    }
    batch = AttentionBatch{static_cast<int64_t>(positions.size()), positions.data(), seq_of.data(),
                           table_ptrs.data(), slots.data()};
    q = RandomVector(static_cast<size_t>(batch.n_tokens * H * D), seed + 30);
  }
  KvLayerView view() { return KvLayerView{k.data(), v.data(), layout}; }
};

}  // namespace formiga::testing
