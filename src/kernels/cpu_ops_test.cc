// Every non-MatMul op of the cpu backend against the ref backend on random
// inputs, and bit-exact results across thread counts (1, 2, 3).
//
// Tolerances (max |cpu - ref| / rms(ref) unless stated):
//   Attention       3e-5  f32 scores (|s| up to ~20 here: an f32 rounding of
//                         s moves exp(s - max) by ~|s| eps) and a polynomial
//                         exp (rel. err ~2e-7) vs double in ref; measured 9e-6.
//   RmsNorm,        1e-5  f32 sums of C squares vs double; measured 1.5e-6
//   LayerNorm, Rope       (Rope: angle in double in both, cos/sin in f32).
//   SiluMul, Gelu*, 1e-5  polynomial exp/tanh/erf (abs. err <= 2e-7 per
//   SoftCap               unit input); measured <= 1.3e-6.
//   Add, AddBias,   exact  the same f32 operation.
//   Scale, CopyRows,
//   StoreKv, GetRows
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/quant.h"
#include "kernels/backend.h"
#include "kernels/cpu_test_util.h"

namespace formiga {
namespace {

using testing::PagedSetup;
using testing::RandomVector;
using testing::RelMaxErr;

TEST(CpuOpsTest, AttentionMatchesRef) {
  auto cpu_be = testing::CpuBackendOrDie(3);
  ASSERT_NE(cpu_be, nullptr);
  auto ref_be = MakeRefBackend();
  struct Case {
    int64_t H, KH, D, window;
    float softcap;
    DType type;
  };
  const Case cases[] = {
      {4, 4, 64, 0, 0.0f, DType::kF16},   {9, 3, 64, 0, 0.0f, DType::kF16},   {8, 2, 128, 0, 0.0f, DType::kF32},
      {4, 1, 256, 0, 0.0f, DType::kF16},  {6, 2, 64, 5, 0.0f, DType::kF16},   {4, 4, 128, 70, 0.0f, DType::kF32},
      {8, 2, 64, 0, 50.0f, DType::kF16},  {3, 3, 80, 0, 1.5f, DType::kF32},   {4, 1, 20, 9, 0.0f, DType::kF16},
      {9, 3, 64, 0, 0.0f, DType::kQ8_0},  {4, 1, 256, 7, 0.0f, DType::kQ8_0}, {8, 2, 128, 0, 30.0f, DType::kQ8_0},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    // Three sequences: a long prefill chunk, a decode token, a middle chunk.
    PagedSetup s({150, 37, 66}, {33, 1, 7}, c.H, c.KH, c.D, c.type, *ref_be, seed++);
    AttentionParams p{c.H, c.KH, c.D, 1.0f / std::sqrt(static_cast<float>(c.D)), c.softcap, c.window};
    // Larger q spreads the softmax (exercises the rescaling across chunks).
    for (float& x : s.q) x *= 3.0f;
    std::vector<float> got(s.q.size()), ref(s.q.size());
    cpu_be->Attention(s.q.data(), s.view(), s.batch, p, got.data());
    ref_be->Attention(s.q.data(), s.view(), s.batch, p, ref.data());
    const std::string what = "H=" + std::to_string(c.H) + " KH=" + std::to_string(c.KH) + " D=" +
                             std::to_string(c.D) + " window=" + std::to_string(c.window) +
                             " softcap=" + std::to_string(c.softcap) + " " + DTypeName(c.type);
    EXPECT_LE(RelMaxErr(got, ref), 3e-5) << what;
  }
}

TEST(CpuOpsTest, StoreKvMatchesRefBitForBit) {
  auto cpu_be = testing::CpuBackendOrDie(2);
  ASSERT_NE(cpu_be, nullptr);
  auto ref_be = MakeRefBackend();
  for (DType type : {DType::kF16, DType::kF32, DType::kQ8_0}) {
    for (int64_t T : {1, 5, 300}) {
      const int64_t KH = 3, D = type == DType::kQ8_0 ? 32 : 20;  // q8_0 rows are whole 32-blocks
      std::vector<int64_t> slots(static_cast<size_t>(T));
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), std::mt19937(7));
      AttentionBatch b{T, nullptr, nullptr, nullptr, slots.data()};
      auto k = RandomVector(static_cast<size_t>(T * KH * D), 1, 100.0f);
      auto v = RandomVector(k.size(), 2, 1e-5f);  // f16 subnormals too
      const size_t bytes = static_cast<size_t>(DTypeRowBytes(type, k.size()));
      std::vector<uint8_t> ck(bytes), cv(bytes), rk(bytes), rv(bytes);
      const KvLayout layout{4, KH, D, type};
      cpu_be->StoreKv(k.data(), v.data(), b, KvLayerView{ck.data(), cv.data(), layout});
      ref_be->StoreKv(k.data(), v.data(), b, KvLayerView{rk.data(), rv.data(), layout});
      EXPECT_EQ(ck, rk) << DTypeName(type) << " T=" << T;
      EXPECT_EQ(cv, rv) << DTypeName(type) << " T=" << T;
    }
  }
}

