// cpu MatMul against the ref backend for every weight type, over many shapes
// (odd N, C at each type's block granularity, T from 1 to 64).
//
// Two checks per case:
//  1. Kernel exactness: the cpu result equals, to f32 rounding (tol 2e-5 x
//     rms), the ref product of the weights with the activations AS THE CPU
//     QUANTIZED THEM (int8 blocks dequantized back). This isolates the SIMD
//     unpacking and integer dot products from quantization error: any bit
//     or scale mistake shows up as an O(1) error.
//  2. End to end: against the ref product with the f32 activations, max
//     |cpu - ref| <= tol x rms(ref). The error is the int8 rounding of the
//     activations: each moves by a uniform +-d/2, d = amax/127 of its block,
//     so an output's relative error has std ~ amax / (127 sqrt(12) sigma):
//     ~0.006 for Gaussian blocks of 32 (amax ~2.5 sigma), ~0.008 for blocks
//     of 256 (~3.5 sigma). Measured worst cases over these shapes (about
//     10^4 outputs per type): 0.033 (Q4_0) and 0.027 (Q2_K); tol 0.05 is
//     6 sigma. Float weights (no activation quantization): measured 9e-7,
//     tol 2e-5.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/fp16.h"
#include "core/mapped_file.h"
#include "core/quant.h"
#include "kernels/backend.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_test_util.h"

