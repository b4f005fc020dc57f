// The reference backend against values worked out by hand: the oracle must be
// right before anything is compared with it.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "kernels/backend.h"

namespace formiga {
namespace {

WeightView F32Matrix(const std::vector<float>& w, int64_t rows, int64_t cols) {
  return WeightView{DType::kF32, w.data(), cols, rows, static_cast<size_t>(cols) * 4};
}

TEST(RefBackendTest, MatMulF32) {
  auto be = MakeRefBackend();
  // W (2, 3), x (2, 3) -> y (2, 2)
  std::vector<float> w = {1, 2, 3, -1, 0, 1};
  std::vector<float> x = {1, 1, 1, 2, 0, -1};
  std::vector<float> y(4);
  ASSERT_TRUE(be->MatMul(F32Matrix(w, 2, 3), x.data(), y.data(), 2).ok());
  EXPECT_EQ(y, (std::vector<float>{6, 0, -1, -3}));
}

TEST(RefBackendTest, MatMulF16MatchesF32) {
  auto be = MakeRefBackend();
  std::vector<float> w = {0.5f, -0.25f, 2.0f, 1.0f};
  std::vector<uint16_t> w16;
  for (float v : w) w16.push_back(F32ToF16(v));
  std::vector<float> x = {3, 4};
  std::vector<float> y(2);
  ASSERT_TRUE(be->MatMul(WeightView{DType::kF16, w16.data(), 2, 2, 4}, x.data(), y.data(), 1).ok());
  EXPECT_FLOAT_EQ(y[0], 0.5f);
  EXPECT_FLOAT_EQ(y[1], 10.0f);
}

TEST(RefBackendTest, GetRowsRejectsOutOfVocab) {
  auto be = MakeRefBackend();
  std::vector<float> table = {1, 2, 3, 4};
  std::vector<float> y(2);
  int32_t ok_id = 1, bad_id = 2;
  ASSERT_TRUE(be->GetRows(F32Matrix(table, 2, 2), &ok_id, 1, y.data()).ok());
  EXPECT_EQ(y, (std::vector<float>{3, 4}));
  EXPECT_FALSE(be->GetRows(F32Matrix(table, 2, 2), &bad_id, 1, y.data()).ok());
}

TEST(RefBackendTest, RmsNormAndLayerNorm) {
  auto be = MakeRefBackend();
  std::vector<float> x = {3, 4};  // mean square 12.5
  std::vector<float> w = {1, 2};
  std::vector<float> y(2);
  be->RmsNorm(x.data(), w.data(), y.data(), 1, 2, 0.0f);
  EXPECT_NEAR(y[0], 3 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(y[1], 2 * 4 / std::sqrt(12.5), 1e-6);
  std::vector<float> b = {10, 20};
  be->LayerNorm(x.data(), w.data(), b.data(), y.data(), 1, 2, 0.0f);  // mean 3.5, var 0.25
  EXPECT_NEAR(y[0], 10 - 1, 1e-6);
  EXPECT_NEAR(y[1], 20 + 2, 1e-6);
}

TEST(RefBackendTest, RopeRotatesPairsByPositionTimesFrequency) {
  auto be = MakeRefBackend();
  // D = 4, n_rot = 4: pair 0 has frequency 1, pair 1 has base^(-1/2) = 0.01 for base 1e4.
  std::vector<float> x = {1, 0, 1, 0};
  int32_t pos = 2;
  RopeParams p{RopeStyle::kNormal, 4, 10000.0f, 1.0f, nullptr};
  be->Rope(x.data(), &pos, 1, 1, 4, p);
  EXPECT_NEAR(x[0], std::cos(2.0), 1e-6);
  EXPECT_NEAR(x[1], std::sin(2.0), 1e-6);
  EXPECT_NEAR(x[2], std::cos(0.02), 1e-6);
  EXPECT_NEAR(x[3], std::sin(0.02), 1e-6);
  // NeoX pairs (0,2) and (1,3).
  std::vector<float> z = {1, 1, 0, 0};
  p.style = RopeStyle::kNeox;
  be->Rope(z.data(), &pos, 1, 1, 4, p);
  EXPECT_NEAR(z[0], std::cos(2.0), 1e-6);
  EXPECT_NEAR(z[2], std::sin(2.0), 1e-6);
  EXPECT_NEAR(z[1], std::cos(0.02), 1e-6);
  EXPECT_NEAR(z[3], std::sin(0.02), 1e-6);
  // Position 0 is the identity.
  std::vector<float> u = {0.3f, -0.7f, 1.5f, 2.0f}, u0 = u;
  int32_t zero = 0;
  be->Rope(u.data(), &zero, 1, 1, 4, p);
  EXPECT_EQ(u, u0);
}

// A tiny paged cache: f32, block size 2, blocks handed out in reverse order so
// that a sequence's blocks are not contiguous.
struct TinyCache {
  KvLayout layout{2, 1, 2, DType::kF32};
  std::vector<float> k = std::vector<float>(8 * 2 * 1 * 2), v = k;
  KvLayerView view() { return KvLayerView{k.data(), v.data(), layout}; }
};

TEST(RefBackendTest, AttentionOverPagedCache) {
  auto be = MakeRefBackend();
  TinyCache cache;
  // One sequence of 3 tokens, blocks {5, 2}: positions 0,1 -> block 5, position 2 -> block 2.
  const int32_t table[] = {5, 2};
  const int32_t* tables[] = {table};
  const int32_t positions[] = {0, 1, 2};
  const int32_t seq[] = {0, 0, 0};
  const int64_t slots[] = {10, 11, 4};
  AttentionBatch batch{3, positions, seq, tables, slots};
  // K rows: e0, e1, e0; V rows: (1,0), (0,1), (2,2).
  std::vector<float> k = {1, 0, 0, 1, 1, 0};
  std::vector<float> v = {1, 0, 0, 1, 2, 2};
  be->StoreKv(k.data(), v.data(), batch, cache.view());
  std::vector<float> q = {1, 0, 1, 0, 1, 0};  // every token queries e0
  std::vector<float> out(6);
  AttentionParams p{1, 1, 2, 1.0f, 0.0f, 0};
  be->Attention(q.data(), cache.view(), batch, p, out.data());
  // Token 0 sees only itself.
  EXPECT_NEAR(out[0], 1, 1e-6);
  EXPECT_NEAR(out[1], 0, 1e-6);
  // Token 1: scores (1, 0) -> weights (e/(e+1), 1/(e+1)).
  const double e = std::exp(1.0);
  EXPECT_NEAR(out[2], e / (e + 1), 1e-6);
  EXPECT_NEAR(out[3], 1 / (e + 1), 1e-6);
  // Token 2: scores (1, 0, 1) -> weights (e, 1, e)/(2e+1).
  EXPECT_NEAR(out[4], (e * 1 + e * 2) / (2 * e + 1), 1e-6);
  EXPECT_NEAR(out[5], (1 + e * 2) / (2 * e + 1), 1e-6);
  // A window of 2 drops position 0 for token 2: scores (0, 1).
  p.window = 2;
  be->Attention(q.data(), cache.view(), batch, p, out.data());
  EXPECT_NEAR(out[4], (e * 2) / (e + 1), 1e-6);
  EXPECT_NEAR(out[5], (1 + e * 2) / (e + 1), 1e-6);
}

TEST(RefBackendTest, GroupedQueryHeadsShareKvHead) {
  auto be = MakeRefBackend();
  KvLayout layout{4, 1, 2, DType::kF16};
  std::vector<uint16_t> k(4 * 2), v(4 * 2);
  KvLayerView kv{k.data(), v.data(), layout};
  const int32_t table[] = {0};
  const int32_t* tables[] = {table};
  const int32_t positions[] = {0};
  const int32_t seq[] = {0};
  const int64_t slots[] = {0};
  AttentionBatch batch{1, positions, seq, tables, slots};
  std::vector<float> kr = {0.5f, 0.5f}, vr = {0.25f, -4.0f};
  be->StoreKv(kr.data(), vr.data(), batch, kv);
  std::vector<float> q = {1, 2, -3, 4};  // two query heads, one KV head
  std::vector<float> out(4);
  be->Attention(q.data(), kv, batch, AttentionParams{2, 1, 2, 0.7f, 0.0f, 0}, out.data());
  EXPECT_EQ(out, (std::vector<float>{0.25f, -4.0f, 0.25f, -4.0f}));
}

TEST(RefBackendTest, Q8KvCacheIsCloseToF32) {
  auto be = MakeRefBackend();
  const int64_t T = 40, KH = 2, H = 4, D = 64, bs = 8;
  std::vector<int32_t> table = {4, 0, 2, 1, 3}, positions(T), seq(T, 0);
  std::vector<int64_t> slots(T);
  for (int64_t t = 0; t < T; ++t) {
    positions[t] = static_cast<int32_t>(t);
    slots[t] = static_cast<int64_t>(table[t / bs]) * bs + t % bs;
  }
  const int32_t* tables[] = {table.data()};
  AttentionBatch batch{T, positions.data(), seq.data(), tables, slots.data()};
  std::mt19937 rng(5);
  std::normal_distribution<float> n01;
  std::vector<float> k(T * KH * D), v(k.size()), q(T * H * D);
  for (float& x : k) x = n01(rng);
  for (float& x : v) x = n01(rng);
  for (float& x : q) x = n01(rng);
  std::vector<float> k32(5 * bs * KH * D), v32(k32.size());
  std::vector<uint8_t> k8(DTypeRowBytes(DType::kQ8_0, k32.size())), v8(k8.size());
  KvLayerView f32{k32.data(), v32.data(), KvLayout{bs, KH, D, DType::kF32}};
  KvLayerView q8{k8.data(), v8.data(), KvLayout{bs, KH, D, DType::kQ8_0}};
  be->StoreKv(k.data(), v.data(), batch, f32);
  be->StoreKv(k.data(), v.data(), batch, q8);
  AttentionParams p{H, KH, D, 0.125f, 0.0f, 0};
  std::vector<float> a(q.size()), b(q.size());
  be->Attention(q.data(), f32, batch, p, a.data());
  be->Attention(q.data(), q8, batch, p, b.data());
  double max_err = 0;
  for (size_t i = 0; i < a.size(); ++i) max_err = std::max(max_err, std::fabs(double(a[i]) - b[i]));
  // q8_0 steps are amax/127 (~0.02 for N(0,1) blocks of 32): V rounding moves
  // outputs by <= 0.01, K rounding perturbs the scores slightly; measured 0.024.
  EXPECT_LT(max_err, 0.05);
  EXPECT_GT(max_err, 0.0);   // it really is quantized
}

TEST(RefBackendTest, Activations) {
  auto be = MakeRefBackend();
  std::vector<float> x = {1.0f, -2.0f};
  std::vector<float> y(2);
  be->Gelu(x.data(), y.data(), 2, false);
  EXPECT_NEAR(y[0], 0.8413447, 1e-6);   // 0.5 * (1 + erf(1/sqrt 2))
  EXPECT_NEAR(y[1], -0.0455003, 1e-6);
  be->Gelu(x.data(), y.data(), 2, true);
  EXPECT_NEAR(y[0], 0.8411920, 1e-6);   // tanh approximation
  std::vector<float> up = {2.0f, 3.0f};
  be->SiluMul(x.data(), up.data(), y.data(), 2);
  EXPECT_NEAR(y[0], 2.0 / (1 + std::exp(-1.0)), 1e-6);
  EXPECT_NEAR(y[1], 3.0 * -2.0 / (1 + std::exp(2.0)), 1e-6);
}

}  // namespace
}  // namespace formiga
