// The cpu backend's ISA tiers (cpu_isa.h): every tier's integer kernels give
// the AVX2 kernels' results BIT FOR BIT, and match ref.
//
// The VNNI tiers' kernel source is run here twice:
//  - EMULATED, always: isa/emulated_*.cc compile the very bodies the
//    avx512-vnni tier compiles (cpu_matmul_q4x8.cc, cpu_matmul_k8.cc,
//    cpu_matmul_q8.cc, cpu_matmul_k.cc with FORMIGA_CPU_DPBUSD =
//    _mm256_dpbusd_epi32), but for AVX2 only, with
//    SIMDe standing in for vpdpbusd / vpdpwssd. This proves the kernels'
//    logic and our use of the instructions on any AVX2 machine; not the
//    compiler's native code for them, nor their speed.
//  - NATIVE, where the CPU has the tier (avx-vnni, avx512-vnni): the
//    functions the backend dispatches to. On a CPU without it the test says
//    so (stdout and the test's properties) and runs the rest.
//
// The avx512-vnni tier also has 512-bit float MatMuls (F32, F16, BF16;
// isa/avx512_float.cc) and attention (isa/avx512_attention.cc), checked the
// same two ways.
//
// Types: every integer weight type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K)
// through the tier's full entry points (MatMulQ8Rows / MatMulQ8KRows).
// Shapes: every rows-in-lanes path (T = 1 decode; 2..15 batched decode in
// tiles of <= 8; >= 16 prefill) and every one-row path (tiles of 4 tokens,
// 1..3 tails; Q4_1/Q5_1's two-row prefill pass), row tails (N % 8, odd N),
// sub-ranges of rows (the backend's tasks), several column counts.
// Values: random weights and activations, and adversarial ones (raw random
// bytes, all-ones bytes, activations at +-127 and, for Q8_K, -128) that push
// the AVX2 path's int16 partial sums to the bounds stated in the kernel
// files: were any of them to saturate, the (exact) VNNI sums would differ.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/mapped_file.h"
#include "core/quant.h"
#include "kernels/backend.h"
#include "kernels/cpu_isa.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_pack.h"
#include "kernels/cpu_test_util.h"

namespace formiga::cpu::vnni_emulated {
FORMIGA_CPU_TIER_ENTRY_POINTS
}  // namespace formiga::cpu::vnni_emulated

