// Reference quantize/dequantize of the "legacy" 32-element block formats:
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 (layouts in quant.h).
//
// The arithmetic follows ggml's quantize_row_*_ref step by step, in f32, in
// the same order, so that the bytes match llama.cpp's and gguf-py's.
// NOTE: the expression order of the dequantizers (q * d + m, never fused)
// matters for bit-exact f32 results; do not "simplify" it.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "core/quant.h"

namespace formiga {
namespace {

// Index of the element with the largest magnitude (the first one on ties),
// returned as its signed value: the legacy symmetric formats map it to -8/-16
// so that the full negative range is used.
float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void MinMax(const float* x, int n, float* min_out, float* max_out) {
  float min = x[0];
  float max = x[0];
  for (int j = 1; j < n; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
  *min_out = min;
  *max_out = max;
}

inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline void StoreU32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

}  // namespace

// ---------------------------------------------------------------- Q4_0
// x (nb, 32) -> b (nb): d = max / -8, q = clamp(trunc(x/d + 8.5), 0, 15).
void QuantizeQ4_0(const float* x, BlockQ4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = SignedAbsMax(x, kQK) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      // x*id is in [-8, 8] (plus rounding), so the sum is in [0.5, 16.5]:
      // truncation rounds to nearest and 16 is clamped to 15.
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + kQK / 2] * id + 8.5f));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void DequantizeQ4_0(const BlockQ4_0* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = F16ToF32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      x[j] = static_cast<float>((b[i].qs[j] & 0x0f) - 8) * d;
      x[j + kQK / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

// ---------------------------------------------------------------- Q4_1
// d = (max - min) / 15, m = min, q = clamp(trunc((x - min)/d + 0.5), 0, 15).
void QuantizeQ4_1(const float* x, BlockQ4_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float min, max;
    MinMax(x, kQK, &min, &max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    b[i].m = F32ToF16(min);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = std::min(15, static_cast<int>((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, static_cast<int>((x[j + kQK / 2] - min) * id + 0.5f));
      b[i].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void DequantizeQ4_1(const BlockQ4_1* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = F16ToF32(b[i].d);
    const float m = F16ToF32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      x[j] = static_cast<float>(b[i].qs[j] & 0x0f) * d + m;
      x[j + kQK / 2] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
    }
  }
}

// ---------------------------------------------------------------- Q5_0
// d = max / -16, q = clamp(trunc(x/d + 16.5), 0, 31); bit 4 goes to qh.
void QuantizeQ5_0(const float* x, BlockQ5_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = SignedAbsMax(x, kQK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const uint32_t q0 = static_cast<uint32_t>(std::min(31, static_cast<int>(x[j] * id + 16.5f)));
      const uint32_t q1 =
          static_cast<uint32_t>(std::min(31, static_cast<int>(x[j + kQK / 2] * id + 16.5f)));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= ((q0 >> 4) & 1u) << j;
      qh |= ((q1 >> 4) & 1u) << (j + kQK / 2);
    }
    StoreU32(b[i].qh, qh);
  }
}

void DequantizeQ5_0(const BlockQ5_0* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = F16ToF32(b[i].d);
    const uint32_t qh = LoadU32(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = (b[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int q1 = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + kQK / 2)) & 1u) << 4);
      x[j] = static_cast<float>(q0 - 16) * d;
      x[j + kQK / 2] = static_cast<float>(q1 - 16) * d;
    }
  }
}

// ---------------------------------------------------------------- Q5_1
// d = (max - min) / 31, m = min, q = trunc((x - min)/d + 0.5) in 0..31.
void QuantizeQ5_1(const float* x, BlockQ5_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float min, max;
    MinMax(x, kQK, &min, &max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    b[i].m = F32ToF16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      // NOTE: ggml does not clamp here ((x-min)*id <= 31 up to rounding);
      // we clamp to 31, which gives the same byte whenever ggml's is valid.
      const uint32_t q0 = static_cast<uint32_t>(std::min(31, static_cast<int>((x[j] - min) * id + 0.5f)));
      const uint32_t q1 =
          static_cast<uint32_t>(std::min(31, static_cast<int>((x[j + kQK / 2] - min) * id + 0.5f)));
      b[i].qs[j] = static_cast<uint8_t>((q0 & 0x0f) | ((q1 & 0x0f) << 4));
      qh |= ((q0 >> 4) & 1u) << j;
      qh |= ((q1 >> 4) & 1u) << (j + kQK / 2);
    }
    StoreU32(b[i].qh, qh);
  }
}

void DequantizeQ5_1(const BlockQ5_1* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = F16ToF32(b[i].d);
    const float m = F16ToF32(b[i].m);
    const uint32_t qh = LoadU32(b[i].qh);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = (b[i].qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int q1 = (b[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + kQK / 2)) & 1u) << 4);
      x[j] = static_cast<float>(q0) * d + m;
      x[j + kQK / 2] = static_cast<float>(q1) * d + m;
    }
  }
}

// ---------------------------------------------------------------- Q8_0
// d = amax / 127, q = round_half_away(x / d).
void QuantizeQ8_0(const float* x, BlockQ8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void DequantizeQ8_0(const BlockQ8_0* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = F16ToF32(b[i].d);
    for (int j = 0; j < kQK; ++j) x[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

// ---------------------------------------------------------------- Q8_1
// As Q8_0, plus s = f16(sum(q) * d).
void QuantizeQ8_1(const float* x, BlockQ8_1* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = F32ToF16(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      sum += b[i].qs[j];
    }
    b[i].s = F32ToF16(static_cast<float>(sum) * d);
  }
}

void DequantizeQ8_1(const BlockQ8_1* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK) {
    const float d = F16ToF32(b[i].d);
    for (int j = 0; j < kQK; ++j) x[j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

}  // namespace formiga
