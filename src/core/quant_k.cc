// Reference quantize/dequantize of the K-quant super-block formats:
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K (256 elements per block; layouts in
// quant.h).
//
// The quantizers follow ggml's reference path (no importance matrix): each
// sub-block gets a scale (and a min) from a small least-squares search
// (MakeQkx2Quants for the asymmetric types, MakeQ3Quants / MakeQxQuants for
// the symmetric ones); the sub-block scales are then themselves quantized to
// 4/6/8 bits against one f16 super-scale, and every element is re-quantized
// against the scale it will actually be decoded with.
//
// NOTE: bit-compatibility with llama.cpp depends on doing the same f32
// operations in the same order (no reassociation, no fused multiply-add);
// keep the expression shapes below as they are. Element j of a block is x[j];
// "sub-block" s covers x[16s .. 16s+15] (Q2_K, Q3_K, Q6_K) or
// x[32s .. 32s+31] (Q4_K, Q5_K).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "core/quant.h"

namespace formiga {
namespace {

// Below this magnitude a group is treated as all zeros (ggml: GROUP_MAX_EPS).
constexpr float kGroupMaxEps = 1e-15f;

// Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves the
// rounded integer in the low mantissa bits.
inline int NearestInt(float v) {
  const float shifted = v + 12582912.0f;
  return static_cast<int>(F32Bits(shifted) & 0x007fffffu) - 0x00400000;
}

// Asymmetric fit of n values to levels 0..nmax: x ~= scale * L - min_out
// (min_out >= 0 is returned through `the_min`), minimizing the weighted
// error; tries nstep+1 candidate scales around nmax/(max-min) and solves the
// 2x2 least-squares problem for (scale, min) at each. `use_mad` selects
// |error| instead of error^2. Returns the scale.
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep,
                     bool use_mad) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;  // the format's min is subtracted, so it is <= 0
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = NearestInt(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + min - x[i];
    diff = use_mad ? std::fabs(diff) : diff * diff;
    best_error += weights[i] * diff;
  }
  if (nstep < 1) {
    *the_min = -min;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      const float lf = static_cast<float>(l);
      sum_l += w * lf;
      sum_l2 += w * lf * lf;
      sum_xl += w * lf * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * Laux[i] + this_min - x[i];
        diff = use_mad ? std::fabs(diff) : diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// Symmetric fit to levels -nmax..nmax-1 with weights x^2 (ggml's
// make_qx_quants with rmse_type 1 and no importance weights). L gets
// level + nmax. Tries 18 scales around -nmax/max and keeps the one with the
// largest sumlx^2/suml2 (= smallest weighted squared error). Returns the scale.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float fnmax = static_cast<float>(nmax);
  float iscale = -fnmax / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const float lf = static_cast<float>(l);
    sumlx += w * x[i] * lf;
    suml2 += w * lf * lf;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(fnmax + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      const float lf = static_cast<float>(l);
      sumlx += w * x[i] * lf;
      suml2 += w * lf * lf;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = NearestInt(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Symmetric fit for Q3_K (ggml's make_q3_quants with do_rmse): start from
// -nmax/max, then up to 5 passes of coordinate descent that move single
// elements to the level that best improves the x^2-weighted fit.
// L gets level + nmax. Returns the scale.
float MakeQ3Quants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0) {
        float sl2 = suml2 - w * li * li;
        int new_l = NearestInt(x[i] * sl2 / slx);
        new_l = std::max(-nmax, std::min(nmax - 1, new_l));
        if (new_l != L[i]) {
          const float nl = static_cast<float>(new_l);
          slx += w * x[i] * nl;
          sl2 += w * nl * nl;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (n_changed == 0) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

// Q4_K/Q5_K scale bytes: 8 (scale, min) pairs of 6 bits in 12 bytes.
//   bytes 0..3 : scale j (bits 0-5) | high bits of scale j+4 (bits 6-7)
//   bytes 4..7 : min j   (bits 0-5) | high bits of min j+4   (bits 6-7)
//   bytes 8..11: low 4 bits of scale j+4 | low 4 bits of min j+4 << 4
void UnpackScaleMinK4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void PackScaleMinK4(int j, uint8_t ls, uint8_t lm, uint8_t* q) {
  // REQUIRES: called for j = 0..7 in order (j >= 4 ORs into bytes j < 4 set).
  if (j < 4) {
    q[j] = ls;
    q[j + 4] = lm;
  } else {
    q[j + 4] = static_cast<uint8_t>((ls & 0x0f) | ((lm & 0x0f) << 4));
    q[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    q[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}

// Q3_K: signed 6-bit scale of sub-block j (0..15), from the 12 packed bytes.
int UnpackScaleQ3K(int j, const uint8_t* s) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Packs 2-bit values L[0..255] into 64 bytes: byte 32h + l holds L[128h +
// 32k + l] at bits 2k (Q2_K and the low bits of Q3_K).
void Pack2Bits(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* Lh = L + 128 * h;
      qs[32 * h + l] =
          static_cast<uint8_t>(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
    }
  }
}

// 2-bit value of element e (0..255) from Pack2Bits's layout.
inline int Get2Bits(const uint8_t* qs, int e) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  return (qs[32 * h + l] >> (2 * k)) & 3;
}

// Q4_K/Q5_K low nibble of element e: 64-element chunk c, byte 32c + l,
// low nibble for e%64 < 32, high nibble otherwise.
inline int GetNibbleK(const uint8_t* qs, int e) {
  const int c = e / 64, half = (e % 64) / 32, l = e % 32;
  const uint8_t byte = qs[32 * c + l];
  return half ? (byte >> 4) : (byte & 0x0f);
}

}  // namespace

// ---------------------------------------------------------------- Q2_K
// x (nb, 256) -> b (nb). Per sub-block of 16: (scale, min) by MakeQkx2Quants
// with |x| weights; both quantized to 4 bits against d = max_scale/15 and
// dmin = max_min/15.
void QuantizeQ2_K(const float* x, BlockQ2_K* b, int64_t nb) {
  uint8_t L[kQK_K];
  uint8_t Laux[16];
  float weights[16];
  float mins[kQK_K / 16];
  float scales[kQK_K / 16];
  const float q4scale = 15.0f;
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = MakeQkx2Quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f,
                                 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    if (max_scale > 0) {
      const float iscale = q4scale / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) {
        b[i].scales[j] = static_cast<uint8_t>(NearestInt(iscale * scales[j]));
      }
      b[i].d = F32ToF16(max_scale / q4scale);
    } else {
      for (int j = 0; j < kQK_K / 16; ++j) b[i].scales[j] = 0;
      b[i].d = F32ToF16(0.0f);
    }
    if (max_min > 0) {
      const float iscale = q4scale / max_min;
      for (int j = 0; j < kQK_K / 16; ++j) {
        b[i].scales[j] |= static_cast<uint8_t>(NearestInt(iscale * mins[j]) << 4);
      }
      b[i].dmin = F32ToF16(max_min / q4scale);
    } else {
      b[i].dmin = F32ToF16(0.0f);
    }
    // Re-quantize against the scales as they will be decoded.
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = F16ToF32(b[i].d) * static_cast<float>(b[i].scales[j] & 0x0f);
      if (d == 0.0f) continue;
      const float dm = F16ToF32(b[i].dmin) * static_cast<float>(b[i].scales[j] >> 4);
      for (int ii = 0; ii < 16; ++ii) {
        const int l = NearestInt((x[16 * j + ii] + dm) / d);
        L[16 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
      }
    }
    Pack2Bits(L, b[i].qs);
  }
}

void DequantizeQ2_K(const BlockQ2_K* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    const float d = F16ToF32(b[i].d);
    const float dmin = F16ToF32(b[i].dmin);
    for (int e = 0; e < kQK_K; ++e) {
      const uint8_t sc = b[i].scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0x0f);
      const float ml = dmin * static_cast<float>(sc >> 4);
      x[e] = dl * static_cast<float>(Get2Bits(b[i].qs, e)) - ml;
    }
  }
}

// ---------------------------------------------------------------- Q3_K
// Per sub-block of 16: symmetric scale by MakeQ3Quants (levels -4..3); the
// 16 scales are quantized to signed 6 bits against d = -max_scale/32.
void QuantizeQ3_K(const float* x, BlockQ3_K* b, int64_t nb) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K / 16; ++j) {
      scales[j] = MakeQ3Quants(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }
    std::memset(b[i].scales, 0, sizeof(b[i].scales));
    if (max_scale != 0.0f) {
      const float iscale = -32.0f / max_scale;
      for (int j = 0; j < kQK_K / 16; ++j) {
        // int8 like ggml: |iscale * scale| <= 32, so nothing is lost.
        int8_t l = static_cast<int8_t>(NearestInt(iscale * scales[j]));
        l = static_cast<int8_t>(std::max(-32, std::min(31, static_cast<int>(l))) + 32);
        if (j < 8) {
          b[i].scales[j] = static_cast<uint8_t>(l & 0x0f);
        } else {
          b[i].scales[j - 8] |= static_cast<uint8_t>((l & 0x0f) << 4);
        }
        l = static_cast<int8_t>(l >> 4);
        b[i].scales[j % 4 + 8] |= static_cast<uint8_t>(l << (2 * (j / 4)));
      }
      b[i].d = F32ToF16(1 / iscale);
    } else {
      b[i].d = F32ToF16(0.0f);
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = F16ToF32(b[i].d) * static_cast<float>(UnpackScaleQ3K(j, b[i].scales));
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt(x[16 * j + ii] / d);
        l = std::max(-4, std::min(3, l));
        L[16 * j + ii] = static_cast<int8_t>(l + 4);
      }
    }
    // High bit of element e -> hmask[e % 32] bit e / 32; low 2 bits -> qs.
    std::memset(b[i].hmask, 0, sizeof(b[i].hmask));
    uint8_t low[kQK_K];
    for (int e = 0; e < kQK_K; ++e) {
      int l = L[e];
      if (l > 3) {
        b[i].hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
        l -= 4;
      }
      low[e] = static_cast<uint8_t>(l);
    }
    Pack2Bits(low, b[i].qs);
  }
}

void DequantizeQ3_K(const BlockQ3_K* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    const float d_all = F16ToF32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const float dl = d_all * static_cast<float>(UnpackScaleQ3K(e / 16, b[i].scales));
      const bool high = (b[i].hmask[e % 32] >> (e / 32)) & 1;
      const int q = Get2Bits(b[i].qs, e) - (high ? 0 : 4);
      x[e] = dl * static_cast<float>(q);
    }
  }
}