namespace formiga {
namespace {

using testing::RandomVector;
using testing::RelMaxErr;

using testing::MakeWeights;
const auto& kTypes = testing::kWeightTypes;

// The activations the cpu kernels actually consume, dequantized to f32.
std::vector<float> CpuQuantizedActivations(DType type, const std::vector<float>& x, int64_t T, int64_t C) {
  std::vector<float> out(x.size());
  switch (cpu::ActFormatOf(type)) {
    case cpu::ActFormat::kQ8: {
      std::vector<cpu::ActQ8> q(static_cast<size_t>(T * C / kQK));
      cpu::QuantizeActQ8(x.data(), C, 0, T, q.data());
      for (size_t b = 0; b < q.size(); ++b) {
        int sum = 0;
        for (int j = 0; j < kQK; ++j) {
          out[b * kQK + j] = q[b].d * q[b].qs[j];
          sum += q[b].qs[j];
          EXPECT_GE(q[b].qs[j], -127);
        }
        EXPECT_FLOAT_EQ(q[b].s, q[b].d * static_cast<float>(sum));
      }
      return out;
    }
    case cpu::ActFormat::kQ8K: {
      std::vector<BlockQ8_K> q(static_cast<size_t>(T * C / kQK_K));
      cpu::QuantizeActQ8K(x.data(), C, 0, T, q.data());
      DequantizeQ8_K(q.data(), out.data(), static_cast<int64_t>(q.size()));
      for (const BlockQ8_K& b : q) {
        for (int g = 0; g < kQK_K / 16; ++g) {
          int s = 0;
          for (int l = 0; l < 16; ++l) s += b.qs[16 * g + l];
          EXPECT_EQ(b.bsums[g], s);
        }
      }
      return out;
    }
    default:
      return x;
  }
}

// The first n rows of a rows view.
WeightView SliceFirstRows(WeightView w, int64_t n) {
  w.rows = n;
  return w;
}

struct MatMulCase {
  DType type;
  int64_t N, C, T;
};

void CheckMatMul(Backend& cpu_be, Backend& ref_be, const MatMulCase& mc, double tol, double* worst) {
  const std::string what = std::string(DTypeName(mc.type)) + " N=" + std::to_string(mc.N) +
                           " C=" + std::to_string(mc.C) + " T=" + std::to_string(mc.T);
  const auto seed = static_cast<uint32_t>(mc.N * 7919 + mc.C * 31 + mc.T);
  const std::vector<uint8_t> w = MakeWeights(mc.type, mc.N, mc.C, seed);
  const WeightView view{mc.type, w.data(), mc.C, mc.N, DTypeRowBytes(mc.type, static_cast<uint64_t>(mc.C))};
  const std::vector<float> x = RandomVector(static_cast<size_t>(mc.T * mc.C), seed + 1);
  std::vector<float> got(static_cast<size_t>(mc.T * mc.N), -1.0f), ref(got.size()), exact(got.size());
  ASSERT_TRUE(cpu_be.MatMul(view, x.data(), got.data(), mc.T).ok()) << what;
  ASSERT_TRUE(ref_be.MatMul(view, x.data(), ref.data(), mc.T).ok()) << what;
  const std::vector<float> xq = CpuQuantizedActivations(mc.type, x, mc.T, mc.C);
  ASSERT_TRUE(ref_be.MatMul(view, xq.data(), exact.data(), mc.T).ok()) << what;
  EXPECT_LE(RelMaxErr(got, exact), 2e-5) << what << " (kernel vs ref on the same int8 activations)";
  const double err = RelMaxErr(got, ref);
  EXPECT_LE(err, tol) << what;
  *worst = std::max(*worst, err);
}

TEST(CpuMatMulTest, EveryWeightTypeMatchesRef) {
  auto cpu_be = testing::CpuBackendOrDie(3);
  ASSERT_NE(cpu_be, nullptr);
  auto ref_be = MakeRefBackend();
  const int64_t kCs[] = {32, 64, 96, 256, 288, 576, 640, 2048};
  const int64_t kTs[] = {1, 2, 3, 7, 16, 33, 64};
  const int64_t kNs[] = {1, 5, 17, 33, 67};
  for (DType type : kTypes) {
    const int64_t block = GetDTypeTraits(type).block_size;
    const double tol = block == 1 ? 2e-5 : 5e-2;
    double worst = 0;
    int i = 0;
    for (int64_t C : kCs) {
      if (C % block != 0) continue;
      for (int64_t T : kTs) {
        // Keep the ref's O(N C T) work small: big C with few rows.
        const int64_t N = C >= 2048 ? 17 : kNs[i++ % 5];
        CheckMatMul(*cpu_be, *ref_be, MatMulCase{type, N, C, T}, tol, &worst);
      }
    }
    // Odd float widths (tails of the 8/16-wide loops).
    if (block == 1) {
      for (int64_t C : {1, 7, 9, 15, 17, 31, 33}) {
        CheckMatMul(*cpu_be, *ref_be, MatMulCase{type, 9, C, 5}, tol, &worst);
      }
    }
    RecordProperty(std::string("worst_rel_err_") + DTypeName(type), std::to_string(worst));
    std::printf("%-5s worst max|cpu-ref|/rms(ref) = %.3g (tol %.3g)\n", DTypeName(type), worst, tol);
  }
}

TEST(CpuMatMulTest, ResultsDoNotDependOnTheTokenTile) {
  // A token's output is the same alone (T=1) and inside a batch.
  auto be = testing::CpuBackendOrDie(2);
  ASSERT_NE(be, nullptr);
  for (DType type : {DType::kF16, DType::kQ4_1, DType::kQ6_K}) {
    const int64_t N = 37, C = 512, T = 7;
    const std::vector<uint8_t> w = MakeWeights(type, N, C, 5);
    const WeightView view{type, w.data(), C, N, DTypeRowBytes(type, C)};
    const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 6);
    std::vector<float> all(static_cast<size_t>(T * N)), one(static_cast<size_t>(N));
    ASSERT_TRUE(be->MatMul(view, x.data(), all.data(), T).ok());
    for (int64_t t = 0; t < T; ++t) {
      ASSERT_TRUE(be->MatMul(view, x.data() + t * C, one.data(), 1).ok());
      EXPECT_EQ(0, std::memcmp(one.data(), all.data() + t * N, one.size() * sizeof(float)))
          << DTypeName(type) << " token " << t;
    }
  }
}

TEST(CpuMatMulTest, RowResultIsBitIdenticalWhateverTheBatchAndThreads) {
  // The serving invariant: a row's output does not depend on the batch it is
  // computed in (alone, at any position of a batch of any size) nor on the
  // thread count. Covers every weight type, token-tile tails (T = 9: tiles
  // 8 + 1 in the rows-in-lanes kernels, 4 + 4 + 1 elsewhere; its sub-batches
  // every tile of 1..8) and the multi-row decode kernels' row tails (N = 37).
  auto be1 = testing::CpuBackendOrDie(1);
  auto be2 = testing::CpuBackendOrDie(2);
  auto be3 = testing::CpuBackendOrDie(3);
  ASSERT_NE(be1, nullptr);
  for (DType type : kTypes) {
    const int64_t N = 37, C = 512, T = 9;
    const std::vector<uint8_t> w = MakeWeights(type, N, C, 11);
    const WeightView view{type, w.data(), C, N, DTypeRowBytes(type, C)};
    const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 12);
    std::vector<float> solo(static_cast<size_t>(T * N));
    for (int64_t t = 0; t < T; ++t) {
      ASSERT_TRUE(be1->MatMul(view, x.data() + t * C, solo.data() + t * N, 1).ok());
    }
    for (Backend* be : {be1.get(), be2.get(), be3.get()}) {
      // Every contiguous sub-batch [t0, t1) of the T rows.
      for (int64_t t0 = 0; t0 < T; ++t0) {
        for (int64_t t1 = t0 + 1; t1 <= T; ++t1) {
          std::vector<float> got(static_cast<size_t>((t1 - t0) * N));
          ASSERT_TRUE(be->MatMul(view, x.data() + t0 * C, got.data(), t1 - t0).ok());
          EXPECT_EQ(0, std::memcmp(got.data(), solo.data() + t0 * N, got.size() * sizeof(float)))
              << DTypeName(type) << " rows [" << t0 << ", " << t1 << ")";
        }
      }
    }
  }
}

