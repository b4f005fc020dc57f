#include "kernels/profiling_backend.h"

namespace formiga {
namespace {

// "matmul <type> <C>x<N1>+<N2>...", a weight of another type as "<type>:<N>".
std::string MatMulKey(const WeightView* ws, int n) {
  std::string key = "matmul " + std::string(DTypeName(ws[0].type)) + " " + std::to_string(ws[0].cols) + "x";
  for (int i = 0; i < n; ++i) {
    if (i > 0) key += "+";
    if (ws[i].type != ws[0].type) key += std::string(DTypeName(ws[i].type)) + ":";
    key += std::to_string(ws[i].rows);
  }
  return key;
}

}  // namespace

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

Status ProfilingBackend::CopyToDevice(void* dst, const void* src, size_t bytes) {
  return Timed("copy to device", [&] { return inner_.CopyToDevice(dst, src, bytes); });
}

Status ProfilingBackend::CopyToHost(void* dst, const void* src, size_t bytes) {
  return Timed("copy to host", [&] { return inner_.CopyToHost(dst, src, bytes); });
}

Status ProfilingBackend::MatMul(const WeightView& w, const float* x, float* y, int64_t T) {
  return Timed(MatMulKey(&w, 1), [&] { return inner_.MatMul(w, x, y, T); });
}

Status ProfilingBackend::MatMulShared(const WeightView* ws, float* const* ys, int n, const float* x, int64_t T) {
  if (n <= 0) return inner_.MatMulShared(ws, ys, n, x, T);
  return Timed(MatMulKey(ws, n), [&] { return inner_.MatMulShared(ws, ys, n, x, T); });
}

Status ProfilingBackend::GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) {
  return Timed("get_rows", [&] { return inner_.GetRows(table, ids, T, y); });
}

void ProfilingBackend::RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps) {
  Timed("rms_norm", [&] { inner_.RmsNorm(x, weight, y, T, C, eps); });
}

void ProfilingBackend::LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T,
                                 int64_t C, float eps) {
  Timed("layer_norm", [&] { inner_.LayerNorm(x, weight, bias, y, T, C, eps); });
}

void ProfilingBackend::Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
                            const RopeParams& params) {
  Timed("rope", [&] { inner_.Rope(x, positions, T, n_heads, D, params); });
}

void ProfilingBackend::StoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv) {
  Timed("store_kv", [&] { inner_.StoreKv(k, v, batch, kv); });
}

void ProfilingBackend::Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                                 const AttentionParams& params, float* out) {
  Timed("attention", [&] { inner_.Attention(q, kv, batch, params, out); });
}

void ProfilingBackend::SiluMul(const float* gate, const float* up, float* y, int64_t n) {
  Timed("silu_mul", [&] { inner_.SiluMul(gate, up, y, n); });
}

void ProfilingBackend::GeluMul(const float* gate, const float* up, float* y, int64_t n) {
  Timed("gelu_mul", [&] { inner_.GeluMul(gate, up, y, n); });
}

void ProfilingBackend::Gelu(const float* x, float* y, int64_t n, bool tanh_approx) {
  Timed("gelu", [&] { inner_.Gelu(x, y, n, tanh_approx); });
}

void ProfilingBackend::Add(const float* a, const float* b, float* y, int64_t n) {
  Timed("add", [&] { inner_.Add(a, b, y, n); });
}

void ProfilingBackend::AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) {
  Timed("add_bias", [&] { inner_.AddBias(x, bias, y, T, C); });
}

void ProfilingBackend::Scale(float* x, float s, int64_t n) {
  Timed("scale", [&] { inner_.Scale(x, s, n); });
}

void ProfilingBackend::SoftCap(const float* x, float* y, int64_t n, float cap) {
  Timed("soft_cap", [&] { inner_.SoftCap(x, y, n, cap); });
}

void ProfilingBackend::CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) {
  Timed("copy_rows", [&] { inner_.CopyRows(x, rows, R, C, y); });
}

}  // namespace formiga