namespace formiga {
namespace {

using Q8Fn = void (*)(const WeightView&, const cpu::ActQ8*, int64_t, float*, int64_t, int64_t);
using Q8KFn = void (*)(const WeightView&, const BlockQ8_K*, int64_t, float*, int64_t, int64_t);

struct Tier {
  std::string name;
  Q8Fn q8;
  Q8KFn q8k;
  bool runnable;
  std::string why_not;
};

// The tiers to compare with avx2: the emulation always, the native builds
// where this CPU has them.
std::vector<Tier> Tiers() {
  std::vector<Tier> tiers;
  tiers.push_back({"vnni (SIMDe emulation)", cpu::vnni_emulated::MatMulQ8Rows, cpu::vnni_emulated::MatMulQ8KRows,
                   true, ""});
  const auto native = [&](CpuIsa isa, Q8Fn q8, Q8KFn q8k) {
    const bool ok = CpuSupportsIsa(isa);
    std::string why;
    if (!ok) why = ChooseCpuIsa(CpuIsaName(isa)).status().message();
    tiers.push_back({std::string(CpuIsaName(isa)) + " (native)", q8, q8k, ok, why});
  };
  native(CpuIsa::kAvxVnni, cpu::avx_vnni::MatMulQ8Rows, cpu::avx_vnni::MatMulQ8KRows);
  native(CpuIsa::kAvx512Vnni, cpu::avx512_vnni::MatMulQ8Rows, cpu::avx512_vnni::MatMulQ8KRows);
  return tiers;
}

// Says, once per test, which native tiers could not run on this machine.
void ReportNativeRuns(const std::vector<Tier>& tiers) {
  for (const Tier& t : tiers) {
    const std::string what = t.runnable ? "ran" : "NOT RUN on this machine: " + t.why_not;
    std::printf("tier %-26s %s\n", t.name.c_str(), what.c_str());
    ::testing::Test::RecordProperty("tier " + t.name, t.runnable ? "ran" : "not run: CPU lacks it");
  }
}

bool IsK(DType type) { return GetDTypeTraits(type).block_size == kQK_K; }

// Quantized activations of either format, kept as bytes.
struct Acts {
  std::vector<cpu::ActQ8> q8;
  std::vector<BlockQ8_K> q8k;
};

Acts Quantize(DType type, const std::vector<float>& x, int64_t T, int64_t C) {
  Acts a;
  if (IsK(type)) {
    a.q8k.resize(static_cast<size_t>(T * C / kQK_K));
    cpu::QuantizeActQ8K(x.data(), C, 0, T, a.q8k.data());
  } else {
    a.q8.resize(static_cast<size_t>(T * C / kQK));
    cpu::QuantizeActQ8(x.data(), C, 0, T, a.q8.data());
  }
  return a;
}

// The activations as f32 (for ref).
std::vector<float> Dequantized(DType type, const Acts& a, int64_t T, int64_t C) {
  std::vector<float> out(static_cast<size_t>(T * C));
  if (IsK(type)) {
    DequantizeQ8_K(a.q8k.data(), out.data(), static_cast<int64_t>(a.q8k.size()));
  } else {
    for (size_t b = 0; b < a.q8.size(); ++b) {
      for (int j = 0; j < kQK; ++j) out[b * kQK + j] = a.q8[b].d * a.q8[b].qs[j];
    }
  }
  return out;
}

// y rows [n0, n1) (every token) through one build of the kernels.
std::vector<float> Run(DType type, Q8Fn q8, Q8KFn q8k, const WeightView& w, const Acts& a, int64_t T, int64_t n0,
                       int64_t n1) {
  std::vector<float> y(static_cast<size_t>(T * w.rows), -7.0f);
  if (IsK(type)) {
    q8k(w, a.q8k.data(), T, y.data(), n0, n1);
  } else {
    q8(w, a.q8.data(), T, y.data(), n0, n1);
  }
  return y;
}

constexpr DType kTierTypes[] = {DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ8_0,
                                DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

// Compares every runnable tier with avx2 on one case (bit for bit) and the
// avx2 result with ref on the same int8 activations (2e-5 x rms, the kernel
// tolerance of cpu_matmul_test). False after the first mismatch (reported).
bool CheckCase(const std::vector<Tier>& tiers, Backend& ref, DType type, const std::vector<uint8_t>& wbytes,
               int64_t N, int64_t C, const Acts& a, int64_t T, const std::string& what) {
  const WeightView w{type, wbytes.data(), C, N, DTypeRowBytes(type, static_cast<uint64_t>(C))};
  // Whole range, and the backend's task shapes: a split at a 16-row multiple.
  std::vector<std::pair<int64_t, int64_t>> ranges = {{0, N}};
  if (N > 16) ranges = {{0, 16}, {16, N}};
  std::vector<float> base(static_cast<size_t>(T * N), -7.0f);
  for (const auto& [n0, n1] : ranges) {
    const std::vector<float> part = Run(type, cpu::avx2::MatMulQ8Rows, cpu::avx2::MatMulQ8KRows, w, a, T, n0, n1);
    for (int64_t t = 0; t < T; ++t) {
      std::memcpy(base.data() + t * N + n0, part.data() + t * N + n0, static_cast<size_t>(n1 - n0) * sizeof(float));
    }
    for (const Tier& tier : tiers) {
      if (!tier.runnable) continue;
      const std::vector<float> got = Run(type, tier.q8, tier.q8k, w, a, T, n0, n1);
      for (int64_t t = 0; t < T; ++t) {
        if (std::memcmp(got.data() + t * N + n0, part.data() + t * N + n0,
                        static_cast<size_t>(n1 - n0) * sizeof(float)) != 0) {
          ADD_FAILURE() << tier.name << " vs avx2: " << what << " token " << t << " rows [" << n0 << ", " << n1
                        << ")";
          return false;
        }
      }
    }
  }
  const std::vector<float> xd = Dequantized(type, a, T, C);
  std::vector<float> exact(base.size());
  EXPECT_TRUE(ref.MatMul(w, xd.data(), exact.data(), T).ok());
  const double err = testing::RelMaxErr(base, exact);
  EXPECT_LE(err, 2e-5) << what << " (vs ref on the same int8 activations)";
  return err <= 2e-5;
}

TEST(CpuIsaTest, TiersGiveTheAvx2BitsOnRandomShapes) {
  if (!CpuSupportsIsa(CpuIsa::kAvx2)) GTEST_SKIP() << "no AVX2: no cpu kernel can run here";
  const std::vector<Tier> tiers = Tiers();
  ReportNativeRuns(tiers);
  auto ref = MakeRefBackend();
  const int64_t kTs[] = {1, 2, 3, 5, 8, 9, 15, 16, 17, 33};
  const int64_t kNs[] = {1, 7, 8, 9, 16, 37};
  int cases = 0;
  for (DType type : kTierTypes) {
    const std::vector<int64_t> Cs = IsK(type) ? std::vector<int64_t>{256, 768, 2560} : std::vector<int64_t>{32, 96, 512};
    int i = 0;
    bool ok = true;  // one failure per type is enough
    for (int64_t C : Cs) {
      for (int64_t T : kTs) {
        if (!ok) break;
        const int64_t N = kNs[i++ % 6];
        const auto seed = static_cast<uint32_t>(N * 7919 + C * 31 + T);
        const std::vector<uint8_t> w = testing::MakeWeights(type, N, C, seed);
        const std::vector<float> x = testing::RandomVector(static_cast<size_t>(T * C), seed + 1);
        const Acts a = Quantize(type, x, T, C);
        const std::string what = std::string(DTypeName(type)) + " N=" + std::to_string(N) +
                                 " C=" + std::to_string(C) + " T=" + std::to_string(T);
        ok = CheckCase(tiers, *ref, type, w, N, C, a, T, what);
        ++cases;
      }
    }
  }
  std::printf("%d cases, %zu tiers compared with avx2\n", cases, tiers.size());
}

// Weights made of raw bytes (every quant and scale bit pattern) with small
// finite f16 scales, so the integer sums reach their extremes.
std::vector<uint8_t> RawWeights(DType type, int64_t N, int64_t C, const std::function<uint8_t(std::mt19937&)>& byte,
                                uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t row_bytes = DTypeRowBytes(type, static_cast<uint64_t>(C));
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(N));
  for (uint8_t& b : w) b = byte(rng);
  const size_t block_bytes = GetDTypeTraits(type).type_size;
  const uint16_t d = F32ToF16(0.001f);
  // The f16 scale fields: at the start (Q4_0, Q5_0, Q8_0: d; Q4_1, Q5_1:
  // d, m; Q4_K, Q5_K: d, dmin), at the end (Q6_K, Q3_K: d; Q2_K: d, dmin).
  for (size_t off = 0; off < w.size(); off += block_bytes) {
    switch (type) {
      case DType::kQ6_K:
      case DType::kQ3_K: std::memcpy(&w[off + block_bytes - 2], &d, 2); break;
      case DType::kQ2_K:
        std::memcpy(&w[off + block_bytes - 4], &d, 2);
        std::memcpy(&w[off + block_bytes - 2], &d, 2);
        break;
      case DType::kQ4_1:
      case DType::kQ5_1:
      case DType::kQ4_K:
      case DType::kQ5_K:
        std::memcpy(&w[off], &d, 2);
        std::memcpy(&w[off + 2], &d, 2);
        break;
      default: std::memcpy(&w[off], &d, 2); break;
    }
  }
  return w;
}

// Activations with every quant from `q` (d = 1/127; sums kept consistent).
Acts RawActs(DType type, int64_t T, int64_t C, const std::function<int8_t(std::mt19937&)>& q, uint32_t seed) {
  std::mt19937 rng(seed);
  Acts a;
  if (IsK(type)) {
    a.q8k.resize(static_cast<size_t>(T * C / kQK_K));
    for (BlockQ8_K& b : a.q8k) {
      b.d = 1.0f / 127;
      for (int g = 0; g < kQK_K / 16; ++g) {
        int s = 0;
        for (int l = 0; l < 16; ++l) s += b.qs[16 * g + l] = q(rng);
        b.bsums[g] = static_cast<int16_t>(s);
      }
    }
  } else {
    a.q8.resize(static_cast<size_t>(T * C / kQK));
    for (cpu::ActQ8& b : a.q8) {
      b.d = 1.0f / 127;
      int s = 0;
      for (int j = 0; j < kQK; ++j) s += b.qs[j] = q(rng);
      b.qsum = s;
      b.s = b.d * static_cast<float>(s);
    }
  }
  return a;
}

TEST(CpuIsaTest, TiersGiveTheAvx2BitsAtTheIntegerBounds) {
  if (!CpuSupportsIsa(CpuIsa::kAvx2)) GTEST_SKIP() << "no AVX2: no cpu kernel can run here";
  const std::vector<Tier> tiers = Tiers();
  ReportNativeRuns(tiers);
  auto ref = MakeRefBackend();
  struct Bytes {
    const char* what;
    std::function<uint8_t(std::mt19937&)> fn;
  };
  const Bytes kWeights[] = {
      {"random bytes", [](std::mt19937& r) { return static_cast<uint8_t>(r()); }},
      {"all 0xff", [](std::mt19937&) { return uint8_t{0xff}; }},
      {"all 0x80", [](std::mt19937&) { return uint8_t{0x80}; }},
  };
  struct Quants {
    const char* what;
    std::function<int8_t(std::mt19937&)> fn;
    bool k_only;  // -128: Q8_K's bounds allow it, ActQ8 never holds it
  };
  const Quants kActs[] = {
      {"+127", [](std::mt19937&) { return int8_t{127}; }, false},
      {"-127", [](std::mt19937&) { return int8_t{-127}; }, false},
      {"+-127 random", [](std::mt19937& r) { return static_cast<int8_t>(r() % 2 ? 127 : -127); }, false},
      {"random in [-127, 127]", [](std::mt19937& r) { return static_cast<int8_t>(static_cast<int>(r() % 255) - 127); },
       false},
      {"-128", [](std::mt19937&) { return int8_t{-128}; }, true},
  };
  for (DType type : kTierTypes) {
    const int64_t C = IsK(type) ? 512 : 128, N = 13;
    bool ok = true;  // one failure per type is enough
    for (const Bytes& wb : kWeights) {
      const std::vector<uint8_t> w = RawWeights(type, N, C, wb.fn, 3);
      for (const Quants& q : kActs) {
        if (q.k_only && !IsK(type)) continue;
        for (int64_t T : {1, 5, 17}) {
          if (!ok) break;
          const Acts a = RawActs(type, T, C, q.fn, 4);
          const std::string what = std::string(DTypeName(type)) + " weights " + wb.what + ", activations " + q.what +
                                   ", T=" + std::to_string(T);
          ok = CheckCase(tiers, *ref, type, w, N, C, a, T, what);
        }
      }
    }
  }
}

// Packed weights (cpu_pack.h): the 512-bit tiers' Q4_0 / Q8_0 / Q4_K / Q5_K /
// Q6_K kernels read the packed layout and give the avx2 kernels' bits from
// the rows, on every path (decode, batched tiles, prefill), with row tails (N % 16 rows stored
// as rows), ranges that start or end inside a group, random weights and
// raw bytes at the integer bounds (Q8_0 quants of -128 included: the
// offset-binary sums must stay exact).
TEST(CpuIsaTest, PackedWeightsGiveTheRowsBits) {
  if (!CpuSupportsIsa(CpuIsa::kAvx2)) GTEST_SKIP() << "no AVX2: no cpu kernel can run here";
  std::vector<Tier> tiers = {
      {"avx512-vnni (SIMDe emulation)", cpu::vnni_emulated::MatMulQ8Rows, cpu::vnni_emulated::MatMulQ8KRows, true, ""}};
  const bool native = CpuSupportsIsa(CpuIsa::kAvx512Vnni);
  tiers.push_back({"avx512-vnni (native)", cpu::avx512_vnni::MatMulQ8Rows, cpu::avx512_vnni::MatMulQ8KRows, native,
                   native ? "" : ChooseCpuIsa("avx512-vnni").status().message()});
  ReportNativeRuns(tiers);
  const int64_t kTs[] = {1, 2, 7, 8, 9, 15, 16, 33};
  const int64_t kNs[] = {16, 17, 32, 45, 64};
  const auto raw_byte = [](std::mt19937& r) { return static_cast<uint8_t>(r()); };
  const auto pm127 = [](std::mt19937& r) { return static_cast<int8_t>(r() % 2 ? 127 : -127); };
  int cases = 0;
  for (DType type : {DType::kQ4_0, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    int i = 0;
    bool ok = true;  // one failure per type is enough
    const std::vector<int64_t> Cs = IsK(type) ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 512};
    for (int64_t C : Cs) {
      for (int64_t T : kTs) {
        for (bool raw : {false, true}) {
          if (!ok) break;
          const int64_t N = kNs[i++ % 5];
          const auto seed = static_cast<uint32_t>(N * 7919 + C * 31 + T + raw);
          const std::vector<uint8_t> w =
              raw ? RawWeights(type, N, C, raw_byte, seed) : testing::MakeWeights(type, N, C, seed);
          const Acts a = raw ? RawActs(type, T, C, pm127, seed + 1)
                             : Quantize(type, testing::RandomVector(static_cast<size_t>(T * C), seed + 1), T, C);
          const WeightView rows{type, w.data(), C, N, DTypeRowBytes(type, static_cast<uint64_t>(C))};
          const size_t bytes = cpu::PackedBytes(rows);
          ASSERT_EQ(bytes, w.size());
          auto buf = HostPages::Allocate(bytes);
          ASSERT_TRUE(buf.ok()) << buf.status().ToString();
          auto* out = static_cast<uint8_t*>(buf->data());
          cpu::PackGroups(rows, 0, N / cpu::kPackRows, out);
          cpu::PackTail(rows, out);
          const WeightView packed = cpu::PackedView(rows, out);
          const std::vector<float> base = formiga::Run(type, cpu::avx2::MatMulQ8Rows, cpu::avx2::MatMulQ8KRows, rows, a, T, 0, N);
          const std::string what = std::string(DTypeName(type)) + (raw ? " raw bytes" : "") +
                                   " N=" + std::to_string(N) + " C=" + std::to_string(C) + " T=" + std::to_string(T);
          // The whole matrix, the backend's task shapes, and a range that
          // cuts the first and last groups.
          const std::pair<int64_t, int64_t> ranges[] = {{0, N}, {0, 16}, {16, N}, {5, N - 3}};
          for (const Tier& tier : tiers) {
            for (const auto& [n0, n1] : ranges) {
              if (!tier.runnable || n1 <= n0 || !ok) continue;
              const std::vector<float> got = formiga::Run(type, tier.q8, tier.q8k, packed, a, T, n0, n1);
              for (int64_t t = 0; t < T && ok; ++t) {
                if (std::memcmp(got.data() + t * N + n0, base.data() + t * N + n0,
                                static_cast<size_t>(n1 - n0) * sizeof(float)) != 0) {
                  ADD_FAILURE() << tier.name << " packed vs avx2 rows: " << what << " token " << t << " rows [" << n0
                                << ", " << n1 << ")";
                  ok = false;
                }
              }
              // Nothing outside the range is written.
              for (int64_t t = 0; t < T && ok; ++t) {
                for (int64_t n = 0; n < N; ++n) {
                  if ((n < n0 || n >= n1) && got[static_cast<size_t>(t * N + n)] != -7.0f) {
                    ADD_FAILURE() << tier.name << " wrote row " << n << " outside [" << n0 << ", " << n1 << "): " << what;
                    ok = false;
                    break;
                  }
                }
              }
            }
          }
          ++cases;
        }
      }
    }
  }
  std::printf("%d packed cases\n", cases);
}

TEST(CpuIsaTest, ChoosesAndReportsTheTier) {
  const Result<CpuIsa> best = DetectCpuIsa();
  if (!best.ok()) GTEST_SKIP() << best.status().ToString();
  std::printf("this CPU's best tier: %s\n", CpuIsaName(*best));
  RecordProperty("best_tier", CpuIsaName(*best));
  EXPECT_EQ(*ChooseCpuIsa(""), *best);
  EXPECT_EQ(*ChooseCpuIsa("auto"), *best);
  ASSERT_TRUE(ChooseCpuIsa("avx2").ok());
  EXPECT_EQ(*ChooseCpuIsa("avx2"), CpuIsa::kAvx2);

  const Result<CpuIsa> bad = ChooseCpuIsa("avx1024");
  EXPECT_TRUE(bad.status().IsInvalidArgument()) << bad.status().ToString();
  EXPECT_NE(bad.status().message().find("avx512-vnni"), std::string::npos) << bad.status().message();

  for (CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kAvxVnni, CpuIsa::kAvx512Vnni}) {
    const Result<CpuIsa> got = ChooseCpuIsa(CpuIsaName(isa));
    auto be = MakeCpuBackend(1, isa);
    if (CpuSupportsIsa(isa)) {
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_TRUE(be.ok()) << be.status().ToString();
      ASSERT_TRUE(CpuBackendIsa(**be).has_value());
      EXPECT_EQ(*CpuBackendIsa(**be), isa);
    } else {
      // A tier the CPU lacks is an error that says so, never a SIGILL later.
      EXPECT_TRUE(got.status().IsUnsupported()) << got.status().ToString();
      EXPECT_NE(got.status().message().find("lacks"), std::string::npos) << got.status().message();
      EXPECT_TRUE(be.status().IsUnsupported()) << be.status().ToString();
      std::printf("tier %s: refused as expected: %s\n", CpuIsaName(isa), got.status().message().c_str());
    }
  }
  EXPECT_FALSE(CpuBackendIsa(*MakeRefBackend()).has_value());
}

TEST(CpuIsaTest, EnvironmentForcesATier) {
  if (!CpuSupportsIsa(CpuIsa::kAvx2)) GTEST_SKIP() << "no AVX2";
  // NOTE: gtest_discover_tests runs each test in its own process, so the
  // variable does not leak into other tests.
  ASSERT_EQ(0, setenv("FORMIGA_CPU_ISA", "avx2", 1));
  auto be = MakeCpuBackend(1);
  ASSERT_TRUE(be.ok()) << be.status().ToString();
  EXPECT_EQ(*CpuBackendIsa(**be), CpuIsa::kAvx2);
  ASSERT_EQ(0, setenv("FORMIGA_CPU_ISA", "sse9", 1));
  EXPECT_TRUE(MakeCpuBackend(1).status().IsInvalidArgument());
  if (!CpuSupportsIsa(CpuIsa::kAvx512Vnni)) {
    ASSERT_EQ(0, setenv("FORMIGA_CPU_ISA", "avx512-vnni", 1));
    EXPECT_TRUE(MakeCpuBackend(1).status().IsUnsupported());
  }
  unsetenv("FORMIGA_CPU_ISA");
}

// The avx512-vnni tier's float MatMuls (isa/avx512_float.cc) against the
// AVX2 ones, bit for bit: emulated always, native where the CPU has AVX-512.
// Shapes: every column split (C / 8 chunks even and odd, one chunk, a C % 8
// tail, k-blocks of the GEMM), the decode path (T = 1) and the GEMM's token
// and row tiles and their tails, sub-ranges of rows.
TEST(CpuIsaTest, Avx512FloatMatMulsGiveTheAvx2Bits) {
  if (!CpuSupportsIsa(CpuIsa::kAvx2)) GTEST_SKIP() << "no AVX2: no cpu kernel can run here";
  struct Fns {
    std::string name;
    void (*rows)(const WeightView&, const float*, int64_t, float*, int64_t, int64_t);
  };
  std::vector<Fns> fns = {{"avx512 (SIMDe emulation)", cpu::avx512_emulated::MatMulFloatRows}};
  if (CpuSupportsIsa(CpuIsa::kAvx512Vnni)) {
    fns.push_back({"avx512 (native)", cpu::avx512::MatMulFloatRows});
  } else {
    std::printf("avx512 float: native run not possible on this CPU (the emulation ran)\n");
  }
  std::mt19937 rng(77);
  int cases = 0;
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (int64_t C : {8, 16, 24, 40, 43, 64, 136, 1032, 2048, 2056}) {
      for (int64_t T : {1, 2, 5, 6, 7, 13, 25}) {
        const int64_t N = std::uniform_int_distribution<int64_t>(1, 60)(rng);
        const std::vector<uint8_t> w = testing::MakeWeights(type, N, C, static_cast<uint32_t>(rng()));
        const WeightView view{type, w.data(), C, N, DTypeRowBytes(type, static_cast<uint64_t>(C))};
        const std::vector<float> x = testing::RandomVector(static_cast<size_t>(T * C), static_cast<uint32_t>(rng()));
        std::vector<std::pair<int64_t, int64_t>> ranges = {{0, N}};
        if (N > 16) ranges.emplace_back(16, N);
        for (const auto& [n0, n1] : ranges) {
          std::vector<float> want(static_cast<size_t>(T * N), -7.0f);
          cpu::MatMulFloatRows(view, x.data(), T, want.data(), n0, n1);
          for (const Fns& f : fns) {
            std::vector<float> got(want.size(), -7.0f);
            f.rows(view, x.data(), T, got.data(), n0, n1);
            ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
                << f.name << " vs avx2: " << DTypeName(type) << " N=" << N << " C=" << C << " T=" << T << " rows ["
                << n0 << ", " << n1 << ")";
          }
          ++cases;
        }
      }
    }
  }
  std::printf("%d float cases compared with avx2\n", cases);
}

