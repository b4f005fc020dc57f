// MatMul kernels for the 32-element block types Q4_1 and Q5_1 against
// activations quantized to int8 blocks (ActQ8). Q4_0, Q5_0 and Q8_0 have
// their own rows-in-lanes kernels (cpu_matmul_q4x8.cc). Compiled with
// -mavx2 -mfma -mf16c as the avx2 tier, and again, as included by
// isa/*_q8.cc, for the VNNI tiers (cpu_isa.h, isa/tier.h; see "VNNI" below).
//
// Per block: the weight quants are unpacked once into 32 bytes in a register
// and reused for up to kTile tokens. Integer products use the
// maddubs/madd pattern: _mm256_maddubs_epi16 multiplies the unsigned weight
// quants by the signed activations directly, and m * sum(x) comes from the
// activation block's precomputed s.
// Prefill (full 4-token tiles) runs two adjacent rows per pass
// (DotRows2Q8x4): one activation load feeds both rows; each output keeps its
// own accumulator and operation order, so results equal the one-row path.
//
// NOTE: tried and slower on the development machine (AMD EPYC, AVX2), so
// not kept: 4 rows per pass for one token (independent FMA chains, shared
// activation loads): 12-18 % slower per core; 8 rows reduced into the 8
// float lanes with hadd (one scale FMA per 8 rows): 25-45 % slower at T=1,
// 10-25 % at T=64 (hadd is 3 uops, and 16 live vectors spill).
//
// Overflow bound (AVX2): the quants are unsigned, q <= 15 (Q4_1) or <= 31
// (Q5_1), and |x| <= 127 (ActQ8 never holds -128; even 128 would fit): one
// maddubs int16 lane is q0 x0 + q1 x1, |.| <= 2 * 31 * 127 = 7874 < 32767,
// and it is widened to int32 at once (madd by ones), so nothing saturates
// and the block's 8 int32 lanes are the exact sums of 4 products each.
//
// AVX-512 (FORMIGA_CPU_ZMM, the avx512-vnni tier): the two-row prefill pass
// keeps both rows in one zmm (DotRows2Q8x4Z).
//
// VNNI (FORMIGA_CPU_VNNI): the maddubs + madd pair is one vpdpbusd from a
// zero accumulator (4 u8 x s8 products into each int32 lane, no
// saturation): the same exact int32 lanes, then the same float operations
// in the same order, hence the same bits in every tier.
//
// Shapes: W is (N, C) in blocks of 32, xq is (T, C/32), y is (T, N).
#include <algorithm>
#include <cmath>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"
#include "kernels/isa/tier.h"

