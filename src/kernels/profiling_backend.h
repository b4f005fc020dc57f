// ProfilingBackend: a decorator that times every op of the backend it wraps
// (`formiga bench --profile`), so that the time of a decode step can be split
// into its MatMuls (by weight type), attention, norms and the rest without a
// sampling profiler (this project's development VM has no `perf`).
//
// Each op is forwarded to `inner` unchanged (results are the inner backend's,
// bit for bit) between two steady_clock reads; an asynchronous (device)
// inner backend is synchronized before the second read, which serializes it:
// its profile says where the time goes, not how fast it runs unprofiled.
// The overhead is two clock reads per op (tens of ns; a 1.1B decode step has
// about 300 ops).
//
// Thread safety: as Backend (one op at a time). Ownership: `inner` must
// outlive this backend.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>

#include "kernels/backend.h"

namespace formiga {

class ProfilingBackend final : public Backend {
 public:
  struct OpTime {
    int64_t calls = 0;
    double seconds = 0;
  };

  explicit ProfilingBackend(Backend& inner) : inner_(inner) {}

  Backend& inner() { return inner_; }
  const Backend& inner() const { return inner_; }

  // Time per op since construction or the last Reset, keyed
  // "matmul <type> <C>x<N>" (input x output features), "attention",
  // "rms_norm", ... (sorted by key).
  const std::map<std::string, OpTime>& times() const { return times_; }
  double total_seconds() const;
  void Reset() { times_.clear(); }

  const char* name() const override { return inner_.name(); }
  bool IsHost() const override { return inner_.IsHost(); }
  Result<void*> Alloc(size_t bytes) override { return inner_.Alloc(bytes); }
  void Free(void* p) override { inner_.Free(p); }
  Status CopyToDevice(void* dst, const void* src, size_t bytes) override;
  Status CopyToHost(void* dst, const void* src, size_t bytes) override;
  Result<DeviceMemory> MemoryInfo() override { return inner_.MemoryInfo(); }
  size_t PackedBytes(const WeightView& w) const override { return inner_.PackedBytes(w); }
  std::string PackedFormat() const override { return inner_.PackedFormat(); }
  Result<WeightView> PackWeight(const WeightView& w, void* dst) override { return inner_.PackWeight(w, dst); }
  Status Synchronize() override { return inner_.Synchronize(); }

  Status MatMul(const WeightView& w, const float* x, float* y, int64_t T) override;
  // Keyed "matmul <type> <C>x<N1>+<N2>..." (one job on backends that fuse them).
  Status MatMulShared(const WeightView* ws, float* const* ys, int n, const float* x, int64_t T) override;
  Status GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) override;
  void RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps) override;
  void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T, int64_t C,
                 float eps) override;
  void Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
            const RopeParams& params) override;
  void StoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv) override;
  void Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& params,
                 float* out) override;
  void SiluMul(const float* gate, const float* up, float* y, int64_t n) override;
  void GeluMul(const float* gate, const float* up, float* y, int64_t n) override;
  void Gelu(const float* x, float* y, int64_t n, bool tanh_approx) override;
  void Add(const float* a, const float* b, float* y, int64_t n) override;
  void AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) override;
  void Scale(float* x, float s, int64_t n) override;
  void SoftCap(const float* x, float* y, int64_t n, float cap) override;
  void CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) override;

 private:
  using Clock = std::chrono::steady_clock;
  // Adds the time since `start` to `op` (after synchronizing a device).
  void Record(const std::string& op, Clock::time_point start);
  // Runs fn (one op of inner_) and records its time under `op`; returns what fn returns.
  template <class F>
  auto Timed(const std::string& op, F&& fn) {
    const auto start = Clock::now();
    if constexpr (std::is_void_v<decltype(fn())>) {
      fn();
      Record(op, start);
    } else {
      auto result = fn();
      Record(op, start);
      return result;
    }
  }

  Backend& inner_;
  std::map<std::string, OpTime> times_;
};

}  // namespace formiga