// The avx512-vnni tier's attention (cpu_attention.cc built as
// isa/avx512_attention.cc) against the AVX2 build, bit for bit: emulated
// always, native where the CPU has AVX-512. Cases: GQA groups of 1..8 heads
// (blocks of 4 heads and their 1..3 tails), head sizes with 16-column steps
// in blocks of 4 or 8 and tails (64, 80, 96, 128, 256) and the ones the
// 512-bit build leaves to the 256-bit code (D % 16 != 0: 20, 40), every KV
// type, sliding windows, softcap, and item ranges that cut GQA groups.
TEST(CpuIsaTest, Avx512AttentionGivesTheAvx2Bits) {
  if (!CpuSupportsIsa(CpuIsa::kAvx2)) GTEST_SKIP() << "no AVX2: no cpu kernel can run here";
  using AttnFn = void (*)(const float*, const KvLayerView&, const AttentionBatch&, const AttentionParams&, float*,
                          int64_t, int64_t, float*);
  std::vector<std::pair<std::string, AttnFn>> fns = {{"avx512 (SIMDe emulation)", cpu::avx512_emulated::AttentionItems}};
  if (CpuSupportsIsa(CpuIsa::kAvx512Vnni)) {
    fns.emplace_back("avx512 (native)", cpu::avx512::AttentionItems);
  } else {
    std::printf("avx512 attention: native run not possible on this CPU (the emulation ran)\n");
  }
  auto ref_be = MakeRefBackend();
  struct Case {
    int64_t H, KH, D, window;
    float softcap;
    DType type;
  };
  const Case cases[] = {
      {4, 4, 64, 0, 0.0f, DType::kF16},   {9, 3, 64, 0, 0.0f, DType::kF16},    {8, 1, 64, 0, 0.0f, DType::kF16},
      {10, 2, 128, 0, 0.0f, DType::kF32}, {4, 1, 256, 0, 0.0f, DType::kF16},   {6, 2, 80, 5, 0.0f, DType::kF16},
      {7, 7, 96, 70, 0.0f, DType::kF32},  {8, 2, 64, 0, 50.0f, DType::kF16},   {6, 3, 80, 0, 1.5f, DType::kF32},
      {4, 1, 20, 9, 0.0f, DType::kF16},   {4, 2, 40, 0, 0.0f, DType::kF16},    {9, 3, 64, 0, 0.0f, DType::kQ8_0},
      {4, 1, 256, 7, 0.0f, DType::kQ8_0}, {8, 2, 128, 0, 30.0f, DType::kQ8_0}, {16, 2, 64, 0, 0.0f, DType::kF16},
  };
  uint32_t seed = 300;
  int compared = 0;
  for (const Case& c : cases) {
    testing::PagedSetup s({150, 37, 66}, {33, 1, 7}, c.H, c.KH, c.D, c.type, *ref_be, seed++);
    for (float& x : s.q) x *= 3.0f;
    const AttentionParams p{c.H, c.KH, c.D, 1.0f / std::sqrt(static_cast<float>(c.D)), c.softcap, c.window};
    const int64_t items = s.batch.n_tokens * c.H;
    std::vector<float> scratch(static_cast<size_t>(cpu::AttentionScratchFloats(c.D)));
    std::vector<float> want(s.q.size(), -7.0f);
    cpu::AttentionItems(s.q.data(), s.view(), s.batch, p, want.data(), 0, items, scratch.data());
    for (int64_t step : {items, int64_t{5}, int64_t{3}}) {  // item ranges as the backend's tasks cut them
      for (const auto& [name, fn] : fns) {
        std::vector<float> got(s.q.size(), -7.0f);
        for (int64_t i0 = 0; i0 < items; i0 += step) {
          fn(s.q.data(), s.view(), s.batch, p, got.data(), i0, std::min(items, i0 + step), scratch.data());
        }
        ASSERT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float)))
            << name << " vs avx2: H=" << c.H << " KH=" << c.KH << " D=" << c.D << " window=" << c.window
            << " softcap=" << c.softcap << " " << DTypeName(c.type) << " items per call " << step;
        ++compared;
      }
    }
  }
  std::printf("%d attention runs compared with avx2\n", compared);
}

