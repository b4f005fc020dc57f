// MatMul kernels for the 32-element block types (Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0) against activations quantized to int8 blocks (ActQ8).
// Compiled with -mavx2 -mfma -mf16c.
//
// Per block: the weight quants are unpacked once into 32 bytes in a register
// and reused for up to kTile tokens. Integer products use the
// maddubs/madd pattern: _mm256_maddubs_epi16 multiplies unsigned by signed
// bytes, so signed weights (Q4_0, Q5_0, Q8_0) go through the sign trick
// |w| * (x * sign(w)); unsigned weights with a min (Q4_1, Q5_1) multiply
// directly and add m * sum(x) from the activation block's precomputed s.
//
// NOTE: tried and slower on the development machine (AMD EPYC, AVX2), so
// not kept: 4 rows per pass for one token (independent FMA chains, shared
// activation loads): 12-18 % slower per core; 8 rows reduced into the 8
// float lanes with hadd (one scale FMA per 8 rows): 25-45 % slower at T=1,
// 10-25 % at T=64 (hadd is 3 uops, and 16 live vectors spill).
//
// NOTE: an AVX512-VNNI / AVX-VNNI path (_mm256_dpbusd_epi32 replacing the
// maddubs + madd pair) would go in DotRowQ8; this development machine has no
// AVX-512/VNNI to test it on, so none is written.
//
// Shapes: W is (N, C) in blocks of 32, xq is (T, C/32), y is (T, N).
#include <algorithm>
#include <cmath>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"

namespace formiga::cpu {
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

// Each decoder gives the block's quants (signed for kSigned types: the
// weight is d * q; unsigned otherwise: the weight is d * q + m).
struct DecQ4_0 {
  using Block = BlockQ4_0;
  static constexpr bool kSigned = true;
  static __m256i Quants(const Block& b) { return _mm256_sub_epi8(UnpackNibbles(b.qs), _mm256_set1_epi8(8)); }
  static float D(const Block& b) { return H2F(b.d); }
  static float M(const Block&) { return 0.0f; }
};

struct DecQ4_1 {
  using Block = BlockQ4_1;
  static constexpr bool kSigned = false;
  static __m256i Quants(const Block& b) { return UnpackNibbles(b.qs); }
  static float D(const Block& b) { return H2F(b.d); }
  static float M(const Block& b) { return H2F(b.m); }
};

struct DecQ5_0 {
  using Block = BlockQ5_0;
  static constexpr bool kSigned = true;
  static __m256i Quants(const Block& b) {
    const __m256i q = _mm256_or_si256(UnpackNibbles(b.qs), HighBits5(b.qh));
    return _mm256_sub_epi8(q, _mm256_set1_epi8(16));
  }
  static float D(const Block& b) { return H2F(b.d); }
  static float M(const Block&) { return 0.0f; }
};

struct DecQ5_1 {
  using Block = BlockQ5_1;
  static constexpr bool kSigned = false;
  static __m256i Quants(const Block& b) { return _mm256_or_si256(UnpackNibbles(b.qs), HighBits5(b.qh)); }
  static float D(const Block& b) { return H2F(b.d); }
  static float M(const Block& b) { return H2F(b.m); }
};

struct DecQ8_0 {
  using Block = BlockQ8_0;
  static constexpr bool kSigned = true;
  static __m256i Quants(const Block& b) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs)); }
  static float D(const Block& b) { return H2F(b.d); }
  static float M(const Block&) { return 0.0f; }
};

// y[t * ldy] = dot(row, x_t) for NT tokens; x_t = xq + t * nb. Each token's
// accumulation order is independent of NT (batch-invariant results).
template <class Dec, int NT>
void DotRowQ8(const typename Dec::Block* w, const ActQ8* xq, int64_t nb, float* y, int64_t ldy) {
  const __m256i ones = _mm256_set1_epi16(1);
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
    if constexpr (Dec::kSigned) {
      const __m256i aq = _mm256_sign_epi8(q, q);  // |q| (0x80 reads as 128 unsigned)
      for (int t = 0; t < NT; ++t) {
        const ActQ8& a = xq[t * nb + ib];
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(xv, q)), ones);
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(p), acc[t]);
      }
    } else {
      const float m = Dec::M(b);
      for (int t = 0; t < NT; ++t) {
        const ActQ8& a = xq[t * nb + ib];
        const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.qs));
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), ones);
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), _mm256_cvtepi32_ps(p), acc[t]);
        accm[t] = std::fma(m, a.s, accm[t]);
      }
    }
  }
  for (int t = 0; t < NT; ++t) y[t * ldy] = HSum(acc[t]) + accm[t];
}

template <class Dec>
void MatMulQ8Typed(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t nb = w.cols / kQK, N = w.rows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r0 = n0; r0 < n1; r0 += kRowBlock) {
    const int64_t r1 = std::min(n1, r0 + kRowBlock);
    for (int64_t t = 0; t < T; t += kTile) {
      const int64_t nt = std::min<int64_t>(kTile, T - t);
      const ActQ8* xt = xq + t * nb;
      for (int64_t n = r0; n < r1; ++n) {
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

void MatMulQ8Rows(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  switch (w.type) {
    case DType::kQ4_0: MatMulQ8Typed<DecQ4_0>(w, xq, T, y, n0, n1); break;
    case DType::kQ4_1: MatMulQ8Typed<DecQ4_1>(w, xq, T, y, n0, n1); break;
    case DType::kQ5_0: MatMulQ8Typed<DecQ5_0>(w, xq, T, y, n0, n1); break;
    case DType::kQ5_1: MatMulQ8Typed<DecQ5_1>(w, xq, T, y, n0, n1); break;
    default: MatMulQ8Typed<DecQ8_0>(w, xq, T, y, n0, n1); break;
  }
}

}  // namespace formiga::cpu