TEST(CpuOpsTest, NormsAndRopeMatchRef) {
  auto cpu_be = testing::CpuBackendOrDie(3);
  ASSERT_NE(cpu_be, nullptr);
  auto ref_be = MakeRefBackend();
  for (int64_t T : {1, 2, 7, 64}) {
    for (int64_t C : {1, 7, 64, 576, 1000}) {
      const auto x = RandomVector(static_cast<size_t>(T * C), 3, 2.0f);
      const auto w = RandomVector(static_cast<size_t>(C), 4);
      const auto bias = RandomVector(static_cast<size_t>(C), 5);
      std::vector<float> got(x.size()), ref(x.size());
      const std::string what = "T=" + std::to_string(T) + " C=" + std::to_string(C);
      for (const float* wp : {w.data(), static_cast<const float*>(nullptr)}) {
        cpu_be->RmsNorm(x.data(), wp, got.data(), T, C, 1e-6f);
        ref_be->RmsNorm(x.data(), wp, ref.data(), T, C, 1e-6f);
        EXPECT_LE(RelMaxErr(got, ref), 1e-5) << "RmsNorm " << what;
        cpu_be->LayerNorm(x.data(), wp, wp != nullptr ? bias.data() : nullptr, got.data(), T, C, 1e-5f);
        ref_be->LayerNorm(x.data(), wp, wp != nullptr ? bias.data() : nullptr, ref.data(), T, C, 1e-5f);
        EXPECT_LE(RelMaxErr(got, ref), 1e-5) << "LayerNorm " << what;
      }
      // In place (y aliases x), as the per-head q/k norms run.
      std::vector<float> inplace = x;
      cpu_be->RmsNorm(inplace.data(), w.data(), inplace.data(), T, C, 1e-6f);
      cpu_be->RmsNorm(x.data(), w.data(), got.data(), T, C, 1e-6f);
      EXPECT_EQ(inplace, got) << what;
    }
  }
  const std::vector<float> factors = {1.0f, 2.0f, 4.0f, 8.0f, 1.0f, 1.5f, 3.0f, 1.0f,
                                      1.0f, 1.0f, 2.0f, 2.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int64_t D : {32, 64, 128}) {
      for (int64_t n_rot : {D, D / 2}) {
        const int64_t T = 9, H = 5;
        std::vector<int32_t> pos = {0, 1, 2, 17, 100, 1000, 4095, 30000, 131071};
        const auto x = RandomVector(static_cast<size_t>(T * H * D), 6);
        RopeParams p{style, n_rot, 10000.0f, 0.5f, n_rot == 32 ? factors.data() : nullptr};
        auto got = x, ref = x;
        cpu_be->Rope(got.data(), pos.data(), T, H, D, p);
        ref_be->Rope(ref.data(), pos.data(), T, H, D, p);
        EXPECT_LE(RelMaxErr(got, ref), 1e-5) << "Rope D=" << D << " n_rot=" << n_rot;
      }
    }
  }
}

TEST(CpuOpsTest, ElementwiseOpsMatchRef) {
  auto cpu_be = testing::CpuBackendOrDie(3);
  ASSERT_NE(cpu_be, nullptr);
  auto ref_be = MakeRefBackend();
  for (int64_t n : {1, 7, 8, 33, 1000, 70001}) {
    const auto a = RandomVector(static_cast<size_t>(n), 7, 3.0f);
    auto b = RandomVector(static_cast<size_t>(n), 8, 3.0f);
    if (n > 8) b[3] = 200.0f, b[5] = -200.0f;  // saturated exp/tanh
    std::vector<float> got(a.size()), ref(a.size());
    const std::string what = "n=" + std::to_string(n);
    cpu_be->SiluMul(b.data(), a.data(), got.data(), n);
    ref_be->SiluMul(b.data(), a.data(), ref.data(), n);
    EXPECT_LE(RelMaxErr(got, ref), 1e-5) << "SiluMul " << what;
    cpu_be->GeluMul(b.data(), a.data(), got.data(), n);
    ref_be->GeluMul(b.data(), a.data(), ref.data(), n);
    EXPECT_LE(RelMaxErr(got, ref), 1e-5) << "GeluMul " << what;
    for (bool tanh_approx : {false, true}) {
      cpu_be->Gelu(b.data(), got.data(), n, tanh_approx);
      ref_be->Gelu(b.data(), ref.data(), n, tanh_approx);
      EXPECT_LE(RelMaxErr(got, ref), 1e-5) << "Gelu tanh=" << tanh_approx << " " << what;
    }
    cpu_be->SoftCap(b.data(), got.data(), n, 30.0f);
    ref_be->SoftCap(b.data(), ref.data(), n, 30.0f);
    EXPECT_LE(RelMaxErr(got, ref), 1e-5) << "SoftCap " << what;
    cpu_be->Add(a.data(), b.data(), got.data(), n);
    ref_be->Add(a.data(), b.data(), ref.data(), n);
    EXPECT_EQ(got, ref) << "Add " << what;
    got = a;
    ref = a;
    cpu_be->Scale(got.data(), 0.37f, n);
    ref_be->Scale(ref.data(), 0.37f, n);
    EXPECT_EQ(got, ref) << "Scale " << what;
  }
  for (int64_t T : {1, 3, 200}) {
    const int64_t C = 333;
    const auto x = RandomVector(static_cast<size_t>(T * C), 9);
    const auto bias = RandomVector(static_cast<size_t>(C), 10);
    std::vector<float> got(x.size()), ref(x.size());
    cpu_be->AddBias(x.data(), bias.data(), got.data(), T, C);
    ref_be->AddBias(x.data(), bias.data(), ref.data(), T, C);
    EXPECT_EQ(got, ref) << "AddBias T=" << T;
    std::vector<int32_t> rows = {static_cast<int32_t>(T - 1), 0};
    got.resize(static_cast<size_t>(2 * C));
    ref.resize(got.size());
    cpu_be->CopyRows(x.data(), rows.data(), 2, C, got.data());
    ref_be->CopyRows(x.data(), rows.data(), 2, C, ref.data());
    EXPECT_TRUE(std::equal(got.begin(), got.begin() + 2 * C, ref.begin())) << "CopyRows T=" << T;
  }
}

