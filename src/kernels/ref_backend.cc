// The reference backend: each op written in the most direct way, accumulating
// in double, so that it can serve as the oracle every fast backend is tested
// against (kernels/backend_test.cc). Never optimize this file.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/quant.h"
#include "kernels/backend.h"

namespace formiga {
namespace {

// Element `index` of a KV array (q8_0: block index / 32 of 34 bytes).
float LoadKv(const void* base, DType type, int64_t index) {
  if (type == DType::kF16) return F16ToF32(static_cast<const uint16_t*>(base)[index]);
  if (type == DType::kQ8_0) {
    const uint8_t* block = static_cast<const uint8_t*>(base) + (index / 32) * 34;
    const uint16_t scale = static_cast<uint16_t>(block[0] | (block[1] << 8));
    return F16ToF32(scale) * static_cast<float>(static_cast<int8_t>(block[2 + index % 32]));
  }
  return static_cast<const float*>(base)[index];
}

void StoreKvValue(void* base, DType type, int64_t index, float value) {
  if (type == DType::kF16) {
    static_cast<uint16_t*>(base)[index] = F32ToF16(value);
  } else {
    static_cast<float*>(base)[index] = value;
  }
}

double GeluTanh(double x) {
  constexpr double kSqrt2OverPi = 0.79788456080286535588;
  return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x)));
}

