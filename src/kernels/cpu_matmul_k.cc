// MatMul kernels for the K-quants Q2_K and Q3_K (Q4_K, Q5_K and Q6_K go to
// the rows-in-lanes kernels of cpu_matmul_k8.cc) against activations
// quantized to Q8_K (256 int8 with an f32 scale and sums per 16).
// Compiled with -mavx2 -mfma -mf16c as the avx2 tier, and again, as
// included by isa/*_k.cc, for the VNNI tiers (cpu_isa.h, isa/tier.h; see
// "VNNI" below).
//
// Every K-quant weight of a super-block can be written
//   w[e] = d * scale[e / 16] * q[e] - dm * min16[e / 16]
// with q unsigned (0..63) and small integer scale/min16:
//   Q2_K: scale and min from the block, dm = dmin;
//   Q3_K: scale signed 6-bit, q = q3 (0..7) and min16 = 4 * scale, dm = d.
// So each super-block is unpacked once (SIMD) into that common form
// (KBlock), and one dot-product routine serves both types:
//   dot = d dx Σ_g scale_g (q_g · x_g) - dm dx Σ_g min16_g bsum_g
// in exact int32 arithmetic (maddubs + madd), like ggml's vec_dot_*_q8_K.
// The unpacked block is reused for up to kTile tokens.
//
// Overflow bounds (x = Q8_K quants, |x| <= 128; the quantizer gives <= 127):
//   one maddubs int16 lane is q0 x0 + q1 x1 with q <= 3 (Q2_K) or <= 7
//   (Q3_K: q3 + 4): |.| <= 2 * 7 * 128 = 1792 < 32767, and every maddubs
//   result goes straight into a madd (no int16 sums), so it is exact. The
//   madd by the scale: |scale| <= 15 (Q2_K) or <= 32 (Q3_K), one int32 lane
//   <= 2 * 1792 * 32 = 114688; isum over a super-block (8 vectors x 8
//   lanes) <= 256 * 7 * 128 * 32 = 7.3e6. mins: |min16| <= 15 (Q2_K) or
//   <= 128 (Q3_K: 4 * 32), |bsum| <= 16 * 128 = 2048, a madd lane <= 2 *
//   128 * 2048 = 524288. All far inside int32: every integer is exact.
//
// VNNI (FORMIGA_CPU_VNNI): each madd by the scales plus the add into isum
// is one vpdpwssd (s16 x s16 pairs added to the int32 accumulator, no
// saturation), in two chains (even / odd vectors: vpdpwssd's latency sits
// on the accumulator, an add's did). The maddubs stays: the scale changes
// every 16 elements, inside a 32-byte vector, so a vpdpbusd step would
// need a vpmulld per vector after it (cpu_matmul_k8.cc amortizes that over
// a 32-element scale group; here it would be 4 uops per vector on Intel
// against maddubs + vpdpwssd's 2). The mins' madd is unchanged. The same
// exact isum and mins as the AVX2 path, then the same float operations in
// the same order, hence the same bits in every tier.
//
// Shapes: W is (N, C) in super-blocks of 256, xq is (T, C/256), y is (T, N).
#include <algorithm>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"
#include "kernels/isa/tier.h"

namespace formiga::cpu::FORMIGA_CPU_TIER {
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

// acc += d dx Σ scale_g (q_g · x_g) - dm dx Σ min16_g bsum_g for one super-block.
inline __m256 DotK(const KBlock& k, const BlockQ8_K& a, __m256 acc) {
#if FORMIGA_CPU_VNNI
  __m256i isum0 = _mm256_setzero_si256(), isum1 = _mm256_setzero_si256();
  for (int j = 0; j < 8; j += 2) {
    const __m256i q0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(k.q + 32 * j));
    const __m256i q1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(k.q + 32 * j + 32));
    const __m256i x0 = Load32(reinterpret_cast<const uint8_t*>(a.qs) + 32 * j);
    const __m256i x1 = Load32(reinterpret_cast<const uint8_t*>(a.qs) + 32 * j + 32);
    isum0 = Dpwssd(isum0, _mm256_maddubs_epi16(q0, x0),
                   _mm256_load_si256(reinterpret_cast<const __m256i*>(k.scale[j])));
    isum1 = Dpwssd(isum1, _mm256_maddubs_epi16(q1, x1),
                   _mm256_load_si256(reinterpret_cast<const __m256i*>(k.scale[j + 1])));
  }
  const __m256i isum = _mm256_add_epi32(isum0, isum1);
#else
  __m256i isum = _mm256_setzero_si256();
  for (int j = 0; j < 8; ++j) {
    const __m256i qv = _mm256_load_si256(reinterpret_cast<const __m256i*>(k.q + 32 * j));
    const __m256i xv = Load32(reinterpret_cast<const uint8_t*>(a.qs) + 32 * j);
    const __m256i p16 = _mm256_maddubs_epi16(qv, xv);
    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, _mm256_load_si256(reinterpret_cast<const __m256i*>(k.scale[j]))));
  }
#endif
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

template <class Block>
void MatMulKTyped(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t nb = w.cols / kQK_K, N = w.rows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r0 = n0; r0 < n1; r0 += kRowBlock) {
    const int64_t r1 = std::min(n1, r0 + kRowBlock);
    for (int64_t t = 0; t < T; t += kTile) {
      const int64_t nt = std::min<int64_t>(kTile, T - t);
      const BlockQ8_K* xt = xq + t * nb;
      for (int64_t n = r0; n < r1; ++n) {
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

// The tier's entry point for the K-quants: cpu::<FORMIGA_CPU_TIER>::MatMulQ8KRows
// (cpu_kernels.h); Q4_K, Q5_K and Q6_K go to the same tier's rows-in-lanes kernels.
void MatMulQ8KRows(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  if (MatMulQ8KRows8(w, xq, T, y, n0, n1)) return;  // Q4_K, Q5_K, Q6_K
  if (w.type == DType::kQ2_K) {
    MatMulKTyped<BlockQ2_K>(w, xq, T, y, n0, n1);
  } else {
    MatMulKTyped<BlockQ3_K>(w, xq, T, y, n0, n1);
  }
}

}  // namespace formiga::cpu::FORMIGA_CPU_TIER
