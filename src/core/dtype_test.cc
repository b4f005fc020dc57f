#include "core/dtype.h"

#include <gtest/gtest.h>

namespace formiga {
namespace {

TEST(DTypeTest, BitsPerWeightMatchGguf) {
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ4_0), 4.5);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ4_1), 5.0);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ5_0), 5.5);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ5_1), 6.0);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ8_0), 8.5);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ2_K), 2.625);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ3_K), 3.4375);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ4_K), 4.5);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ5_K), 5.5);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kQ6_K), 6.5625);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kF16), 16.0);
  EXPECT_DOUBLE_EQ(DTypeBitsPerWeight(DType::kBF16), 16.0);
}

TEST(DTypeTest, UnknownAndRemovedIds) {
  EXPECT_EQ(FindDTypeTraits(4), nullptr);
  EXPECT_EQ(FindDTypeTraits(5), nullptr);
  EXPECT_EQ(FindDTypeTraits(31), nullptr);
  EXPECT_EQ(FindDTypeTraits(1000), nullptr);
  ASSERT_NE(FindDTypeTraits(12), nullptr);
  EXPECT_STREQ(FindDTypeTraits(12)->name, "q4_k");
}

TEST(DTypeTest, ParseNames) {
  EXPECT_EQ(ParseDType("Q4_K"), DType::kQ4_K);
  EXPECT_EQ(ParseDType("bf16"), DType::kBF16);
  EXPECT_FALSE(ParseDType("q4_k_m").has_value());
  EXPECT_EQ(DTypeRowBytes(DType::kQ8_0, 64), 68u);
}

}  // namespace
}  // namespace formiga