TEST(CpuIsaTest, EveryRunnableTierBackendMatchesAvx2) {
  // The whole MatMul through the backend (activation quantization, task
  // split, the tier's kernels and the one-row fallbacks) for each tier this
  // CPU runs natively.
  if (!CpuSupportsIsa(CpuIsa::kAvx2)) GTEST_SKIP() << "no AVX2";
  auto avx2 = MakeCpuBackend(2, CpuIsa::kAvx2);
  ASSERT_TRUE(avx2.ok());
  int native = 0;
  for (CpuIsa isa : {CpuIsa::kAvxVnni, CpuIsa::kAvx512Vnni}) {
    if (!CpuSupportsIsa(isa)) {
      std::printf("tier %s: native backend run not possible on this CPU (the emulated kernels ran above)\n",
                  CpuIsaName(isa));
      continue;
    }
    ++native;
    auto be = MakeCpuBackend(2, isa);
    ASSERT_TRUE(be.ok());
    for (DType type : testing::kWeightTypes) {
      for (int64_t T : {1, 4, 9, 40}) {
        const int64_t N = 75, C = 512;
        const std::vector<uint8_t> w = testing::MakeWeights(type, N, C, 41);
        const WeightView view{type, w.data(), C, N, DTypeRowBytes(type, C)};
        const std::vector<float> x = testing::RandomVector(static_cast<size_t>(T * C), 42);
        std::vector<float> y0(static_cast<size_t>(T * N)), y1(y0.size());
        ASSERT_TRUE((*avx2)->MatMul(view, x.data(), y0.data(), T).ok());
        ASSERT_TRUE((*be)->MatMul(view, x.data(), y1.data(), T).ok());
        EXPECT_EQ(0, std::memcmp(y0.data(), y1.data(), y0.size() * sizeof(float)))
            << CpuIsaName(isa) << " " << DTypeName(type) << " T=" << T;
      }
    }
  }
  RecordProperty("native_tiers_run", native);
}

}  // namespace
}  // namespace formiga
