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

}  // namespace formiga::testing
