#include "kernels/profiling_backend.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "kernels/cpu_test_util.h"

namespace formiga {
namespace {

using testing::MakeWeights;
using testing::RandomVector;

TEST(ProfilingBackend, ForwardsEveryOpUnchangedAndTimesIt) {
  auto cpu = testing::CpuBackendOrDie(2);
  ASSERT_NE(cpu, nullptr);
  ProfilingBackend prof(*cpu);
  EXPECT_STREQ(prof.name(), "cpu");
  EXPECT_TRUE(prof.IsHost());

  const int64_t C = 256, N = 96, T = 3;
  const std::vector<uint8_t> w = MakeWeights(DType::kQ8_0, N, C, 1), w2 = MakeWeights(DType::kQ4_K, 32, C, 2);
  const WeightView a{DType::kQ8_0, w.data(), C, N, DTypeRowBytes(DType::kQ8_0, C)};
  const WeightView b{DType::kQ4_K, w2.data(), C, 32, DTypeRowBytes(DType::kQ4_K, C)};
  const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), 3);
  std::vector<float> want(static_cast<size_t>(T * N)), got(want.size());
  ASSERT_TRUE(cpu->MatMul(a, x.data(), want.data(), T).ok());
  ASSERT_TRUE(prof.MatMul(a, x.data(), got.data(), T).ok());
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
  ASSERT_TRUE(prof.MatMul(a, x.data(), got.data(), T).ok());

  std::vector<float> y_a(static_cast<size_t>(T * N)), y_b(static_cast<size_t>(T * 32));
  const WeightView ws[] = {a, b};
  float* const ys[] = {y_a.data(), y_b.data()};
  ASSERT_TRUE(prof.MatMulShared(ws, ys, 2, x.data(), T).ok());
  EXPECT_EQ(0, std::memcmp(want.data(), y_a.data(), want.size() * sizeof(float)));

  std::vector<float> n_want(x.size()), n_got(x.size());
  cpu->RmsNorm(x.data(), nullptr, n_want.data(), T, C, 1e-6f);
  prof.RmsNorm(x.data(), nullptr, n_got.data(), T, C, 1e-6f);
  EXPECT_EQ(0, std::memcmp(n_want.data(), n_got.data(), n_want.size() * sizeof(float)));

  // Errors pass through (and the call is still counted).
  const WeightView bad{DType::kQ8_0, w.data(), 48, 1, 51};
  EXPECT_FALSE(prof.MatMul(bad, x.data(), got.data(), 1).ok());

  const auto& times = prof.times();
  ASSERT_EQ(times.count("matmul q8_0 256x96"), 1u);
  EXPECT_EQ(times.at("matmul q8_0 256x96").calls, 2);
  ASSERT_EQ(times.count("matmul q8_0 256x96+q4_k:32"), 1u);
  EXPECT_EQ(times.at("matmul q8_0 256x96+q4_k:32").calls, 1);
  EXPECT_EQ(times.at("rms_norm").calls, 1);
  EXPECT_EQ(times.at("matmul q8_0 48x1").calls, 1);
  double sum = 0;
  for (const auto& [op, t] : times) {
    EXPECT_GE(t.seconds, 0.0) << op;
    sum += t.seconds;
  }
  EXPECT_DOUBLE_EQ(prof.total_seconds(), sum);
  EXPECT_GT(sum, 0.0);

  prof.Reset();
  EXPECT_TRUE(prof.times().empty());
}

}  // namespace
}  // namespace formiga