double GeluErf(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

class RefBackend final : public Backend {
 public:
  const char* name() const override { return "ref"; }

  Status MatMul(const WeightView& w, const float* x, float* y, int64_t T) override {
    if (w.layout != WeightLayout::kRows) {
      return Status::InvalidArgument("ref backend: MatMul reads GGUF rows, not another backend's packed matrix");
    }
    std::vector<float> row(static_cast<size_t>(w.cols));
    for (int64_t n = 0; n < w.rows; ++n) {
      const auto* src = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(n) * w.row_bytes;
      FORMIGA_RETURN_IF_ERROR(DequantizeRow(w.type, src, row.data(), w.cols));
      for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * w.cols;
        double acc = 0.0;
        for (int64_t c = 0; c < w.cols; ++c) acc += static_cast<double>(row[c]) * xt[c];
        y[t * w.rows + n] = static_cast<float>(acc);
      }
    }
    return Status::Ok();
  }

  Status GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) override {
    for (int64_t t = 0; t < T; ++t) {
      if (ids[t] < 0 || ids[t] >= table.rows) {
        return Status::OutOfRange("token id " + std::to_string(ids[t]) + " outside the vocabulary (" +
                                  std::to_string(table.rows) + " rows)");
      }
      const auto* src = static_cast<const uint8_t*>(table.data) + static_cast<size_t>(ids[t]) * table.row_bytes;
      FORMIGA_RETURN_IF_ERROR(DequantizeRow(table.type, src, y + t * table.cols, table.cols));
    }
    return Status::Ok();
  }

  void RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps) override {
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * C;
      double ss = 0.0;
      for (int64_t c = 0; c < C; ++c) ss += static_cast<double>(xt[c]) * xt[c];
      const double inv = 1.0 / std::sqrt(ss / static_cast<double>(C) + eps);
      for (int64_t c = 0; c < C; ++c) {
        y[t * C + c] = static_cast<float>(xt[c] * inv * (weight != nullptr ? weight[c] : 1.0f));
      }
    }
  }

  void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T, int64_t C,
                 float eps) override {
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * C;
      double mean = 0.0;
      for (int64_t c = 0; c < C; ++c) mean += xt[c];
      mean /= static_cast<double>(C);
      double var = 0.0;
      for (int64_t c = 0; c < C; ++c) var += (xt[c] - mean) * (xt[c] - mean);
      var /= static_cast<double>(C);
      const double inv = 1.0 / std::sqrt(var + eps);
      for (int64_t c = 0; c < C; ++c) {
        double v = (xt[c] - mean) * inv;
        if (weight != nullptr) v *= weight[c];
        if (bias != nullptr) v += bias[c];
        y[t * C + c] = static_cast<float>(v);
      }
    }
  }

  void Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
            const RopeParams& p) override {
    const int64_t half = p.n_rot / 2;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + (t * n_heads + h) * D;
        for (int64_t i = 0; i < half; ++i) {
          double freq = std::pow(static_cast<double>(p.freq_base), -2.0 * static_cast<double>(i) / p.n_rot);
          if (p.freq_factors != nullptr) freq /= p.freq_factors[i];
          const double angle = static_cast<double>(positions[t]) * p.freq_scale * freq;
          const double c = std::cos(angle), s = std::sin(angle);
          // kNormal pairs (2i, 2i+1); kNeox pairs (i, i + n_rot/2).
          const int64_t a = p.style == RopeStyle::kNormal ? 2 * i : i;
          const int64_t b = p.style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
          const double x0 = v[a], x1 = v[b];
          v[a] = static_cast<float>(x0 * c - x1 * s);
          v[b] = static_cast<float>(x0 * s + x1 * c);
        }
      }
    }
  }

  void StoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv) override {
    const int64_t row = kv.layout.n_kv_heads * kv.layout.head_dim;
    if (kv.layout.type == DType::kQ8_0) {
      const size_t row_bytes = static_cast<size_t>(DTypeRowBytes(DType::kQ8_0, row));
      for (int64_t t = 0; t < batch.n_tokens; ++t) {
        (void)QuantizeRow(DType::kQ8_0, k + t * row, static_cast<uint8_t*>(kv.k) + batch.slots[t] * row_bytes, row);
        (void)QuantizeRow(DType::kQ8_0, v + t * row, static_cast<uint8_t*>(kv.v) + batch.slots[t] * row_bytes, row);
      }
      return;
    }
    for (int64_t t = 0; t < batch.n_tokens; ++t) {
      for (int64_t e = 0; e < row; ++e) {
        StoreKvValue(kv.k, kv.layout.type, batch.slots[t] * row + e, k[t * row + e]);
        StoreKvValue(kv.v, kv.layout.type, batch.slots[t] * row + e, v[t * row + e]);
      }
    }
  }

  void Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                 float* out) override {
    const int64_t H = p.n_heads, KH = p.n_kv_heads, D = p.head_dim, bs = kv.layout.block_size;
    const int64_t group = H / KH;
    std::vector<double> scores;
    for (int64_t t = 0; t < batch.n_tokens; ++t) {
      const int64_t pos = batch.positions[t];
      const int32_t* table = batch.block_tables[batch.seq_of_token[t]];
      const int64_t lo = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
      scores.assign(static_cast<size_t>(pos - lo + 1), 0.0);
      for (int64_t h = 0; h < H; ++h) {
        const int64_t kh = h / group;
        const float* qh = q + (t * H + h) * D;
        double max_score = -INFINITY;
        for (int64_t j = lo; j <= pos; ++j) {
          const int64_t slot = static_cast<int64_t>(table[j / bs]) * bs + j % bs;
          const int64_t base = (slot * KH + kh) * D;
          double s = 0.0;
          for (int64_t d = 0; d < D; ++d) s += static_cast<double>(qh[d]) * LoadKv(kv.k, kv.layout.type, base + d);
          s *= p.scale;
          if (p.softcap > 0.0f) s = p.softcap * std::tanh(s / p.softcap);
          scores[j - lo] = s;
          max_score = std::max(max_score, s);
        }
        double sum = 0.0;
        for (double& s : scores) {
          s = std::exp(s - max_score);
          sum += s;
        }
        float* oh = out + (t * H + h) * D;
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0.0;
          for (int64_t j = lo; j <= pos; ++j) {
            const int64_t slot = static_cast<int64_t>(table[j / bs]) * bs + j % bs;
            acc += scores[j - lo] * LoadKv(kv.v, kv.layout.type, (slot * KH + kh) * D + d);
          }
          oh[d] = static_cast<float>(acc / sum);
        }
      }
    }
  }

  void SiluMul(const float* gate, const float* up, float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i];
      y[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
    }
  }

  void GeluMul(const float* gate, const float* up, float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(GeluTanh(gate[i]) * up[i]);
  }

  void Gelu(const float* x, float* y, int64_t n, bool tanh_approx) override {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(tanh_approx ? GeluTanh(x[i]) : GeluErf(x[i]));
  }

  void Add(const float* a, const float* b, float* y, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }

  void AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) override {
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t c = 0; c < C; ++c) y[t * C + c] = x[t * C + c] + bias[c];
    }
  }

  void Scale(float* x, float s, int64_t n) override {
    for (int64_t i = 0; i < n; ++i) x[i] *= s;
  }

  void SoftCap(const float* x, float* y, int64_t n, float cap) override {
    for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(cap * std::tanh(static_cast<double>(x[i]) / cap));
  }

  void CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) override {
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t c = 0; c < C; ++c) y[r * C + c] = x[static_cast<int64_t>(rows[r]) * C + c];
    }
  }
};

}  // namespace

std::unique_ptr<Backend> MakeRefBackend() { return std::make_unique<RefBackend>(); }

}  // namespace formiga
