// Helpers shared by the cpu backend tests: random inputs, error measures and
// backend construction. Test-only (included by *_test.cc files).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
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

}  // namespace formiga::testing
