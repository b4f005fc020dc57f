// TestDeviceBackend: a backend that behaves like a device, for proving the
// model placement on a machine without one (model_placement_test.cc).
//
// IsHost() is false and its memory comes from its own arena (an anonymous
// mapping, not the heap the model and the host backends use), handed out by
// Alloc. Every op first checks that every pointer it receives — weights,
// activations, token ids, positions, sequences, slots, the array of block
// table pointers and each table, KV arrays (up to the highest block the batch
// reaches), logit rows, RoPE factors — lies inside one live allocation of
// that arena, for the whole extent the op reads or writes; a pointer that does
// not is a test failure naming the op and the argument. The op then runs on
// `inner` (the cpu or ref backend), so results are that backend's, bit for bit.
// CopyToDevice / CopyToHost check that their device side is in the arena and
// their host side is not.
//
// Thread safety: as Backend (one op at a time). Ownership: `inner` must
// outlive this backend.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>

#include "kernels/backend.h"

namespace formiga::testing {

class TestDeviceBackend final : public Backend {
 public:
  TestDeviceBackend(Backend& inner, size_t capacity, std::string device = "testdev:0")
      : inner_(inner), capacity_(capacity), device_(std::move(device)) {
    void* p = mmap(nullptr, capacity_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    EXPECT_NE(p, MAP_FAILED) << "TestDeviceBackend: cannot map a " << capacity_ << "-byte arena";
    base_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~TestDeviceBackend() override {
    if (base_ != nullptr) munmap(base_, capacity_);
  }

  const char* name() const override { return "testdev"; }
  const std::string& device() const { return device_; }
  // Checks that failed, ops run, bytes in live allocations, most ever live.
  int failures() const { return failures_; }
  int64_t ops() const { return ops_; }
  size_t bytes_in_use() const { return in_use_; }
  size_t peak_bytes() const { return peak_; }

  bool IsHost() const override { return false; }
  // First fit, 64-byte aligned: a freed block's space is reused, so what
  // fits is what the bytes in use say (up to alignment), as on a device.
  Result<void*> Alloc(size_t bytes) override {
    const size_t want = std::max<size_t>(bytes, 1);
    size_t start = 0;
    for (const auto& [off, n] : live_) {
      if (start + want <= off) break;
      start = (off + std::max<size_t>(n, 1) + 63) / 64 * 64;
    }
    if (base_ == nullptr || start + want > capacity_) {
      return Status::ResourceExhausted(device_ + " has " + std::to_string(capacity_ - std::min(capacity_, in_use_)) +
                                       " bytes free, " + std::to_string(bytes) + " asked");
    }
    live_[start] = bytes;
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
    return static_cast<void*>(base_ + start);
  }
  // Capacity minus the bytes in live allocations.
  Result<DeviceMemory> MemoryInfo() override { return DeviceMemory{capacity_ - std::min(capacity_, in_use_), capacity_}; }
  // Forgets the peak (the next peak_bytes() is measured from now).
  void ResetPeak() { peak_ = in_use_; }
  void Free(void* p) override {
    if (p == nullptr) return;
    const size_t off = static_cast<size_t>(static_cast<uint8_t*>(p) - base_);
    auto it = live_.find(off);
    if (!InArena(p) || it == live_.end()) {
      Fail("Free", "p", p, 0);
      return;
    }
    in_use_ -= it->second;
    live_.erase(it);
  }
  Status CopyToDevice(void* dst, const void* src, size_t bytes) override {
    Check("CopyToDevice", "dst", dst, bytes);
    if (InArena(src)) Fail("CopyToDevice", "src (a device pointer, expected host memory)", src, bytes);
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return Status::Ok();
  }
  Status CopyToHost(void* dst, const void* src, size_t bytes) override {
    Check("CopyToHost", "src", src, bytes);
    if (InArena(dst)) Fail("CopyToHost", "dst (a device pointer, expected host memory)", dst, bytes);
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return Status::Ok();
  }
  Status Synchronize() override { return inner_.Synchronize(); }

  Status MatMul(const WeightView& w, const float* x, float* y, int64_t T) override {
    CheckWeight("MatMul", "w", w);
    Check("MatMul", "x", x, F(T * w.cols));
    Check("MatMul", "y", y, F(T * w.rows));
    return inner_.MatMul(w, x, y, T);
  }
  Status GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) override {
    CheckWeight("GetRows", "table", table);
    Check("GetRows", "ids", ids, I(T));
    Check("GetRows", "y", y, F(T * table.cols));
    return inner_.GetRows(table, ids, T, y);
  }
  void RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps) override {
    Check("RmsNorm", "x", x, F(T * C));
    if (weight != nullptr) Check("RmsNorm", "weight", weight, F(C));
    Check("RmsNorm", "y", y, F(T * C));
    inner_.RmsNorm(x, weight, y, T, C, eps);
  }
  void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T, int64_t C,
                 float eps) override {
    Check("LayerNorm", "x", x, F(T * C));
    if (weight != nullptr) Check("LayerNorm", "weight", weight, F(C));
    if (bias != nullptr) Check("LayerNorm", "bias", bias, F(C));
    Check("LayerNorm", "y", y, F(T * C));
    inner_.LayerNorm(x, weight, bias, y, T, C, eps);
  }
  void Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
            const RopeParams& params) override {
    Check("Rope", "x", x, F(T * n_heads * D));
    Check("Rope", "positions", positions, I(T));
    if (params.freq_factors != nullptr) Check("Rope", "params.freq_factors", params.freq_factors, F(params.n_rot / 2));
    inner_.Rope(x, positions, T, n_heads, D, params);
  }
  void StoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv) override {
    const int64_t kvd = kv.layout.n_kv_heads * kv.layout.head_dim;
    Check("StoreKv", "k", k, F(batch.n_tokens * kvd));
    Check("StoreKv", "v", v, F(batch.n_tokens * kvd));
    CheckBatch("StoreKv", batch, kv);
    inner_.StoreKv(k, v, batch, kv);
  }
  void Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                 float* out) override {
    Check("Attention", "q", q, F(batch.n_tokens * p.n_heads * p.head_dim));
    Check("Attention", "out", out, F(batch.n_tokens * p.n_heads * p.head_dim));
    CheckBatch("Attention", batch, kv);
    inner_.Attention(q, kv, batch, p, out);
  }
  void SiluMul(const float* gate, const float* up, float* y, int64_t n) override {
    Check("SiluMul", "gate", gate, F(n));
    Check("SiluMul", "up", up, F(n));
    Check("SiluMul", "y", y, F(n));
    inner_.SiluMul(gate, up, y, n);
  }
  void GeluMul(const float* gate, const float* up, float* y, int64_t n) override {
    Check("GeluMul", "gate", gate, F(n));
    Check("GeluMul", "up", up, F(n));
    Check("GeluMul", "y", y, F(n));
    inner_.GeluMul(gate, up, y, n);
  }
  void Gelu(const float* x, float* y, int64_t n, bool tanh_approx) override {
    Check("Gelu", "x", x, F(n));
    Check("Gelu", "y", y, F(n));
    inner_.Gelu(x, y, n, tanh_approx);
  }
  void Add(const float* a, const float* b, float* y, int64_t n) override {
    Check("Add", "a", a, F(n));
    Check("Add", "b", b, F(n));
    Check("Add", "y", y, F(n));
    inner_.Add(a, b, y, n);
  }
  void AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) override {
    Check("AddBias", "x", x, F(T * C));
    Check("AddBias", "bias", bias, F(C));
    Check("AddBias", "y", y, F(T * C));
    inner_.AddBias(x, bias, y, T, C);
  }
  void Scale(float* x, float s, int64_t n) override {
    Check("Scale", "x", x, F(n));
    inner_.Scale(x, s, n);
  }
  void SoftCap(const float* x, float* y, int64_t n, float cap) override {
    Check("SoftCap", "x", x, F(n));
    Check("SoftCap", "y", y, F(n));
    inner_.SoftCap(x, y, n, cap);
  }
  void CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) override {
    if (Check("CopyRows", "rows", rows, I(R))) {
      int32_t max_row = 0;
      for (int64_t r = 0; r < R; ++r) max_row = std::max(max_row, rows[r]);
      Check("CopyRows", "x", x, F((int64_t{max_row} + 1) * C));
    }
    Check("CopyRows", "y", y, F(R * C));
    inner_.CopyRows(x, rows, R, C, y);
  }

 private:
  static size_t F(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }
  static size_t I(int64_t n) { return static_cast<size_t>(n) * sizeof(int32_t); }

  bool InArena(const void* p) const {
    const auto* b = static_cast<const uint8_t*>(p);
    return base_ != nullptr && b >= base_ && b < base_ + capacity_;
  }

  void Fail(const char* op, const std::string& arg, const void* p, size_t bytes) {
    ++failures_;
    ADD_FAILURE() << device_ << ": " << op << ": argument " << arg << " (" << p << ", " << bytes
                  << " bytes) does not lie inside one live allocation of this device's memory";
  }

  // [p, p + bytes) inside one live allocation.
  bool Check(const char* op, const std::string& arg, const void* p, size_t bytes) {
    ++ops_;
    if (p != nullptr && InArena(p)) {
      const size_t off = static_cast<size_t>(static_cast<const uint8_t*>(p) - base_);
      auto it = live_.upper_bound(off);
      if (it != live_.begin()) {
        --it;
        if (off + bytes <= it->first + it->second) return true;
      }
    }
    Fail(op, arg, p, bytes);
    return false;
  }

  void CheckWeight(const char* op, const std::string& arg, const WeightView& w) {
    Check(op, arg + ".data", w.data, static_cast<size_t>(w.rows) * w.row_bytes);
  }

  // The batch arrays, every table the batch's tokens read (up to the block of
  // each token's position), and the KV arrays up to the highest block read.
  void CheckBatch(const char* op, const AttentionBatch& b, const KvLayerView& kv) {
    const int64_t T = b.n_tokens, bs = kv.layout.block_size;
    const bool ok = Check(op, "batch.positions", b.positions, I(T)) &
                    Check(op, "batch.seq_of_token", b.seq_of_token, I(T)) &
                    Check(op, "batch.slots", b.slots, static_cast<size_t>(T) * sizeof(int64_t));
    if (!ok) return;
    int64_t n_seqs = 0, max_block = 0;
    for (int64_t t = 0; t < T; ++t) {
      n_seqs = std::max<int64_t>(n_seqs, b.seq_of_token[t] + 1);
      max_block = std::max<int64_t>(max_block, b.slots[t] / bs);
    }
    if (!Check(op, "batch.block_tables", b.block_tables, static_cast<size_t>(n_seqs) * sizeof(int32_t*))) return;
    for (int64_t t = 0; t < T; ++t) {
      const int32_t* table = b.block_tables[b.seq_of_token[t]];
      const int64_t blocks = b.positions[t] / bs + 1;
      if (!Check(op, "batch.block_tables[" + std::to_string(b.seq_of_token[t]) + "]", table, I(blocks))) return;
      for (int64_t i = 0; i < blocks; ++i) max_block = std::max<int64_t>(max_block, table[i]);
    }
    const size_t row = DTypeRowBytes(kv.layout.type, static_cast<uint64_t>(kv.layout.n_kv_heads * kv.layout.head_dim));
    const size_t extent = static_cast<size_t>(max_block + 1) * static_cast<size_t>(bs) * row;
    Check(op, "kv.k", kv.k, extent);
    Check(op, "kv.v", kv.v, extent);
  }

  Backend& inner_;
  size_t capacity_;
  std::string device_;
  uint8_t* base_ = nullptr;
  size_t in_use_ = 0, peak_ = 0;
  std::map<size_t, size_t> live_;  // offset -> bytes
  int failures_ = 0;
  int64_t ops_ = 0;
};

}  // namespace formiga::testing