TEST(CpuMatMulTest, KQuantRowGroupsStripsAndTails) {
  // The rows-in-lanes K-quant kernels (cpu_matmul_k8.cc) work on groups of 8
  // rows: for T = 2..15 one super-block at a time for tiles of up to 8
  // tokens (Rows8Tok), from T = 16 on strips of 8 super-blocks whose running
  // sums wait between strips (in y for a full group, in a local buffer for a
  // tail group). C = 2560 (10 super-blocks: strips 8 + 2) with N = 8, 16
  // (full groups only), 21 and 37 (tails of 5), T = 6 and 18 (batches of
  // T and T - 1 tokens), must match ref on the same int8 activations and
  // give every row bit-identical results alone or in a batch, with 1 or 3
  // threads.
  auto be1 = testing::CpuBackendOrDie(1);
  auto be3 = testing::CpuBackendOrDie(3);
  ASSERT_NE(be1, nullptr);
  auto ref_be = MakeRefBackend();
  for (DType type : {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    double worst = 0;
    for (int64_t N : {8, 16, 21, 37}) {
      for (int64_t T : {6, 18}) {
        const int64_t C = 2560;
        CheckMatMul(*be3, *ref_be, MatMulCase{type, N, C, T}, 5e-2, &worst);
        const std::vector<uint8_t> w = MakeWeights(type, N, C, 21);
        const WeightView view{type, w.data(), C, N, DTypeRowBytes(type, C)};
        const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 22);
        std::vector<float> solo(static_cast<size_t>(T * N));
        for (int64_t t = 0; t < T; ++t) {
          ASSERT_TRUE(be1->MatMul(view, x.data() + t * C, solo.data() + t * N, 1).ok());
        }
        for (Backend* be : {be1.get(), be3.get()}) {
          for (int64_t t0 : {0, 1}) {
            std::vector<float> got(static_cast<size_t>((T - t0) * N));
            ASSERT_TRUE(be->MatMul(view, x.data() + t0 * C, got.data(), T - t0).ok());
            EXPECT_EQ(0, std::memcmp(got.data(), solo.data() + t0 * N, got.size() * sizeof(float)))
                << DTypeName(type) << " N=" << N << " tokens [" << t0 << ", " << T << ")";
          }
        }
      }
    }
  }
}

