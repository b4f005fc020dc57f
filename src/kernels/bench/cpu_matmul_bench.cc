// cpu_matmul_bench: MatMul throughput of the cpu backend (and the ref
// backend, for scale) on SmolLM2-135M's shapes, printing achieved weight
// bandwidth (GB/s) and GFLOP/s, and the decode speed those matvecs imply.
//
//   build/<dir>/src/kernels/bench/cpu_matmul_bench [threads] [--cached]
//
// --cached: one matrix per decode type, small enough to stay in L2, so the
// GB/s printed is the kernel's compute ceiling at T = 1 (what decode would
// reach with unlimited memory bandwidth); compare it with the DRAM probe.
//
// Not a test (tests must be fast): run it by hand; the numbers go into
// docs/kernels.md. Random weights: speed does not depend on the values.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "core/quant.h"
#include "kernels/backend.h"

namespace formiga {
namespace {

struct Shape {
  const char* what;
  DType type;
  int64_t C, N;
  int count;  // per token of a forward pass (30 layers)
};

// One forward pass of SmolLM2-135M (Q4_1 layers, Q8_0 tied output).
const Shape kShapes[] = {
    {"attn_q/attn_output 576x576", DType::kQ4_1, 576, 576, 60},
    {"attn_k/attn_v 576x192", DType::kQ4_1, 576, 192, 60},
    {"ffn_gate/ffn_up 576x1536", DType::kQ4_1, 576, 1536, 60},
    {"ffn_down 1536x576", DType::kQ4_1, 1536, 576, 30},
    {"output 576x49152", DType::kQ8_0, 576, 49152, 1},
};

// --cached: 0.5-0.6 MB in all, within one core's L2 on Zen 4/5 (1 MB), so
// the single-thread run measures the kernel, not L3 (at 2 threads the
// per-call thread wake-up starts to show).
const Shape kCachedShapes[] = {
    {"q4_0 2048x512", DType::kQ4_0, 2048, 512, 0}, {"q4_1 2048x512", DType::kQ4_1, 2048, 512, 0},
    {"q8_0 2048x256", DType::kQ8_0, 2048, 256, 0}, {"q4_k 2048x512", DType::kQ4_K, 2048, 512, 0},
    {"q6_k 2048x384", DType::kQ6_K, 2048, 384, 0}, {"f16 2048x128", DType::kF16, 2048, 128, 0},
};

double Seconds(Backend& be, const WeightView& w, const float* x, float* y, int64_t T, double min_time) {
  using Clock = std::chrono::steady_clock;
  (void)be.MatMul(w, x, y, T);  // warm-up (page faults, caches)
  int reps = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    (void)be.MatMul(w, x, y, T);
    ++reps;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < min_time);
  return elapsed / reps;
}

int Main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 0;
  const bool cached = argc > 2 && std::string(argv[2]) == "--cached";
  auto cpu = MakeCpuBackend(threads);
  if (!cpu.ok()) {
    std::fprintf(stderr, "%s\n", cpu.status().ToString().c_str());
    return 1;
  }
  auto ref = MakeRefBackend();
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  double decode_cpu = 0, decode_ref = 0;
  std::printf("%-28s %4s %10s %9s %9s %10s\n", "shape (C x N)", "T", "backend", "us/call", "GB/s", "GFLOP/s");
  const auto shapes = cached ? std::vector<Shape>(std::begin(kCachedShapes), std::end(kCachedShapes))
                             : std::vector<Shape>(std::begin(kShapes), std::end(kShapes));
  for (const Shape& s : shapes) {
    const size_t row_bytes = DTypeRowBytes(s.type, s.C);
    std::vector<float> wf(static_cast<size_t>(s.C));
    std::vector<uint8_t> w(row_bytes * static_cast<size_t>(s.N));
    for (int64_t n = 0; n < s.N; ++n) {
      for (float& v : wf) v = dist(rng);
      (void)QuantizeRow(s.type, wf.data(), w.data() + row_bytes * n, s.C);
    }
    const WeightView rows_view{s.type, w.data(), s.C, s.N, row_bytes};
    // The backend's packed layout too, where it has one (cpu_pack.h).
    const size_t packed_bytes = (*cpu)->PackedBytes(rows_view);
    auto packed = HostPages::Allocate(packed_bytes);
    if (!packed.ok()) return 1;
    std::vector<std::pair<std::string, WeightView>> views = {{s.what, rows_view}};
    if (packed_bytes > 0) {
      auto pv = (*cpu)->PackWeight(rows_view, packed->data());
      if (pv.ok()) views.emplace_back(std::string(s.what) + " packed", *pv);
    }
    for (const auto& [what, view] : views)
    for (int64_t T : {1, 64}) {
      if (cached && T > 1) continue;
      std::vector<float> x(static_cast<size_t>(T * s.C)), y(static_cast<size_t>(T * s.N));
      for (float& v : x) v = dist(rng);
      const double bytes = static_cast<double>(w.size());
      const double flops = 2.0 * static_cast<double>(s.C) * s.N * T;
      for (int b = 0; b < 2; ++b) {
        if (b == 1 && (T > 1 || cached || view.layout != WeightLayout::kRows)) continue;  // the ref: too slow
        Backend& be = b == 0 ? **cpu : *ref;
        const double sec = Seconds(be, view, x.data(), y.data(), T, b == 0 ? 0.3 : 0.5);
        std::printf("%-28s %4ld %10s %9.1f %9.2f %10.2f\n", what.c_str(), static_cast<long>(T), be.name(), sec * 1e6,
                    bytes / sec / 1e9, flops / sec / 1e9);
        if (T == 1 && view.layout == rows_view.layout) (b == 0 ? decode_cpu : decode_ref) += sec * s.count;
      }
    }
  }
  if (cached) return 0;
  std::printf("\nSmolLM2-135M matvecs per decoded token: cpu %.2f ms (%.0f tok/s), ref %.1f ms (%.1f tok/s)\n",
              decode_cpu * 1e3, 1.0 / decode_cpu, decode_ref * 1e3, 1.0 / decode_ref);
  return 0;
}

}  // namespace
}  // namespace formiga

int main(int argc, char** argv) { return formiga::Main(argc, argv); }
