// Properties of the block formats that do not need a reference file:
// round-trip error bounds per type on random data, edge cases (zeros,
// constants, one-signed rows, large and tiny magnitudes), argument errors,
// and the fp16/bf16 conversions (exhaustively where the space is small).
//
// Error bounds (relative RMSE = RMS(dequant(quant(x)) - x) / RMS(x), x ~
// N(0, 1), 64 rows of 1024, worst row): measured values in the comment after
// each bound; the bounds leave 1.25x headroom (the data is seeded, so this
// only absorbs compiler/libm differences in the random generator's output).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/fp16.h"
#include "core/quant.h"

namespace formiga {
namespace {

struct Bound {
  DType type;
  double max_rel_rmse;  // relative RMSE on N(0,1) data
  double max_rel_abs;   // max |error| / max |x| over a row
};

// NOTE: the ordering is the expected one: per bits/weight the K-quants
// (Q4_K 4.5 bpw, Q5_K 5.5) beat the legacy formats (Q4_1 5.0, Q5_1 6.0).
constexpr Bound kBounds[] = {
    // type          rmse    max     measured (rmse, max) with this seed set
    {DType::kF32, 0.0, 0.0},
    {DType::kF16, 0.0003, 0.00045},  // 0.00022, 0.00034 (2^-11 relative)
    {DType::kBF16, 0.0022, 0.0037},  // 0.00174, 0.00292 (2^-8 relative)
    {DType::kQ8_0, 0.0072, 0.0051},  // 0.00576, 0.00406
    {DType::kQ8_1, 0.0072, 0.0051},  // 0.00576, 0.00406
    {DType::kQ8_K, 0.0095, 0.0050},  // 0.00761, 0.00394 (one scale per 256)
    {DType::kQ6_K, 0.0235, 0.0200},  // 0.01875, 0.01604
    {DType::kQ5_1, 0.0510, 0.0390},  // 0.04098, 0.03102
    {DType::kQ5_0, 0.0580, 0.0680},  // 0.04615, 0.05404
    {DType::kQ5_K, 0.0490, 0.0555},  // 0.03891, 0.04432
    {DType::kQ4_1, 0.1050, 0.0825},  // 0.08394, 0.06582
    {DType::kQ4_0, 0.1150, 0.1410},  // 0.09189, 0.11276
    {DType::kQ4_K, 0.0950, 0.0960},  // 0.07579, 0.07650
    {DType::kQ3_K, 0.1990, 0.2200},  // 0.15897, 0.17584
    {DType::kQ2_K, 0.3960, 0.4510},  // 0.31696, 0.36056
};

constexpr DType kAllTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0, DType::kQ4_1,
                               DType::kQ5_0, DType::kQ5_1, DType::kQ8_0, DType::kQ8_1, DType::kQ2_K,
                               DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kQ8_K};

std::vector<float> RoundTrip(DType type, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(DTypeRowBytes(type, n));
  std::vector<float> y(n);
  EXPECT_TRUE(QuantizeRow(type, x.data(), q.data(), n).ok());
  EXPECT_TRUE(DequantizeRow(type, q.data(), y.data(), n).ok());
  return y;
}

struct ErrorStats {
  double rel_rmse = 0;
  double rel_max = 0;
};

ErrorStats Measure(const std::vector<float>& x, const std::vector<float>& y) {
  double se = 0, sx = 0, max_err = 0, max_x = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(y[i]) - x[i];
    se += e * e;
    sx += static_cast<double>(x[i]) * x[i];
    max_err = std::max(max_err, std::fabs(e));
    max_x = std::max(max_x, std::fabs(static_cast<double>(x[i])));
  }
  ErrorStats s;
  s.rel_rmse = sx > 0 ? std::sqrt(se / sx) : std::sqrt(se);
  s.rel_max = max_x > 0 ? max_err / max_x : max_err;
  return s;
}