TEST(CpuMatMulTest, LongBatchesKeepTheOneTokenResult) {
  // The rows-in-lanes 32-block kernels (cpu_matmul_q4x8.cc) switch paths with
  // T: one token (DotRows8), 2..15 tokens in tiles of up to 8 (DotRows8Tok),
  // 16+ tokens from each row group unpacked once per call (8-, 4- and
  // 1-token tiles). Batches of 20, 19, 16 and 12 tokens (N = 37: a tail
  // group) must give every row the bits it gets alone, with 1 or 3 threads.
  auto be1 = testing::CpuBackendOrDie(1);
  auto be3 = testing::CpuBackendOrDie(3);
  ASSERT_NE(be1, nullptr);
  for (DType type : {DType::kQ4_0, DType::kQ5_0, DType::kQ8_0}) {
    const int64_t N = 37, C = 512, T = 20;
    const std::vector<uint8_t> w = MakeWeights(type, N, C, 31);
    const WeightView view{type, w.data(), C, N, DTypeRowBytes(type, C)};
    const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 32);
    std::vector<float> solo(static_cast<size_t>(T * N));
    for (int64_t t = 0; t < T; ++t) {
      ASSERT_TRUE(be1->MatMul(view, x.data() + t * C, solo.data() + t * N, 1).ok());
    }
    for (Backend* be : {be1.get(), be3.get()}) {
      for (const auto& [t0, t1] : {std::pair<int64_t, int64_t>{0, 20}, {1, 20}, {4, 20}, {3, 15}}) {
        std::vector<float> got(static_cast<size_t>((t1 - t0) * N));
        ASSERT_TRUE(be->MatMul(view, x.data() + t0 * C, got.data(), t1 - t0).ok());
        EXPECT_EQ(0, std::memcmp(got.data(), solo.data() + t0 * N, got.size() * sizeof(float)))
            << DTypeName(type) << " tokens [" << t0 << ", " << t1 << ")";
      }
    }
  }
}

TEST(CpuMatMulTest, FloatPrefillBlocksKeepTheOneTokenResult) {
  // The f32/f16/bf16 prefill GEMM (cpu_matmul_float.cc) blocks outputs by
  // 48 rows x 24 tokens in 3 x 4 register tiles and sweeps the columns in
  // k-blocks of <= 1024 (even chunks, then odd ones), the accumulators
  // waiting in a scratch between k-blocks. Shapes that cross every one of
  // those boundaries, with tails: C = 4107 (513 chunks: 256 pairs in 4
  // k-blocks, the odd last chunk, 3 tail columns), C = 2048 (2 k-blocks, no
  // tail: the 4-outputs-at-once finish), C = 8 (one unpaired chunk) and
  // C = 5 (no chunk);
  // N = 53 and 50 (row blocks 48 + 5 / 48 + 2), T = 30 and 27 (token blocks
  // 24 + 6 / 24 + 3). Every row must equal its one-token result bit for bit,
  // in any sub-batch and with 1-3 threads, and match ref.
  auto be1 = testing::CpuBackendOrDie(1);
  auto be2 = testing::CpuBackendOrDie(2);
  auto be3 = testing::CpuBackendOrDie(3);
  ASSERT_NE(be1, nullptr);
  auto ref_be = MakeRefBackend();
  struct Shape {
    int64_t N, C, T;
  };
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    double worst = 0;
    for (const Shape& sh : {Shape{53, 4107, 30}, Shape{50, 2048, 27}, Shape{7, 8, 5}, Shape{5, 5, 6}}) {
      const int64_t N = sh.N, C = sh.C, T = sh.T;
      const std::string what =
          std::string(DTypeName(type)) + " N=" + std::to_string(N) + " C=" + std::to_string(C);
      CheckMatMul(*be3, *ref_be, MatMulCase{type, N, C, T}, 2e-5, &worst);
      const std::vector<uint8_t> w = MakeWeights(type, N, C, 31);
      const WeightView view{type, w.data(), C, N, DTypeRowBytes(type, C)};
      const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 32);
      std::vector<float> solo(static_cast<size_t>(T * N));
      for (int64_t t = 0; t < T; ++t) {
        ASSERT_TRUE(be1->MatMul(view, x.data() + t * C, solo.data() + t * N, 1).ok());
      }
      for (Backend* be : {be1.get(), be2.get(), be3.get()}) {
        for (const auto& [t0, t1] : {std::pair<int64_t, int64_t>{0, T}, {1, T}, {2, T - 1}, {T - 2, T}}) {
          std::vector<float> got(static_cast<size_t>((t1 - t0) * N));
          ASSERT_TRUE(be->MatMul(view, x.data() + t0 * C, got.data(), t1 - t0).ok());
          EXPECT_EQ(0, std::memcmp(got.data(), solo.data() + t0 * N, got.size() * sizeof(float)))
              << what << " tokens [" << t0 << ", " << t1 << ")";
        }
      }
    }
  }
}