// ---------------------------------------------------------------- Q4_K / Q5_K
namespace {

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): fills d, dmin, scales and
// L[256] (levels 0..nmax).
template <class Block>
void QuantizeScalesMinsK(const float* x, int nmax, float rmin, float rdelta, int nstep,
                         Block* blk, uint8_t* L) {
  uint8_t Laux[32];
  float weights[32];
  float mins[kQK_K / 32];
  float scales[kQK_K / 32];
  float max_scale = 0;
  float max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    // Weights favour large elements and, through av_x, the sub-block's RMS.
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = MakeQkx2Quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                               rdelta, nstep, false);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    // uint8 like ggml: the products are in [0, 63] up to rounding.
    uint8_t ls = static_cast<uint8_t>(NearestInt(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(NearestInt(inv_min * mins[j]));
    ls = std::min<uint8_t>(63, ls);
    lm = std::min<uint8_t>(63, lm);
    PackScaleMinK4(j, ls, lm, blk->scales);
  }
  blk->d = F32ToF16(max_scale / 63.0f);
  blk->dmin = F32ToF16(max_min / 63.0f);
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    UnpackScaleMinK4(j, blk->scales, &sc, &m);
    const float d = F16ToF32(blk->d) * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = F16ToF32(blk->dmin) * static_cast<float>(m);
    for (int ii = 0; ii < 32; ++ii) {
      const int l = NearestInt((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

}  // namespace

void QuantizeQ4_K(const float* x, BlockQ4_K* b, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    QuantizeScalesMinsK(x, 15, -1.0f, 0.1f, 20, &b[i], L);
    for (int c = 0; c < kQK_K / 64; ++c) {
      for (int l = 0; l < 32; ++l) {
        b[i].qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
      }
    }
  }
}

void DequantizeQ4_K(const BlockQ4_K* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    const float d = F16ToF32(b[i].d);
    const float dmin = F16ToF32(b[i].dmin);
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      UnpackScaleMinK4(j, b[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int e = 32 * j + l;
        x[e] = d1 * static_cast<float>(GetNibbleK(b[i].qs, e)) - m1;
      }
    }
  }
}

void QuantizeQ5_K(const float* x, BlockQ5_K* b, int64_t nb) {
  uint8_t L[kQK_K];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    QuantizeScalesMinsK(x, 31, -0.5f, 0.1f, 15, &b[i], L);
    // Bit 4 of element 64c + 32h + l -> bit 2c + h of qh[l].
    std::memset(b[i].qh, 0, sizeof(b[i].qh));
    for (int c = 0; c < kQK_K / 64; ++c) {
      for (int l = 0; l < 32; ++l) {
        int l1 = L[64 * c + l];
        int l2 = L[64 * c + 32 + l];
        if (l1 > 15) {
          l1 -= 16;
          b[i].qh[l] |= static_cast<uint8_t>(1u << (2 * c));
        }
        if (l2 > 15) {
          l2 -= 16;
          b[i].qh[l] |= static_cast<uint8_t>(1u << (2 * c + 1));
        }
        b[i].qs[32 * c + l] = static_cast<uint8_t>(l1 | (l2 << 4));
      }
    }
  }
}

