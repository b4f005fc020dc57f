// MatMul kernels for the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) against
// activations quantized to Q8_K (256 int8 with an f32 scale and sums per 16).
// Compiled with -mavx2 -mfma -mf16c.
//
// Every K-quant weight of a super-block can be written
//   w[e] = d * scale[e / 16] * q[e] - dm * min16[e / 16]
// with q unsigned (0..63) and small integer scale/min16:
//   Q2_K, Q4_K, Q5_K: scale and min from the block, dm = dmin;
//   Q3_K: scale signed 6-bit, q = q3 (0..7) and min16 = 4 * scale, dm = d;
//   Q6_K: scale int8, q = q6 (0..63) and min16 = 32 * scale, dm = d.
// So each super-block is unpacked once (SIMD) into that common form
// (KBlock), and one dot-product routine serves all five types:
//   dot = d dx Σ_g scale_g (q_g · x_g) - dm dx Σ_g min16_g bsum_g
// in exact int32 arithmetic (maddubs + madd), like ggml's vec_dot_*_q8_K.
// The unpacked block is reused for up to kTile tokens.
//
// NOTE: an AVX512-VNNI path (_mm256_dpbusd_epi32) would replace the
// maddubs + madd pair in DotK; no AVX-512 on the development machine, so
// none is written.
//
// Shapes: W is (N, C) in super-blocks of 256, xq is (T, C/256), y is (T, N).
#include <algorithm>
#include <type_traits>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"

namespace formiga::cpu {
namespace {

constexpr int kTile = 4;
constexpr int64_t kRowBlock = 16;

struct KBlock {
  alignas(32) uint8_t q[kQK_K];
  // scale[j]: int16 multipliers for the 16 int16 lanes of maddubs over
  // elements 32j..32j+31: 8 lanes of sub-block 2j, then 8 of sub-block 2j+1.
  alignas(32) int16_t scale[8][16];
  alignas(32) int16_t min16[16];
  float d;
  float dm;
};

inline void SetScalePair(KBlock& k, int j, int lo, int hi) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(k.scale[j]),
                     _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)),
                                      _mm_set1_epi16(static_cast<int16_t>(lo))));
}

inline void Store32(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m256i Load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256i Mask8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }

// 2-bit fields of Q2_K/Q3_K: byte 32h + l holds element 128h + 32k + l at bit 2k.
inline void Unpack2Bits(const uint8_t* qs, uint8_t* q) {
  for (int h = 0; h < 2; ++h) {
    const __m256i v = Load32(qs + 32 * h);
    for (int k = 0; k < 4; ++k) {
      Store32(q + 128 * h + 32 * k, _mm256_and_si256(_mm256_srli_epi16(v, 2 * k), Mask8(3)));
    }
  }
}

inline void UnpackNibblesK(const uint8_t* qs, uint8_t* q) {
  for (int c = 0; c < 4; ++c) {
    const __m256i v = Load32(qs + 32 * c);
    Store32(q + 64 * c, _mm256_and_si256(v, Mask8(0x0f)));
    Store32(q + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), Mask8(0x0f)));
  }
}

void Unpack(const BlockQ2_K& b, KBlock& k) {
  Unpack2Bits(b.qs, k.q);
  for (int j = 0; j < 8; ++j) SetScalePair(k, j, b.scales[2 * j] & 0x0f, b.scales[2 * j + 1] & 0x0f);
  for (int i = 0; i < 16; ++i) k.min16[i] = static_cast<int16_t>(b.scales[i] >> 4);
  k.d = _cvtsh_ss(b.d);
  k.dm = _cvtsh_ss(b.dmin);
}

void Unpack(const BlockQ3_K& b, KBlock& k) {
  Unpack2Bits(b.qs, k.q);
  // High bit of element 32g + l is bit g of hmask[l]; set means +4.
  const __m256i hm = Load32(b.hmask);
  for (int g = 0; g < 8; ++g) {
    const __m256i bit = Mask8(1 << g);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit);
    uint8_t* p = k.q + 32 * g;
    Store32(p, _mm256_add_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)),
                               _mm256_and_si256(set, Mask8(4))));
  }
  int sc[16];
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? (b.scales[j] & 0x0f) : (b.scales[j - 8] >> 4);
    const int high = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
    sc[j] = (low | (high << 4)) - 32;
    k.min16[j] = static_cast<int16_t>(4 * sc[j]);
  }
  for (int j = 0; j < 8; ++j) SetScalePair(k, j, sc[2 * j], sc[2 * j + 1]);
  k.d = k.dm = _cvtsh_ss(b.d);
}