TEST(CpuOpsTest, GetRowsMatchesRefAndRejectsBadIds) {
  auto cpu_be = testing::CpuBackendOrDie(2);
  ASSERT_NE(cpu_be, nullptr);
  auto ref_be = MakeRefBackend();
  const int64_t V = 50, C = 256;
  const auto table = RandomVector(static_cast<size_t>(V * C), 11);
  for (DType type : {DType::kF32, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    const size_t rb = DTypeRowBytes(type, C);
    std::vector<uint8_t> data(rb * V);
    for (int64_t r = 0; r < V; ++r) ASSERT_TRUE(QuantizeRow(type, table.data() + r * C, data.data() + rb * r, C).ok());
    const WeightView view{type, data.data(), C, V, rb};
    const std::vector<int32_t> ids = {3, 49, 0, 3};
    std::vector<float> got(4 * C), ref(4 * C);
    ASSERT_TRUE(cpu_be->GetRows(view, ids.data(), 4, got.data()).ok());
    ASSERT_TRUE(ref_be->GetRows(view, ids.data(), 4, ref.data()).ok());
    EXPECT_EQ(got, ref) << DTypeName(type);
    const int32_t bad = 50;
    Status st = cpu_be->GetRows(view, &bad, 1, got.data());
    EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.ToString();
  }
}

// Runs a small mixed workload on a backend; returns every output concatenated.
std::vector<float> Workload(Backend& be) {
  std::vector<float> out;
  const auto append = [&](const std::vector<float>& v) { out.insert(out.end(), v.begin(), v.end()); };
  const int64_t T = 33, C = 512, N = 300;
  const auto x = RandomVector(static_cast<size_t>(T * C), 12);
  for (DType type : {DType::kF16, DType::kQ4_1, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    const auto wf = RandomVector(static_cast<size_t>(N * C), 13);
    const size_t rb = DTypeRowBytes(type, C);
    std::vector<uint8_t> w(rb * N);
    for (int64_t n = 0; n < N; ++n) EXPECT_TRUE(QuantizeRow(type, wf.data() + n * C, w.data() + rb * n, C).ok());
    std::vector<float> y(static_cast<size_t>(T * N));
    EXPECT_TRUE(be.MatMul(WeightView{type, w.data(), C, N, rb}, x.data(), y.data(), T).ok());
    append(y);
  }
  std::vector<float> h(x.size());
  be.RmsNorm(x.data(), nullptr, h.data(), T, C, 1e-6f);
  append(h);
  be.SiluMul(x.data(), h.data(), h.data(), T * C);
  append(h);
  auto ref_be = MakeRefBackend();
  PagedSetup s({150, 37, 66}, {33, 1, 7}, 9, 3, 64, DType::kF16, *ref_be, 99);
  std::vector<float> att(s.q.size());
  be.Attention(s.q.data(), s.view(), s.batch, AttentionParams{9, 3, 64, 0.125f, 0.0f, 0}, att.data());
  append(att);
  return out;
}

TEST(CpuOpsTest, BitIdenticalAcrossThreadCounts) {
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    auto be = testing::CpuBackendOrDie(threads);
    ASSERT_NE(be, nullptr);
    const std::vector<float> out = Workload(*be);
    if (first.empty()) {
      first = out;
    } else {
      ASSERT_EQ(out.size(), first.size());
      EXPECT_EQ(0, std::memcmp(out.data(), first.data(), out.size() * sizeof(float))) << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace formiga