void DequantizeQ5_K(const BlockQ5_K* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    const float d = F16ToF32(b[i].d);
    const float dmin = F16ToF32(b[i].dmin);
    for (int j = 0; j < kQK_K / 32; ++j) {
      uint8_t sc, m;
      UnpackScaleMinK4(j, b[i].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int e = 32 * j + l;
        const int high = (b[i].qh[l] >> j) & 1;  // j = 2c + h
        x[e] = d1 * static_cast<float>(GetNibbleK(b[i].qs, e) + 16 * high) - m1;
      }
    }
  }
}

// ---------------------------------------------------------------- Q6_K
// Per sub-block of 16: symmetric scale by MakeQxQuants (levels -32..31);
// scales quantized to int8 against d = -max_scale/128.
void QuantizeQ6_K(const float* x, BlockQ6_K* b, int64_t nb) {
  int8_t L[kQK_K];
  float scales[kQK_K / 16];
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&b[i], 0, sizeof(BlockQ6_K));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    b[i].d = F32ToF16(1 / iscale);
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      b[i].scales[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = F16ToF32(b[i].d) * static_cast<float>(b[i].scales[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt(x[16 * j + ii] / d);
        l = std::max(-32, std::min(31, l));
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }
    // Element 128h + 32k + l: low nibble in ql[64h + 32(k%2) + l] (high
    // nibble when k >= 2), top 2 bits at bit 2k of qh[32h + l].
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = b[i].ql + 64 * h;
      uint8_t* qh = b[i].qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        const int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
        ql[l] = static_cast<uint8_t>((q1 & 0x0f) | ((q3 & 0x0f) << 4));
        ql[l + 32] = static_cast<uint8_t>((q2 & 0x0f) | ((q4 & 0x0f) << 4));
        qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
      }
    }
  }
}