// Q4_K/Q5_K scales and mins, 6 bits each (ggml's kmask unpacking): bytes
// 0-7 of u are the 8 scales, bytes 8-15 the 8 mins
// (ggml's get_scale_min_k4 for j = 0..7).
inline void ScalesMinsK4(const uint8_t* scales, uint32_t u[4]) {
  __builtin_memcpy(u, scales, 12);
  u[3] = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
  const uint32_t m_lo = u[1] & 0x3f3f3f3f;
  u[1] = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
  u[2] = m_lo;
  u[0] &= 0x3f3f3f3f;
}

// min16 of Q4_K/Q5_K (each min covers two 16-element groups) from u's mins.
inline __m256i Min16K4(const uint32_t u[4]) {
  const __m128i m8 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, static_cast<int>(u[3]), static_cast<int>(u[2])));
  return _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8), _mm_unpacklo_epi16(m8, m8));
}

inline void ScalesK4(const uint8_t* scales, KBlock& k) {
  uint32_t u[4];
  ScalesMinsK4(scales, u);
  const auto* sc = reinterpret_cast<const uint8_t*>(u);
  for (int j = 0; j < 8; ++j) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(k.scale[j]), _mm256_set1_epi16(static_cast<int16_t>(sc[j])));
  }
  _mm256_store_si256(reinterpret_cast<__m256i*>(k.min16), Min16K4(u));
}

void Unpack(const BlockQ4_K& b, KBlock& k) {
  UnpackNibblesK(b.qs, k.q);
  ScalesK4(b.scales, k);
  k.d = _cvtsh_ss(b.d);
  k.dm = _cvtsh_ss(b.dmin);
}

void Unpack(const BlockQ5_K& b, KBlock& k) {
  UnpackNibblesK(b.qs, k.q);
  // Bit 4 of element 32g + l is bit g of qh[l].
  const __m256i qh = Load32(b.qh);
  for (int g = 0; g < 8; ++g) {
    const __m256i bit = Mask8(1 << g);
    const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit);
    uint8_t* p = k.q + 32 * g;
    Store32(p, _mm256_or_si256(_mm256_load_si256(reinterpret_cast<const __m256i*>(p)),
                               _mm256_and_si256(set, Mask8(0x10))));
  }
  ScalesK4(b.scales, k);
  k.d = _cvtsh_ss(b.d);
  k.dm = _cvtsh_ss(b.dmin);
}

// Half h of a Q6_K block: element 128h + 32s + l has its low nibble in
// ql[64h + 32(s%2) + l] (low nibble for s < 2, high for s >= 2) and bits 4-5
// at bits 2s of qh[32h + l]. Quarter(s) gives those 32 six-bit values.
struct Q6Half {
  __m256i low[4];
  __m256i qh;
  __m256i Quarter(int s) const {
    // (qh >> 2s) & 3, moved to bits 4-5: shift left by 4 - 2s (or right).
    const __m256i high = s < 2 ? _mm256_slli_epi16(qh, 4 - 2 * s) : _mm256_srli_epi16(qh, 2 * s - 4);
    return _mm256_or_si256(low[s], _mm256_and_si256(high, Mask8(0x30)));
  }
};

inline Q6Half LoadQ6Half(const BlockQ6_K& b, int h) {
  const __m256i ql0 = Load32(b.ql + 64 * h);
  const __m256i ql1 = Load32(b.ql + 64 * h + 32);
  return {{_mm256_and_si256(ql0, Mask8(0x0f)), _mm256_and_si256(ql1, Mask8(0x0f)),
           _mm256_and_si256(_mm256_srli_epi16(ql0, 4), Mask8(0x0f)),
           _mm256_and_si256(_mm256_srli_epi16(ql1, 4), Mask8(0x0f))},
          Load32(b.qh + 32 * h)};
}