std::vector<float> Gaussian(int64_t n, uint32_t seed, float sigma = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

TEST(QuantTest, RoundTripErrorWithinBoundsOnGaussianRows) {
  for (const Bound& b : kBounds) {
    double worst_rmse = 0, worst_max = 0;
    for (uint32_t row = 0; row < 64; ++row) {
      std::vector<float> x = Gaussian(1024, 1000 + row);
      ErrorStats s = Measure(x, RoundTrip(b.type, x));
      worst_rmse = std::max(worst_rmse, s.rel_rmse);
      worst_max = std::max(worst_max, s.rel_max);
    }
    EXPECT_LE(worst_rmse, b.max_rel_rmse) << DTypeName(b.type);
    EXPECT_LE(worst_max, b.max_rel_abs) << DTypeName(b.type);
    // Printed so that the bounds above can be re-tuned from a test log.
    std::printf("  %-5s worst relative RMSE %.5f, worst max|err|/max|x| %.5f\n", DTypeName(b.type),
                worst_rmse, worst_max);
  }
}

TEST(QuantTest, AllZerosStayExactlyZero) {
  std::vector<float> x(1024, 0.0f);
  for (DType t : kAllTypes) {
    std::vector<float> y = RoundTrip(t, x);
    for (float v : y) ASSERT_EQ(v, 0.0f) << DTypeName(t);
  }
}

TEST(QuantTest, ConstantAndOneSignedRows) {
  for (DType t : kAllTypes) {
    for (float c : {0.125f, -3.0f, 1.0f}) {
      std::vector<float> x(512, c);
      ErrorStats s = Measure(x, RoundTrip(t, x));
      // Constant rows sit on a level of every format up to the f16 scale.
      EXPECT_LE(s.rel_max, 0.01) << DTypeName(t) << " constant " << c;
    }
    // Only negative (or only positive) values: the asymmetric formats' min
    // carries the offset, the symmetric ones the sign of the scale.
    for (float sign : {-1.0f, 1.0f}) {
      std::vector<float> x = Gaussian(1024, 7);
      for (float& v : x) v = sign * (std::fabs(v) + 0.5f);
      ErrorStats s = Measure(x, RoundTrip(t, x));
      const Bound* b = nullptr;
      for (const Bound& bb : kBounds) b = bb.type == t ? &bb : b;
      ASSERT_NE(b, nullptr);
      EXPECT_LE(s.rel_rmse, b->max_rel_rmse + 1e-9) << DTypeName(t) << " sign " << sign;
    }
  }
}

TEST(QuantTest, LargeAndTinyMagnitudes) {
  for (DType t : kAllTypes) {
    // Large: the f16 scales stay finite up to |x| ~ 65504 * (levels / 2).
    std::vector<float> big = Gaussian(1024, 11, 3000.0f);
    ErrorStats s = Measure(big, RoundTrip(t, big));
    const Bound* b = nullptr;
    for (const Bound& bb : kBounds) b = bb.type == t ? &bb : b;
    EXPECT_LE(s.rel_rmse, b->max_rel_rmse * 1.5 + 1e-9) << DTypeName(t) << " large";
    // Tiny: scales become f16 subnormals (or flush to 0), so only check the
    // absolute error stays at the scale of the data and nothing is NaN.
    std::vector<float> tiny = Gaussian(1024, 12, 1e-6f);
    std::vector<float> y = RoundTrip(t, tiny);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_TRUE(std::isfinite(y[i])) << DTypeName(t);
      ASSERT_LE(std::fabs(y[i] - tiny[i]), 1e-5f) << DTypeName(t) << " tiny, element " << i;
    }
  }
}

TEST(QuantTest, QuantizeIsDeterministicAndRowLocal) {
  // Quantizing two rows at once equals quantizing each row (blocks never mix).
  std::vector<float> x = Gaussian(2048, 3);
  for (DType t : kAllTypes) {
    std::vector<uint8_t> whole(DTypeRowBytes(t, 2048)), parts(DTypeRowBytes(t, 2048));
    ASSERT_TRUE(QuantizeRow(t, x.data(), whole.data(), 2048).ok());
    const size_t half = DTypeRowBytes(t, 1024);
    ASSERT_TRUE(QuantizeRow(t, x.data(), parts.data(), 1024).ok());
    ASSERT_TRUE(QuantizeRow(t, x.data() + 1024, parts.data() + half, 1024).ok());
    EXPECT_EQ(whole, parts) << DTypeName(t);
  }
}

TEST(QuantTest, BadLengthIsInvalidArgumentNamingTypeAndBlockSize) {
  std::vector<float> x(300);
  std::vector<uint8_t> q(4096);
  Status s = QuantizeRow(DType::kQ4_K, x.data(), q.data(), 300);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("q4_k"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("300"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("256"), std::string::npos) << s.message();
  s = DequantizeRow(DType::kQ8_0, q.data(), x.data(), 33);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("32"), std::string::npos) << s.message();
  EXPECT_TRUE(QuantizeRow(DType::kQ8_0, x.data(), q.data(), -32).IsInvalidArgument());
  EXPECT_TRUE(QuantizeRow(DType::kQ8_0, x.data(), q.data(), 0).ok());
}

TEST(QuantTest, UnsupportedTypesNamed) {
  std::vector<float> x(256);
  std::vector<uint8_t> q(4096);
  for (DType t : {DType::kIQ2_XXS, DType::kIQ4_NL, DType::kTQ1_0, DType::kI32, DType::kMXFP4}) {
    Status s = QuantizeRow(t, x.data(), q.data(), 256);
    EXPECT_TRUE(s.IsUnsupported()) << DTypeName(t);
    EXPECT_NE(s.message().find(DTypeName(t)), std::string::npos) << s.message();
    EXPECT_TRUE(DequantizeRow(t, q.data(), x.data(), 256).IsUnsupported());
    EXPECT_FALSE(IsQuantizeSupported(t));
  }
}