namespace formiga::cpu::FORMIGA_CPU_TIER {
namespace {

constexpr int kTile = 4;
constexpr int64_t kRowBlock = 16;

inline float H2F(uint16_t h) { return _cvtsh_ss(h); }

// 16 bytes of packed nibbles -> 32 bytes: low nibbles first, then high.
inline __m256i UnpackNibbles(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

// 0x10 in byte j where bit j of the little-endian 32-bit qh is set.
inline __m256i HighBits5(const uint8_t* qh) {
  uint32_t bits;
  __builtin_memcpy(&bits, qh, 4);
  const __m256i shuffle = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                           2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuffle);
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, mask), mask);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Each decoder gives the block's unsigned quants: the weight is d * q + m.
struct DecQ4_1 {
  using Block = BlockQ4_1;
  static __m256i Quants(const Block& b) { return UnpackNibbles(b.qs); }
  static float D(const Block& b) { return H2F(b.d); }
  static float M(const Block& b) { return H2F(b.m); }
};

struct DecQ5_1 {
  using Block = BlockQ5_1;
  static __m256i Quants(const Block& b) { return _mm256_or_si256(UnpackNibbles(b.qs), HighBits5(b.qh)); }
  static float D(const Block& b) { return H2F(b.d); }
  static float M(const Block& b) { return H2F(b.m); }
};

// d * a.d broadcast: as a vector multiply with a broadcast load when the tile
// has several tokens (frees the shuffle port: +6-13 % prefill), as a scalar
// multiply + broadcast for one token (decode, unchanged). IEEE multiplication
// of the same two floats, so both give the same bits.
template <int NT>
inline __m256 Scale(float d, __m256 vd, const float& ad) {
  if constexpr (NT == 1) {
    (void)vd;
    return _mm256_set1_ps(d * ad);
  } else {
    (void)d;
    return _mm256_mul_ps(vd, _mm256_broadcast_ss(&ad));
  }
}

// y[t * ldy] = dot(row, x_t) for NT tokens; x_t = xq + t * nb. Each token's
// accumulation order is independent of NT (batch-invariant results).
template <class Dec, int NT>
void DotRowQ8(const typename Dec::Block* w, const ActQ8* xq, int64_t nb, float* y, int64_t ldy) {
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);  // AVX2 step only
  __m256 acc[NT];
  float accm[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    accm[t] = 0.0f;
  }
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto& b = w[ib];
    if constexpr (NT == 1) {
      // One token: the row streams from DRAM; prefetch ahead (see cpu_matmul_k.cc).
      _mm_prefetch(reinterpret_cast<const char*>(w + ib) + 4096, _MM_HINT_T0);
    }
    const __m256i q = Dec::Quants(b);
    const float d = Dec::D(b);
    const __m256 vd = _mm256_set1_ps(d);
    {
      const float m = Dec::M(b);
      for (int t = 0; t < NT; ++t) {
        const ActQ8& a = xq[t * nb + ib];
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
#if FORMIGA_CPU_VNNI
        const __m256i p = Dpbusd(_mm256_setzero_si256(), q, xv);
#else
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), ones);
#endif
        acc[t] = _mm256_fmadd_ps(Scale<NT>(d, vd, a.d), _mm256_cvtepi32_ps(p), acc[t]);
        accm[t] = std::fma(m, a.s, accm[t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) y[t * ldy] = HSum(acc[t]) + accm[t];
}

// Two adjacent rows x 4 tokens: each activation block is loaded once for both
// rows, each unpacked weight block reused for 4 tokens. Every output keeps its
// own accumulator and the exact operation order of DotRowQ8<Dec, NT>, so the
// results are bit-identical to the one-row path (batch invariance).
template <class Dec>
void DotRows2Q8x4(const typename Dec::Block* w0, const typename Dec::Block* w1, const ActQ8* xq, int64_t nb,
                  float* y, int64_t ldy) {
  constexpr int NT = 4;
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);  // AVX2 step only
  __m256 acc0[NT], acc1[NT];
  float accm0[NT], accm1[NT];
  for (int t = 0; t < NT; ++t) {
    acc0[t] = acc1[t] = _mm256_setzero_ps();
    accm0[t] = accm1[t] = 0.0f;
  }
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto& b0 = w0[ib];
    const auto& b1 = w1[ib];
    const __m256i q0 = Dec::Quants(b0);
    const __m256i q1 = Dec::Quants(b1);
    const float d0 = Dec::D(b0), d1 = Dec::D(b1);
    const __m256 vd0 = _mm256_set1_ps(d0), vd1 = _mm256_set1_ps(d1);
    {
      const float m0 = Dec::M(b0), m1 = Dec::M(b1);
      for (int t = 0; t < NT; ++t) {
        const ActQ8& a = xq[t * nb + ib];
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
#if FORMIGA_CPU_VNNI
        const __m256i p0 = Dpbusd(_mm256_setzero_si256(), q0, xv);
        const __m256i p1 = Dpbusd(_mm256_setzero_si256(), q1, xv);
#else
        const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, xv), ones);
        const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q1, xv), ones);
#endif
        acc0[t] = _mm256_fmadd_ps(_mm256_mul_ps(vd0, _mm256_broadcast_ss(&a.d)), _mm256_cvtepi32_ps(p0), acc0[t]);
        acc1[t] = _mm256_fmadd_ps(_mm256_mul_ps(vd1, _mm256_broadcast_ss(&a.d)), _mm256_cvtepi32_ps(p1), acc1[t]);
        accm0[t] = std::fma(m0, a.s, accm0[t]);
        accm1[t] = std::fma(m1, a.s, accm1[t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) {
    y[t * ldy] = HSum(acc0[t]) + accm0[t];
    y[t * ldy + 1] = HSum(acc1[t]) + accm1[t];
  }
}

