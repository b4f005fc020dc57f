#include "kernels/profiling_backend.h"

namespace formiga {

double ProfilingBackend::total_seconds() const {
  double s = 0;
  for (const auto& [op, t] : times_) s += t.seconds;
  return s;
}

void ProfilingBackend::Record(const std::string& op, Clock::time_point start) {
  // A device's ops are queued: wait for this one so its time is its own.
  // NOTE: the error, if any, stays for the model's own Synchronize to report.
  if (!inner_.IsHost()) (void)inner_.Synchronize();
  OpTime& t = times_[op];
  ++t.calls;
  t.seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

void ProfilingBackend::Record(const char* op, Clock::time_point start) { Record(std::string(op), start); }

Status ProfilingBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  const auto t0 = Clock::now();
  Status st = inner_.CopyToDevice(dst, src, bytes);
  Record("copy to device", t0);
  return st;
}

Status ProfilingBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  const auto t0 = Clock::now();
  Status st = inner_.CopyToHost(dst, src, bytes);
  Record("copy to host", t0);
  return st;
}

Status ProfilingBackend::MatMul(const WeightView& w, const float* x, float* y, int64_t T) {
  const auto t0 = Clock::now();
  Status st = inner_.MatMul(w, x, y, T);
  Record("matmul " + std::string(DTypeName(w.type)) + " " + std::to_string(w.cols) + "x" + std::to_string(w.rows), t0);
  return st;
}

Status ProfilingBackend::MatMulShared(const WeightView* ws, float* const* ys, int n, const float* x, int64_t T) {
  const auto t0 = Clock::now();
  Status st = inner_.MatMulShared(ws, ys, n, x, T);
  if (n <= 0) return st;
  std::string key = "matmul " + std::string(DTypeName(ws[0].type)) + " " + std::to_string(ws[0].cols) + "x";
  for (int i = 0; i < n; ++i) {
    if (i > 0) key += "+";
    if (ws[i].type != ws[0].type) key += std::string(DTypeName(ws[i].type)) + ":";
    key += std::to_string(ws[i].rows);
  }
  Record(key, t0);
  return st;
}

Status ProfilingBackend::GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) {
  const auto t0 = Clock::now();
  Status st = inner_.GetRows(table, ids, T, y);
  Record("get_rows", t0);
  return st;
}

void ProfilingBackend::RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps) {
  const auto t0 = Clock::now();
  inner_.RmsNorm(x, weight, y, T, C, eps);
  Record("rms_norm", t0);
}

void ProfilingBackend::LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T,
                                 int64_t C, float eps) {
  const auto t0 = Clock::now();
  inner_.LayerNorm(x, weight, bias, y, T, C, eps);
  Record("layer_norm", t0);
}

void ProfilingBackend::Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
                            const RopeParams& params) {
  const auto t0 = Clock::now();
  inner_.Rope(x, positions, T, n_heads, D, params);
  Record("rope", t0);
}

void ProfilingBackend::StoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv) {
  const auto t0 = Clock::now();
  inner_.StoreKv(k, v, batch, kv);
  Record("store_kv", t0);
}

void ProfilingBackend::Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                                 const AttentionParams& params, float* out) {
  const auto t0 = Clock::now();
  inner_.Attention(q, kv, batch, params, out);
  Record("attention", t0);
}

void ProfilingBackend::SiluMul(const float* gate, const float* up, float* y, int64_t n) {
  const auto t0 = Clock::now();
  inner_.SiluMul(gate, up, y, n);
  Record("silu_mul", t0);
}

void ProfilingBackend::GeluMul(const float* gate, const float* up, float* y, int64_t n) {
  const auto t0 = Clock::now();
  inner_.GeluMul(gate, up, y, n);
  Record("gelu_mul", t0);
}

void ProfilingBackend::Gelu(const float* x, float* y, int64_t n, bool tanh_approx) {
  const auto t0 = Clock::now();
  inner_.Gelu(x, y, n, tanh_approx);
  Record("gelu", t0);
}

void ProfilingBackend::Add(const float* a, const float* b, float* y, int64_t n) {
  const auto t0 = Clock::now();
  inner_.Add(a, b, y, n);
  Record("add", t0);
}

void ProfilingBackend::AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) {
  const auto t0 = Clock::now();
  inner_.AddBias(x, bias, y, T, C);
  Record("add_bias", t0);
}

void ProfilingBackend::Scale(float* x, float s, int64_t n) {
  const auto t0 = Clock::now();
  inner_.Scale(x, s, n);
  Record("scale", t0);
}

void ProfilingBackend::SoftCap(const float* x, float* y, int64_t n, float cap) {
  const auto t0 = Clock::now();
  inner_.SoftCap(x, y, n, cap);
  Record("soft_cap", t0);
}

void ProfilingBackend::CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) {
  const auto t0 = Clock::now();
  inner_.CopyRows(x, rows, R, C, y);
  Record("copy_rows", t0);
}

}  // namespace formiga
