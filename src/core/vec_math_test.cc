#include "core/vec_math.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace formiga {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> Row(std::mt19937& rng, int64_t n, float spread) {
  std::normal_distribution<float> dist(0.0f, spread);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Sizes around the 8-lane width, and real vocabularies (SmolLM2, Gemma-3).
const int64_t kSizes[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 49152, 262144};

TEST(VecMath, ArgMaxIsTheScalarTwinsOnRandomRows) {
  std::mt19937 rng(7);
  for (int64_t n : kSizes) {
    for (float spread : {0.01f, 3.0f, 30.0f}) {
      const std::vector<float> v = Row(rng, n, spread);
      EXPECT_EQ(ArgMax(v.data(), n), ArgMaxScalar(v.data(), n)) << "n=" << n << " spread=" << spread;
    }
  }
}

TEST(VecMath, ArgMaxTakesTheFirstOfTiesAndSkipsNaNs) {
  for (int64_t n : {9, 16, 40, 1000}) {
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    // Every value equal: the first wins.
    EXPECT_EQ(ArgMax(v.data(), n), 0) << n;
    // Two maxima in different lanes and the tail: the first wins.
    v[5] = 2.0f;
    v[static_cast<size_t>(n - 1)] = 2.0f;
    v[3] = 2.0f;
    EXPECT_EQ(ArgMax(v.data(), n), 3) << n;
    EXPECT_EQ(ArgMaxScalar(v.data(), n), 3) << n;
    // A NaN (even at index 0) never wins.
    v[0] = std::nanf("");
    v[7] = std::nanf("");
    EXPECT_EQ(ArgMax(v.data(), n), 3) << n;
    EXPECT_EQ(ArgMaxScalar(v.data(), n), 3) << n;
  }
  // Nothing but -inf and NaN: 0.
  std::vector<float> v = {-kInf, std::nanf(""), -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf};
  EXPECT_EQ(ArgMax(v.data(), static_cast<int64_t>(v.size())), 0);
  EXPECT_EQ(ArgMaxScalar(v.data(), static_cast<int64_t>(v.size())), 0);
  EXPECT_EQ(ArgMax(nullptr, 0), 0);
}

TEST(VecMath, SumExpShiftedMatchesStdExpInDouble) {
  std::mt19937 rng(11);
  for (int64_t n : kSizes) {
    for (float spread : {0.01f, 3.0f, 30.0f}) {
      const std::vector<float> v = Row(rng, n, spread);
      if (n == 0) {
        EXPECT_EQ(SumExpShifted(v.data(), 0, 0.0f), 0.0);
        continue;
      }
      const float m = v[static_cast<size_t>(ArgMaxScalar(v.data(), n))];
      // The reference: double exp of the float difference, every term.
      double ref = 0;
      for (float x : v) ref += std::exp(static_cast<double>(x - m));
      const double fast = SumExpShifted(v.data(), n, m);
      const double scalar = SumExpShiftedScalar(v.data(), n, m);
      EXPECT_NEAR(fast, ref, 3e-7 * ref) << "n=" << n << " spread=" << spread;
      EXPECT_NEAR(scalar, ref, 3e-7 * ref) << "n=" << n << " spread=" << spread;
      EXPECT_GE(fast, 1.0 - 1e-6);  // the max's own term
    }
  }
}

TEST(VecMath, SumExpShiftedEveryReducedArgumentAndTheFloor) {
  // One term at a time over [-100, 0]: the polynomial on every reduction
  // interval, and terms below exp(-87) counted as 0.
  std::vector<float> v(16, -1000.0f);
  for (float d = -100.0f; d <= 0.0f; d += 0.0137f) {
    v[9] = d;  // a vector lane (the tail from 16 is empty)
    const double fast = SumExpShifted(v.data(), 16, 0.0f);
    const double want = d >= -87.0f ? std::exp(static_cast<double>(d)) : 0.0;
    ASSERT_NEAR(fast, want, 2e-7 * want + 1e-45) << "d=" << d;
  }
  // NaN and -inf terms add nothing.
  std::vector<float> w = {0.0f, std::nanf(""), -kInf, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, std::nanf(""), -kInf};
  EXPECT_NEAR(SumExpShifted(w.data(), static_cast<int64_t>(w.size()), 0.0f), 6.0, 1e-6);
  EXPECT_NEAR(SumExpShiftedScalar(w.data(), static_cast<int64_t>(w.size()), 0.0f), 6.0, 1e-6);
}

// The reference twin of TopK: sort every eligible (value, index) and keep k.
std::vector<std::pair<float, int32_t>> SortedTopK(const std::vector<float>& v, int k) {
  std::vector<std::pair<float, int32_t>> all;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] > -kInf) all.emplace_back(v[i], static_cast<int32_t>(i));
  }
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  if (all.size() > static_cast<size_t>(k)) all.resize(static_cast<size_t>(k));
  return all;
}

TEST(VecMath, TopKIsASortOfTheRowCut) {
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> level(-4, 4);
  std::vector<std::pair<float, int32_t>> got, scalar;
  for (int64_t n : kSizes) {
    for (int variant = 0; variant < 3; ++variant) {
      std::vector<float> v = Row(rng, n, 3.0f);
      if (variant == 1) {
        for (float& x : v) x = static_cast<float>(level(rng));  // many ties
      } else if (variant == 2) {
        for (size_t i = 0; i < v.size(); i += 3) v[i] = -kInf;  // banned tokens
        for (size_t i = 1; i < v.size(); i += 7) v[i] = std::nanf("");
      }
      for (int k : {1, 2, 5, 40, 100}) {
        const auto want = SortedTopK(v, k);
        TopK(v.data(), n, k, &got);
        TopKScalar(v.data(), n, k, &scalar);
        EXPECT_EQ(got, want) << "n=" << n << " variant=" << variant << " k=" << k;
        EXPECT_EQ(scalar, want) << "n=" << n << " variant=" << variant << " k=" << k;
      }
    }
  }
  TopK(nullptr, 0, 40, &got);
  EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace formiga