#if FORMIGA_CPU_ZMM
// DotRows2Q8x4 with both rows in one zmm (row 0 in the low, row 1 in the
// high 256 bits; the avx512-vnni tier): one vpdpbusd, conversion, scale
// multiply and FMA per token and block for the two rows, each lane the same
// operations as the 8-lane code, so the same bits.
template <class Dec>
void DotRows2Q8x4Z(const typename Dec::Block* w0, const typename Dec::Block* w1, const ActQ8* xq, int64_t nb,
                   float* y, int64_t ldy) {
  constexpr int NT = 4;
  __m512 acc[NT];
  float accm0[NT], accm1[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm512_setzero_ps();
    accm0[t] = accm1[t] = 0.0f;
  }
  for (int64_t ib = 0; ib < nb; ++ib) {
    const auto& b0 = w0[ib];
    const auto& b1 = w1[ib];
    const __m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(Dec::Quants(b0)), Dec::Quants(b1), 1);
    const float d0 = Dec::D(b0), d1 = Dec::D(b1);
    const __m512 vd = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(d0)),
                                                          _mm256_castps_pd(_mm256_set1_ps(d1)), 1));
    const float m0 = Dec::M(b0), m1 = Dec::M(b1);
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const ActQ8& a = xq[t * nb + ib];
      const __m512i xv = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs)));
      const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, xv);
      acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(vd, _mm512_set1_ps(a.d)), Cvt16(p), acc[t]);
      accm0[t] = std::fma(m0, a.s, accm0[t]);
      accm1[t] = std::fma(m1, a.s, accm1[t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    const __m256 lo = _mm512_castps512_ps256(acc[t]);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[t]), 1));
    y[t * ldy] = HSum(lo) + accm0[t];
    y[t * ldy + 1] = HSum(hi) + accm1[t];
  }
}
#endif

template <class Dec>
void MatMulQ8Typed(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t nb = w.cols / kQK, N = w.rows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r0 = n0; r0 < n1; r0 += kRowBlock) {
    const int64_t r1 = std::min(n1, r0 + kRowBlock);
    for (int64_t t = 0; t < T; t += kTile) {
      const int64_t nt = std::min<int64_t>(kTile, T - t);
      const ActQ8* xt = xq + t * nb;
      int64_t n = r0;
      if (nt == kTile) {
        for (; n + 1 < r1; n += 2) {
          const auto* row0 = reinterpret_cast<const typename Dec::Block*>(base + static_cast<size_t>(n) * w.row_bytes);
          const auto* row1 =
              reinterpret_cast<const typename Dec::Block*>(base + static_cast<size_t>(n + 1) * w.row_bytes);
#if FORMIGA_CPU_ZMM
          DotRows2Q8x4Z<Dec>(row0, row1, xt, nb, y + t * N + n, N);
#else
          DotRows2Q8x4<Dec>(row0, row1, xt, nb, y + t * N + n, N);
#endif
        }
      }
      for (; n < r1; ++n) {
        const auto* row = reinterpret_cast<const typename Dec::Block*>(base + static_cast<size_t>(n) * w.row_bytes);
        float* yo = y + t * N + n;
        switch (nt) {
          case 4: DotRowQ8<Dec, 4>(row, xt, nb, yo, N); break;
          case 3: DotRowQ8<Dec, 3>(row, xt, nb, yo, N); break;
          case 2: DotRowQ8<Dec, 2>(row, xt, nb, yo, N); break;
          default: DotRowQ8<Dec, 1>(row, xt, nb, yo, N); break;
        }
      }
    }
  }
}

}  // namespace

// The tier's entry point for the 32-element block types:
// cpu::<FORMIGA_CPU_TIER>::MatMulQ8Rows (cpu_kernels.h); Q4_0, Q5_0 and
// Q8_0 go to the same tier's rows-in-lanes kernels.
void MatMulQ8Rows(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  if (MatMulQ8Rows8(w, xq, T, y, n0, n1)) return;
  switch (w.type) {
    case DType::kQ4_1: MatMulQ8Typed<DecQ4_1>(w, xq, T, y, n0, n1); break;
    default: MatMulQ8Typed<DecQ5_1>(w, xq, T, y, n0, n1); break;
  }
}

}  // namespace formiga::cpu::FORMIGA_CPU_TIER