void Unpack(const BlockQ6_K& b, KBlock& k) {
  for (int h = 0; h < 2; ++h) {
    const Q6Half half = LoadQ6Half(b, h);
    for (int s = 0; s < 4; ++s) Store32(k.q + 128 * h + 32 * s, half.Quarter(s));
  }
  for (int j = 0; j < 8; ++j) SetScalePair(k, j, b.scales[2 * j], b.scales[2 * j + 1]);
  _mm256_store_si256(reinterpret_cast<__m256i*>(k.min16),
                     _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales))), 5));
  k.d = k.dm = _cvtsh_ss(b.d);
}

// acc += d dx Σ scale_g (q_g · x_g) - dm dx Σ min16_g bsum_g for one super-block.
inline __m256 DotK(const KBlock& k, const BlockQ8_K& a, __m256 acc) {
  __m256i isum = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    const __m256i qv = _mm256_load_si256(reinterpret_cast<const __m256i*>(k.q + 32 * j));
    const __m256i xv = Load32(reinterpret_cast<const uint8_t*>(a.qs) + 32 * j);
    const __m256i p16 = _mm256_maddubs_epi16(qv, xv);
    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, _mm256_load_si256(reinterpret_cast<const __m256i*>(k.scale[j]))));
  }
  const __m256i mins = _mm256_madd_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(k.min16)),
                                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)));
  acc = _mm256_fmadd_ps(_mm256_set1_ps(k.d * a.d), _mm256_cvtepi32_ps(isum), acc);
  return _mm256_fnmadd_ps(_mm256_set1_ps(k.dm * a.d), _mm256_cvtepi32_ps(mins), acc);
}

template <class Block, int NT>
void DotRowK(const Block* w, const BlockQ8_K* xq, int64_t nb, float* y, int64_t ldy) {
  KBlock k;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    Unpack(w[ib], k);
    for (int t = 0; t < NT; ++t) acc[t] = DotK(k, xq[t * nb + ib], acc[t]);
  }
  for (int t = 0; t < NT; ++t) y[t * ldy] = HSum(acc[t]);
}

// ---- One token (decode): Q4_K and Q6_K without the KBlock round trip.
//
// DotRowK<Block, 1> unpacks a super-block to memory and reads it back, which
// for a single token costs more than the dot product. These build the very
// same quant, scale and min16 vectors in registers and apply the same
// integer and float operations in the same order, so their results are
// bit-identical to DotRowK's (the batch-invariance contract: a token's output
// does not depend on the tile it is computed in).

inline __m256i ScalePair(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)), _mm_set1_epi16(static_cast<int16_t>(lo)));
}

inline __m256 FinishK(__m256i isum, __m256i mins, float d, float dm, const BlockQ8_K& a, __m256 acc) {
  acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(isum), acc);
  return _mm256_fnmadd_ps(_mm256_set1_ps(dm * a.d), _mm256_cvtepi32_ps(mins), acc);
}

inline __m256 DotOne(const BlockQ4_K& b, const BlockQ8_K& a, __m256 acc) {
  uint32_t u[4];
  ScalesMinsK4(b.scales, u);
  const auto* sc = reinterpret_cast<const uint8_t*>(u);
  const int8_t* x = a.qs;
  __m256i isum = _mm256_setzero_si256();
  for (int c = 0; c < 4; ++c) {
    const __m256i v = Load32(b.qs + 32 * c);
    const __m256i lo = _mm256_and_si256(v, Mask8(0x0f));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), Mask8(0x0f));
    const __m256i p0 = _mm256_maddubs_epi16(lo, Load32(reinterpret_cast<const uint8_t*>(x) + 64 * c));
    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * c])));
    const __m256i p1 = _mm256_maddubs_epi16(hi, Load32(reinterpret_cast<const uint8_t*>(x) + 64 * c + 32));
    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * c + 1])));
  }
  const __m256i mins = _mm256_madd_epi16(Min16K4(u), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)));
  return FinishK(isum, mins, _cvtsh_ss(b.d), _cvtsh_ss(b.dmin), a, acc);
}