TEST(CpuMatMulTest, SharedInputJobsEqualSeparateMatMuls) {
  // MatMulShared (q/k/v, gate/up as one job) must give each output exactly
  // what its own MatMul gives: same-format groups (one quantized input, the
  // rows of all matrices split into tasks together, including the decode
  // path's guided tasks that end at a matrix boundary), a mixed-format group
  // (run one weight at a time), several token counts and thread counts.
  const int64_t C = 512;
  struct Group {
    std::vector<DType> types;
    std::vector<int64_t> rows;
  };
  const Group groups[] = {
      {{DType::kQ8_0, DType::kQ8_0, DType::kQ8_0}, {576, 40, 37}},   // ActQ8, row tails
      {{DType::kQ4_K, DType::kQ6_K, DType::kQ4_K}, {264, 256, 8}},   // Q8_K, mixed K types
      {{DType::kQ4_0, DType::kQ4_1, DType::kQ5_0}, {1000, 9, 300}},  // ActQ8, long + short
      {{DType::kF16, DType::kF16}, {130, 77}},                        // f32 input
      {{DType::kF16, DType::kQ8_0, DType::kQ4_K}, {64, 48, 40}},      // three input formats
  };
  for (int threads : {1, 2, 3}) {
    auto be = testing::CpuBackendOrDie(threads);
    ASSERT_NE(be, nullptr);
    for (const Group& g : groups) {
      const int n = static_cast<int>(g.types.size());
      std::vector<std::vector<uint8_t>> w(static_cast<size_t>(n));
      std::vector<WeightView> views;
      for (int i = 0; i < n; ++i) {
        w[static_cast<size_t>(i)] = MakeWeights(g.types[static_cast<size_t>(i)], g.rows[static_cast<size_t>(i)], C, 40 + i);
        views.push_back(WeightView{g.types[static_cast<size_t>(i)], w[static_cast<size_t>(i)].data(), C,
                                   g.rows[static_cast<size_t>(i)], DTypeRowBytes(g.types[static_cast<size_t>(i)], C)});
      }
      for (int64_t T : {1, 3, 8, 20}) {
        const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 50 + static_cast<uint32_t>(T));
        std::vector<std::vector<float>> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
        std::vector<float*> outs;
        for (int i = 0; i < n; ++i) {
          const size_t size = static_cast<size_t>(T * views[static_cast<size_t>(i)].rows);
          want[static_cast<size_t>(i)].resize(size);
          got[static_cast<size_t>(i)].assign(size, -1.0f);
          ASSERT_TRUE(be->MatMul(views[static_cast<size_t>(i)], x.data(), want[static_cast<size_t>(i)].data(), T).ok());
          outs.push_back(got[static_cast<size_t>(i)].data());
        }
        ASSERT_TRUE(be->MatMulShared(views.data(), outs.data(), n, x.data(), T).ok());
        for (int i = 0; i < n; ++i) {
          EXPECT_EQ(0, std::memcmp(got[static_cast<size_t>(i)].data(), want[static_cast<size_t>(i)].data(),
                                   want[static_cast<size_t>(i)].size() * sizeof(float)))
              << "threads " << threads << ", T " << T << ", matrix " << i << " ("
              << DTypeName(g.types[static_cast<size_t>(i)]) << ")";
        }
      }
    }
  }
  // Weights that do not share the input width are refused, not misread.
  auto be = testing::CpuBackendOrDie(2);
  std::vector<uint8_t> a = MakeWeights(DType::kQ8_0, 8, 64, 1), b = MakeWeights(DType::kQ8_0, 8, 96, 2);
  const WeightView bad[] = {{DType::kQ8_0, a.data(), 64, 8, DTypeRowBytes(DType::kQ8_0, 64)},
                            {DType::kQ8_0, b.data(), 96, 8, DTypeRowBytes(DType::kQ8_0, 96)}};
  std::vector<float> x(96), y0(8), y1(8);
  float* const ys[] = {y0.data(), y1.data()};
  const Status st = be->MatMulShared(bad, ys, 2, x.data(), 1);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
}

TEST(CpuMatMulTest, RejectsUnsupportedTypesAndBadWidths) {
  auto be = testing::CpuBackendOrDie(1);
  ASSERT_NE(be, nullptr);
  std::vector<uint8_t> w(1024);
  std::vector<float> x(256), y(4);
  Status st = be->MatMul(WeightView{DType::kIQ4_NL, w.data(), 32, 1, 18}, x.data(), y.data(), 1);
  EXPECT_TRUE(st.IsUnsupported()) << st.ToString();
  EXPECT_NE(st.message().find("iq4_nl"), std::string::npos) << st.message();
  st = be->MatMul(WeightView{DType::kQ4_0, w.data(), 48, 1, 36}, x.data(), y.data(), 1);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
}