TEST(QuantTest, BlockStructSizesMatchDTypeTraits) {
  EXPECT_EQ(sizeof(BlockQ4_0), static_cast<size_t>(GetDTypeTraits(DType::kQ4_0).type_size));
  EXPECT_EQ(sizeof(BlockQ4_1), static_cast<size_t>(GetDTypeTraits(DType::kQ4_1).type_size));
  EXPECT_EQ(sizeof(BlockQ5_0), static_cast<size_t>(GetDTypeTraits(DType::kQ5_0).type_size));
  EXPECT_EQ(sizeof(BlockQ5_1), static_cast<size_t>(GetDTypeTraits(DType::kQ5_1).type_size));
  EXPECT_EQ(sizeof(BlockQ8_0), static_cast<size_t>(GetDTypeTraits(DType::kQ8_0).type_size));
  EXPECT_EQ(sizeof(BlockQ8_1), static_cast<size_t>(GetDTypeTraits(DType::kQ8_1).type_size));
  EXPECT_EQ(sizeof(BlockQ2_K), static_cast<size_t>(GetDTypeTraits(DType::kQ2_K).type_size));
  EXPECT_EQ(sizeof(BlockQ3_K), static_cast<size_t>(GetDTypeTraits(DType::kQ3_K).type_size));
  EXPECT_EQ(sizeof(BlockQ4_K), static_cast<size_t>(GetDTypeTraits(DType::kQ4_K).type_size));
  EXPECT_EQ(sizeof(BlockQ5_K), static_cast<size_t>(GetDTypeTraits(DType::kQ5_K).type_size));
  EXPECT_EQ(sizeof(BlockQ6_K), static_cast<size_t>(GetDTypeTraits(DType::kQ6_K).type_size));
  EXPECT_EQ(sizeof(BlockQ8_K), static_cast<size_t>(GetDTypeTraits(DType::kQ8_K).type_size));
}

// Q8_K's bsums are what the K-quant dot products rely on.
TEST(QuantTest, Q8KBlockSumsAndScale) {
  std::vector<float> x = Gaussian(512, 21);
  std::vector<BlockQ8_K> b(2);
  QuantizeQ8_K(x.data(), b.data(), 2);
  for (const BlockQ8_K& blk : b) {
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += blk.qs[16 * j + i];
      EXPECT_EQ(sum, blk.bsums[j]);
    }
  }
}

// ---------------------------------------------------------------- fp16

TEST(Fp16Test, AllF16ValuesRoundTripExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f))));
      continue;
    }
    ASSERT_EQ(F32ToF16(f), h) << std::hex << h;
  }
}

TEST(Fp16Test, F16KnownValues) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x0001), 0x1p-24f);
  EXPECT_EQ(F16ToF32(0x0400), 0x1p-14f);
  EXPECT_TRUE(std::isinf(F16ToF32(0x7c00)));
  EXPECT_EQ(F32ToF16(65519.0f), 0x7bff);  // below the halfway point
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // tie, rounds to even = inf
  EXPECT_EQ(F32ToF16(1e10f), 0x7c00);
  EXPECT_EQ(F32ToF16(-1e10f), 0xfc00);
  EXPECT_EQ(F32ToF16(0x1p-25f), 0x0000);  // tie between 0 and 2^-24: even
  EXPECT_EQ(F32ToF16(0x1.8p-24f), 0x0002);  // tie between 1 and 2 ulps: even
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(1.0f + 0x1p-11f), 0x3c00);  // tie: even
  EXPECT_EQ(F32ToF16(1.0f + 0x1.8p-10f), 0x3c02);  // tie: even (up)
  EXPECT_EQ(F32ToF16(std::nanf("")) & 0x7e00, 0x7e00);
}

#if defined(__FLT16_MAX__)
// GCC's _Float16 conversion (libgcc / F16C) is an independent RNE oracle.
TEST(Fp16Test, F32ToF16MatchesCompilerFloat16) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2000000; ++i) {
    uint32_t u = bits(rng);
    // Concentrate on the f16 range (exponents 100..145) half of the time.
    if (i % 2) u = (u & 0x807fffffu) | ((100u + (u >> 23) % 46u) << 23);
    const float f = F32FromBits(u);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t hb;
    std::memcpy(&hb, &h, 2);
    ASSERT_EQ(F32ToF16(f), hb) << std::hex << u;
  }
}
#endif

TEST(Fp16Test, BF16RoundingAndNaN) {
  EXPECT_EQ(F32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(BF16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(F32ToBF16(F32FromBits(0x3f808000)), 0x3f80);  // tie, even stays
  EXPECT_EQ(F32ToBF16(F32FromBits(0x3f818000)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(F32ToBF16(F32FromBits(0x3f808001)), 0x3f81);
  EXPECT_EQ(F32ToBF16(F32FromBits(0x7f7fffff)), 0x7f80);  // max float -> inf
  // A NaN whose payload lives only in the low half must stay a NaN.
  EXPECT_EQ(F32ToBF16(F32FromBits(0x7f800001)), 0x7fc0);
  EXPECT_EQ(F32ToBF16(F32FromBits(0xffc00000)), 0xffc0);
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = BF16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(F32ToBF16(f), h);
  }
}

}  // namespace
}  // namespace formiga