void DequantizeQ6_K(const BlockQ6_K* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    const float d = F16ToF32(b[i].d);
    for (int e = 0; e < kQK_K; ++e) {
      const int h = e / 128, k = (e % 128) / 32, l = e % 32;
      const uint8_t qlb = b[i].ql[64 * h + 32 * (k % 2) + l];
      const int low = k >= 2 ? (qlb >> 4) : (qlb & 0x0f);
      const int high = (b[i].qh[32 * h + l] >> (2 * k)) & 3;
      const int q = (low | (high << 4)) - 32;
      x[e] = d * static_cast<float>(b[i].scales[e / 16]) * static_cast<float>(q);
    }
  }
}

// ---------------------------------------------------------------- Q8_K
// d = max / -127 (f32), q = min(127, nearest(x / d)), bsums per 16.
void QuantizeQ8_K(const float* x, BlockQ8_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    float max = 0;
    float amax = 0;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      // NOTE: ggml leaves bsums unset here; zero them so output is defined.
      std::memset(&b[i], 0, sizeof(BlockQ8_K));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int j = 0; j < kQK_K; ++j) {
      b[i].qs[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * x[j])));
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int ii = 0; ii < 16; ++ii) sum += b[i].qs[16 * j + ii];
      b[i].bsums[j] = static_cast<int16_t>(sum);
    }
    b[i].d = 1 / iscale;
  }
}

void DequantizeQ8_K(const BlockQ8_K* b, float* x, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, x += kQK_K) {
    for (int j = 0; j < kQK_K; ++j) x[j] = b[i].d * static_cast<float>(b[i].qs[j]);
  }
}

}  // namespace formiga