// The backend's packed weights (cpu_pack.h), where it packs (avx512-vnni):
// every MatMul through the backend's task split (2 threads) equals the
// rows' bits, in decode, batched decode, prefill and shared-input jobs, and
// GetRows on it gives the rows' embeddings. The ref backend and the avx2
// tier refuse a packed view.
TEST(CpuMatMulTest, PackedWeightsGiveTheRowsBitsThroughTheBackend) {
  auto be = testing::CpuBackendOrDie(2);
  ASSERT_NE(be, nullptr);
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const int64_t C = 256, N = 1000 + 5;  // a tail of 13 rows past the last group
    const std::vector<uint8_t> w = MakeWeights(type, N, C, 11);
    const WeightView rows{type, w.data(), C, N, DTypeRowBytes(type, static_cast<uint64_t>(C))};
    const size_t bytes = be->PackedBytes(rows);
    if (bytes == 0) GTEST_SKIP() << "this CPU's tier keeps GGUF rows (packing is for avx512-vnni)";
    auto pages = HostPages::Allocate(bytes);
    ASSERT_TRUE(pages.ok());
    auto packed = be->PackWeight(rows, pages->data());
    ASSERT_TRUE(packed.ok()) << packed.status().ToString();
    EXPECT_EQ(packed->layout, WeightLayout::kPacked);
    for (int64_t T : {1, 3, 8, 13, 40}) {
      const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 12 + static_cast<uint32_t>(T));
      std::vector<float> want(static_cast<size_t>(T * N)), got(want.size(), -1.0f), got2(want.size(), -1.0f);
      ASSERT_TRUE(be->MatMul(rows, x.data(), want.data(), T).ok());
      ASSERT_TRUE(be->MatMul(*packed, x.data(), got.data(), T).ok());
      EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
          << DTypeName(type) << " T=" << T;
      // Beside a rows matrix in one shared-input job.
      std::vector<float> small(static_cast<size_t>(T * 16));
      const WeightView ws[] = {*packed, SliceFirstRows(rows, 16)};
      float* ys[] = {got2.data(), small.data()};
      ASSERT_TRUE(be->MatMulShared(ws, ys, 2, x.data(), T).ok());
      EXPECT_EQ(0, std::memcmp(want.data(), got2.data(), want.size() * sizeof(float)))
          << DTypeName(type) << " T=" << T << " (shared job)";
    }
    // GetRows reads a packed table (a tied output's copy) as the rows: in
    // groups and in the tail.
    const int32_t ids[] = {3, 0, 17, 999, 1000, 1004};
    std::vector<float> rows_y(6 * static_cast<size_t>(C)), packed_y(rows_y.size(), -1.0f);
    ASSERT_TRUE(be->GetRows(rows, ids, 6, rows_y.data()).ok());
    ASSERT_TRUE(be->GetRows(*packed, ids, 6, packed_y.data()).ok());
    EXPECT_EQ(0, std::memcmp(rows_y.data(), packed_y.data(), rows_y.size() * sizeof(float))) << DTypeName(type);
    auto ref = MakeRefBackend();
    std::vector<float> x(static_cast<size_t>(C)), out(static_cast<size_t>(N));
    EXPECT_TRUE(ref->MatMul(*packed, x.data(), out.data(), 1).IsInvalidArgument());
    // A backend on the avx2 tier neither packs nor reads packed weights.
    setenv("FORMIGA_CPU_ISA", "avx2", 1);
    auto avx2 = MakeCpuBackend(1);
    unsetenv("FORMIGA_CPU_ISA");
    ASSERT_TRUE(avx2.ok()) << avx2.status().ToString();
    EXPECT_EQ((*avx2)->PackedBytes(rows), 0u);
    const Status st = (*avx2)->MatMul(*packed, x.data(), out.data(), 1);
    EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
    EXPECT_NE(st.message().find("packed"), std::string::npos) << st.message();
    EXPECT_TRUE((*avx2)->GetRows(*packed, ids, 1, packed_y.data()).IsInvalidArgument());
  }
}

}  // namespace
}  // namespace formiga