inline __m256 DotOne(const BlockQ6_K& b, const BlockQ8_K& a, __m256 acc) {
  const auto* x = reinterpret_cast<const uint8_t*>(a.qs);
  const int8_t* sc = b.scales;
  __m256i isum = _mm256_setzero_si256();
  for (int h = 0; h < 2; ++h) {
    const Q6Half half = LoadQ6Half(b, h);
    for (int s = 0; s < 4; ++s) {
      const __m256i q = half.Quarter(s);
      const int j = 4 * h + s;
      const __m256i p = _mm256_maddubs_epi16(q, Load32(x + 32 * j));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, ScalePair(sc[2 * j], sc[2 * j + 1])));
    }
  }
  const __m256i min16 =
      _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))), 5);
  const __m256i mins = _mm256_madd_epi16(min16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bsums)));
  const float d = _cvtsh_ss(b.d);
  return FinishK(isum, mins, d, d, a, acc);
}

template <class Block>
constexpr bool kHasDotOne = std::is_same_v<Block, BlockQ4_K> || std::is_same_v<Block, BlockQ6_K>;

constexpr int kPrefetch = 4096;

// One token, two rows interleaved (independent chains).
template <class Block>
void DotRows2One(const Block* w0, const Block* w1, const BlockQ8_K* xq, int64_t nb, float* y) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    // NOTE: software prefetch kPrefetch bytes ahead in both rows: the two
    // interleaved streams (adjacent rows) defeat the hardware prefetcher,
    // and without it weights coming from DRAM ran at half the in-cache rate.
    const char* p0 = reinterpret_cast<const char*>(w0 + ib) + kPrefetch;
    const char* p1 = reinterpret_cast<const char*>(w1 + ib) + kPrefetch;
    for (size_t off = 0; off < sizeof(Block); off += 64) {
      _mm_prefetch(p0 + off, _MM_HINT_T0);
      _mm_prefetch(p1 + off, _MM_HINT_T0);
    }
    a0 = DotOne(w0[ib], xq[ib], a0);
    a1 = DotOne(w1[ib], xq[ib], a1);
  }
  y[0] = HSum(a0);
  y[1] = HSum(a1);
}

template <class Block>
float DotRowOne(const Block* w, const BlockQ8_K* xq, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) acc = DotOne(w[ib], xq[ib], acc);
  return HSum(acc);
}

template <class Block>
void MatMulKTyped(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t nb = w.cols / kQK_K, N = w.rows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r0 = n0; r0 < n1; r0 += kRowBlock) {
    const int64_t r1 = std::min(n1, r0 + kRowBlock);
    for (int64_t t = 0; t < T; t += kTile) {
      const int64_t nt = std::min<int64_t>(kTile, T - t);
      const BlockQ8_K* xt = xq + t * nb;
      int64_t n = r0;
      if constexpr (kHasDotOne<Block>) {
        if (nt == 1) {
          for (; n + 2 <= r1; n += 2) {
            const auto* row = reinterpret_cast<const Block*>(base + static_cast<size_t>(n) * w.row_bytes);
            const auto* next = reinterpret_cast<const Block*>(base + static_cast<size_t>(n + 1) * w.row_bytes);
            DotRows2One(row, next, xt, nb, y + t * N + n);
          }
          if (n < r1) {
            y[t * N + n] = DotRowOne(reinterpret_cast<const Block*>(base + static_cast<size_t>(n) * w.row_bytes), xt, nb);
            ++n;
          }
        }
      }
      for (; n < r1; ++n) {
        const auto* row = reinterpret_cast<const Block*>(base + static_cast<size_t>(n) * w.row_bytes);
        float* yo = y + t * N + n;
        switch (nt) {
          case 4: DotRowK<Block, 4>(row, xt, nb, yo, N); break;
          case 3: DotRowK<Block, 3>(row, xt, nb, yo, N); break;
          case 2: DotRowK<Block, 2>(row, xt, nb, yo, N); break;
          default: DotRowK<Block, 1>(row, xt, nb, yo, N); break;
        }
      }
    }
  }
}

}  // namespace

void MatMulQ8KRows(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  switch (w.type) {
    case DType::kQ2_K: MatMulKTyped<BlockQ2_K>(w, xq, T, y, n0, n1); break;
    case DType::kQ3_K: MatMulKTyped<BlockQ3_K>(w, xq, T, y, n0, n1); break;
    case DType::kQ4_K: MatMulKTyped<BlockQ4_K>(w, xq, T, y, n0, n1); break;
    case DType::kQ5_K: MatMulKTyped<BlockQ5_K>(w, xq, T, y, n0, n1); break;
    default: MatMulKTyped<BlockQ6_K>(w, xq, T, y, n0, n1); break;
  }
}

}  // namespace formiga::cpu
