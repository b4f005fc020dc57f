// MatMul kernels for Q4_K, Q5_K and Q6_K with 8 ROWS IN THE 8 LANES ("rows
// in lanes"), against Q8_K activations. Compiled with -mavx2 -mfma -mf16c as
// the avx2 tier, and again, as included by isa/*_k8.cc, for the VNNI tiers
// (cpu_isa.h, isa/tier.h; see "VNNI" below).
//
// The weights are the mapped GGUF blocks (the avx512-vnni tier reads a
// packed copy instead: cpu_pack.h, "Packed weights" below). For each super-
// block of 8 consecutive rows, Unpack8 builds (in an L1 buffer, Rows8):
//  - q[v], v = 0..63: lane r holds the 4 unsigned quants of elements
//    4v..4v+3 of row r. Made by loading the same 32-byte stretch of quants
//    from the 8 rows and transposing 4-byte groups (Transpose8x32), then
//    splitting nibbles / adding Q5_K's and Q6_K's high bits;
//  - scale[g]: lane r = the int16 scale of scale group g of row r, in both
//    halves of the 32-bit lane (the multiplier of a madd);
//  - minp[p]: lane r = the int16 pair that multiplies Q8_K's bsums 2p, 2p+1
//    (Q4_K/Q5_K: min_p, min_p; Q6_K: 32 scale_2p, 32 scale_2p+1);
//  - d, dm: the 8 rows' f16 scales as f32 vectors.
// Scales and mins of the 8 rows are decoded with vector ops (ggml's kmask
// trick applied lane-wise after a 4x8 transpose of the 12-byte scale words,
// then one byte shuffle per vector).
//
// Per token (Dot8), with x broadcast 4 bytes at a time (vpbroadcastd from
// memory: a load, no shuffle):
//   s16 = Σ_{kSteps} maddubs(q[v], x[4v..4v+3])   (int16, exact: bounds below)
//   isum += madd(s16, scale[g])                    (int32, exact)
//   msum  = Σ_p madd(minp[p], bsums[2p], bsums[2p+1])
//   Q4_K/Q5_K: acc = fma(cvt(isum), d dx, acc); acc = fnmadd(cvt(msum), dm dx, acc)
//   Q6_K: acc = fma(cvt(isum - msum), d dx, acc)     (q - 32 folded in int32)
// The 8 lanes are the 8 outputs: one store per token, no horizontal sums.
//
// Overflow bounds (x = Q8_K quants, |x| <= 128; the quantizer gives <= 127):
//  Q4_K: q <= 15: one maddubs lane <= 2*15*128 = 3840; 8 steps (a 32-element
//   sub-block) <= 30720 < 32767. isum <= 8 sub-blocks * 63 * 32*15*128 =
//   30.9e6; msum <= 8 * 63 * 32*128 = 2.1e6.
//  Q5_K: q <= 31: one lane <= 2*31*128 = 7936; 4 steps <= 31744, so a
//   sub-block is 2 madds. isum <= 8 * 63 * 32*31*128 = 64e6.
//  Q6_K: q <= 63: one maddubs lane <= 2*63*128 = 16128, so only 2 steps fit
//   int16 (32256); a 16-element sub-block is 4 steps = 2 madds. isum <=
//   16 * 128 * 16*63*128 = 264e6; msum <= 16 * 32*128 * 16*128 = 134e6;
//   |isum - msum| <= 398e6 < 2^31.
// So every integer is exact, whatever the grouping: any kernel computing
// the same isum/msum and then the same float operations (in the same order)
// gives bit-identical results. Decode (T = 1, DotOne8) consumes each quant
// vector as it is unpacked; batched decode (T = 2..15, RowsTok) unpacks one
// super-block into L1 and reuses each 8-vector run from registers for up to
// 8 tokens; prefill (Dot8) unpacks strips of 8 super-blocks once into L1 and
// sweeps them with every 4-token tile. Both make the same
// integers and then the same float operations in the same order, so a row's
// output does not depend on its batch, tile or thread count.
//
// AVX-512 (FORMIGA_CPU_ZMM, the avx512-vnni tier): prefill takes 16 rows at
// a time, two 8-row groups in the halves of each zmm (Rows16Strips): the same
// per-lane integers and float operations, twice as many lanes per
// instruction.
//
// VNNI (FORMIGA_CPU_VNNI): a scale group's quants go through vpdpbusd
// straight into int32 (no int16 step: 4 products per lane, no saturation),
// then one vpmulld by the group's scale (scale[g] then holds it as an int32
// per lane), and msum's madd + add pairs are vpdpwssd. The same exact
// isum/msum as the AVX2 path, hence the same bits.
//
// Shapes: W is (N, C) in super-blocks of 256, xq is (T, C/256), y is (T, N).
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_pack.h"
#include "kernels/cpu_simd.h"
#include "kernels/isa/tier.h"

namespace formiga::cpu::FORMIGA_CPU_TIER {
namespace {

constexpr int kTile = 4;

#define K8_LAMBDA __attribute__((always_inline))

inline __m256i Load32(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m128i Load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline __m256i Mask8(int v) { return _mm256_set1_epi8(static_cast<char>(v)); }

// In: r[i] = 32 bytes of row i. Out: r[k] lane i = bytes 4k..4k+3 of row i.
FORMIGA_ALWAYS_INLINE void Transpose8x32(__m256i r[8]) {
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  // u0: groups 0 | 4 of rows 0-3; u1: 1 | 5; u2: 2 | 6; u3: 3 | 7; u4..u7 rows 4-7.
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

// Loads the 32-byte stretch at `off` of the 8 rows' super-block and transposes it.
FORMIGA_ALWAYS_INLINE void LoadT(const uint8_t* const rp[8], size_t off, __m256i r[8]) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) r[i] = Load32(rp[i] + off);
  Transpose8x32(r);
}

// 16 bytes at `off` of the 8 rows: w[m] lane i = bytes 4m..4m+3 of row i.
FORMIGA_ALWAYS_INLINE void LoadT16(const uint8_t* const rp[8], size_t off, __m256i w[4]) {
  __m256i a[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) a[i] = _mm256_set_m128i(Load16(rp[i + 4] + off), Load16(rp[i] + off));
  const __m256i t0 = _mm256_unpacklo_epi32(a[0], a[1]), t1 = _mm256_unpackhi_epi32(a[0], a[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(a[2], a[3]), t3 = _mm256_unpackhi_epi32(a[2], a[3]);
  w[0] = _mm256_unpacklo_epi64(t0, t2);
  w[1] = _mm256_unpackhi_epi64(t0, t2);
  w[2] = _mm256_unpacklo_epi64(t1, t3);
  w[3] = _mm256_unpackhi_epi64(t1, t3);
}

// The vector operations the quant unpacking (Quants8) is written with, for
// 8 rows in a ymm (V8) and, under FORMIGA_CPU_ZMM, 16 rows in a zmm (V16,
// below): one body for both widths.
struct V8 {
  using T = __m256i;
  FORMIGA_ALWAYS_INLINE static T And(T a, T b) { return _mm256_and_si256(a, b); }
  FORMIGA_ALWAYS_INLINE static T Or(T a, T b) { return _mm256_or_si256(a, b); }
  template <int n>
  FORMIGA_ALWAYS_INLINE static T Srl16(T a) { return _mm256_srli_epi16(a, n); }
  template <int n>
  FORMIGA_ALWAYS_INLINE static T Sll16(T a) { return _mm256_slli_epi16(a, n); }
  FORMIGA_ALWAYS_INLINE static T Bytes(int v) { return Mask8(v); }
  // The 32-byte stretch at `off` of the rows, transposed (LoadT).
  FORMIGA_ALWAYS_INLINE static void Load(const uint8_t* const* rp, size_t off, T r[8]) { LoadT(rp, off, r); }
};

// Per 32-bit lane, byte b0 into the low and b1 into the high int16 (bytes
// -1: zero), as constant shuffle masks.
template <int b0lo, int b0hi, int b1lo, int b1hi>
FORMIGA_ALWAYS_INLINE __m256i ShufDword(__m256i v) {
  constexpr auto m = [](int lane, int b) -> char { return b < 0 ? char(-128) : static_cast<char>(4 * lane + b); };
  const __m256i mask =
      _mm256_setr_epi8(m(0, b0lo), m(0, b0hi), m(0, b1lo), m(0, b1hi), m(1, b0lo), m(1, b0hi), m(1, b1lo),
                       m(1, b1hi), m(2, b0lo), m(2, b0hi), m(2, b1lo), m(2, b1hi), m(3, b0lo), m(3, b0hi),
                       m(3, b1lo), m(3, b1hi), m(0, b0lo), m(0, b0hi), m(0, b1lo), m(0, b1hi), m(1, b0lo),
                       m(1, b0hi), m(1, b1lo), m(1, b1hi), m(2, b0lo), m(2, b0hi), m(2, b1lo), m(2, b1hi),
                       m(3, b0lo), m(3, b0hi), m(3, b1lo), m(3, b1hi));
  return _mm256_shuffle_epi8(v, mask);
}

// Unsigned byte b of each 32-bit lane, as int16 in both halves.
template <int b>
FORMIGA_ALWAYS_INLINE __m256i BytePairU(__m256i v) {
  return ShufDword<b, -1, b, -1>(v);
}

// A Q4_K/Q5_K scale (unsigned byte b of each 32-bit lane) in the form the
// dot product multiplies by: an int16 pair for madd (AVX2), an int32 (VNNI).
template <int b>
FORMIGA_ALWAYS_INLINE __m256i ScaleU(__m256i v) {
#if FORMIGA_CPU_VNNI
  return ShufDword<b, -1, -1, -1>(v);
#else
  return BytePairU<b>(v);
#endif
}

// The 8 rows' super-block in the form Dot8 consumes (see the file comment).
template <int kGroups>
struct Rows8 {
  __m256i q[64];
  __m256i scale[kGroups];
  __m256i minp[8];
  __m256 d, dm;
};

// f16 pairs (lo, hi) of 8 32-bit lanes -> f32 vectors of the lows and highs.
FORMIGA_ALWAYS_INLINE void HalfPairsToF32(__m256i w, __m256* lo, __m256* hi) {
  const __m256i p = _mm256_packus_epi32(_mm256_and_si256(w, _mm256_set1_epi32(0xffff)), _mm256_srli_epi32(w, 16));
  // p: lows rows 0-3, highs rows 0-3 | lows rows 4-7, highs rows 4-7.
  const __m256i o = _mm256_permute4x64_epi64(p, 0xd8);
  *lo = _mm256_cvtph_ps(_mm256_castsi256_si128(o));
  *hi = _mm256_cvtph_ps(_mm256_extracti128_si256(o, 1));
}

// ---- Q4_K: d, dmin (f16), scales[12] (6-bit scales/mins), qs[128]:
// byte 32c + l holds element 64c + l (low nibble) and 64c + 32 + l (high).
// Q5_K: the same head, then qh[32] (bit 4 of element 64c + l is bit 2c of
// qh[l], of element 64c + 32 + l bit 2c + 1), then qs as Q4_K's.
template <class Block>
FORMIGA_ALWAYS_INLINE void Head8(const uint8_t* const rp[8], size_t ib, const Block*, Rows8<8>& k) {
  static_assert(offsetof(Block, scales) == 4);
  const size_t o = ib * sizeof(Block);
  __m256i w[4];
  LoadT16(rp, o, w);  // w[0] = d | dmin << 16, w[1..3] = the 3 scale words
  HalfPairsToF32(w[0], &k.d, &k.dm);
  // ggml's kmask unpacking, lane-wise: bytes of s03/s47 = scales 0-3 / 4-7,
  // of m03/m47 = mins 0-3 / 4-7.
  const __m256i k1 = Mask8(0x3f), k2 = Mask8(0x0f), k3 = Mask8(0x03);
  const __m256i s03 = _mm256_and_si256(w[1], k1);
  const __m256i m03 = _mm256_and_si256(w[2], k1);
  const __m256i s47 = _mm256_or_si256(_mm256_and_si256(w[3], k2),
                                      _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w[1], 6), k3), 4));
  const __m256i m47 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w[3], 4), k2),
                                      _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w[2], 6), k3), 4));
  k.scale[0] = ScaleU<0>(s03);
  k.scale[1] = ScaleU<1>(s03);
  k.scale[2] = ScaleU<2>(s03);
  k.scale[3] = ScaleU<3>(s03);
  k.scale[4] = ScaleU<0>(s47);
  k.scale[5] = ScaleU<1>(s47);
  k.scale[6] = ScaleU<2>(s47);
  k.scale[7] = ScaleU<3>(s47);
  k.minp[0] = BytePairU<0>(m03);
  k.minp[1] = BytePairU<1>(m03);
  k.minp[2] = BytePairU<2>(m03);
  k.minp[3] = BytePairU<3>(m03);
  k.minp[4] = BytePairU<0>(m47);
  k.minp[5] = BytePairU<1>(m47);
  k.minp[6] = BytePairU<2>(m47);
  k.minp[7] = BytePairU<3>(m47);
}

// Calls sink(v, q[v]) for v = 0..63 (see Rows8), ascending within each
// sub-block.
// V: the vector width (V8, V16; rp has that many rows).
template <class V = V8, class Sink>
FORMIGA_ALWAYS_INLINE void Quants8(const uint8_t* const* rp, size_t ib, const BlockQ4_K*, Sink&& sink) {
  const size_t o = ib * sizeof(BlockQ4_K) + offsetof(BlockQ4_K, qs);
  const typename V::T m4 = V::Bytes(0x0f);
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    typename V::T r[8];
    V::Load(rp, o + 32 * c, r);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      sink(16 * c + j, V::And(r[j], m4));
      sink(16 * c + 8 + j, V::And(V::template Srl16<4>(r[j]), m4));
    }
  }
}

// Bit b of each byte moved to bit 4 (16-bit shifts by at most 4: the bit
// stays within its byte).
template <class V, int b>
FORMIGA_ALWAYS_INLINE typename V::T Bit4(typename V::T v) {
  if constexpr (b < 4) return V::And(V::template Sll16<4 - b>(v), V::Bytes(0x10));
  if constexpr (b == 4) return V::And(v, V::Bytes(0x10));
  if constexpr (b > 4) return V::And(V::template Srl16<b - 4>(v), V::Bytes(0x10));
}

template <class V, int c, class Sink>
FORMIGA_ALWAYS_INLINE void Quants8Q5Chunk(const uint8_t* const* rp, size_t o, const typename V::T qh[8], Sink&& sink) {
  const typename V::T m4 = V::Bytes(0x0f);
  typename V::T r[8];
  V::Load(rp, o + offsetof(BlockQ5_K, qs) + 32 * c, r);
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) {
    sink(16 * c + j, V::Or(V::And(r[j], m4), Bit4<V, 2 * c>(qh[j])));
    sink(16 * c + 8 + j, V::Or(V::And(V::template Srl16<4>(r[j]), m4), Bit4<V, 2 * c + 1>(qh[j])));
  }
}

template <class V = V8, class Sink>
FORMIGA_ALWAYS_INLINE void Quants8(const uint8_t* const* rp, size_t ib, const BlockQ5_K*, Sink&& sink) {
  const size_t o = ib * sizeof(BlockQ5_K);
  typename V::T qh[8];
  V::Load(rp, o + offsetof(BlockQ5_K, qh), qh);
  Quants8Q5Chunk<V, 0>(rp, o, qh, sink);
  Quants8Q5Chunk<V, 1>(rp, o, qh, sink);
  Quants8Q5Chunk<V, 2>(rp, o, qh, sink);
  Quants8Q5Chunk<V, 3>(rp, o, qh, sink);
}

// ---- Q6_K: ql[128], qh[64], scales[16] (int8), d (f16). Per half h:
// element 128h + 32s + l has its low nibble in ql[64h + 32(s%2) + l] (low
// nibble for s < 2, high for s >= 2) and bits 4-5 at bits 2s of qh[32h + l].
FORMIGA_ALWAYS_INLINE void Head8(const uint8_t* const rp[8], size_t ib, const BlockQ6_K*, Rows8<16>& k) {
  const size_t o = ib * sizeof(BlockQ6_K);
  __m256i w[4];
  LoadT16(rp, o + offsetof(BlockQ6_K, scales), w);  // byte b of w[m] = scale 4m + b
  // scale[g] = (s_g, s_g) sign-extended: the byte in both high bytes, >> 8.
  // VNNI: s_g as an int32: the byte in the top byte, >> 24.
  const auto sc = [&](int g) -> __m256i {
    __m256i v = w[g / 4];
#if FORMIGA_CPU_VNNI
    switch (g % 4) {
      case 0: v = ShufDword<-1, -1, -1, 0>(v); break;
      case 1: v = ShufDword<-1, -1, -1, 1>(v); break;
      case 2: v = ShufDword<-1, -1, -1, 2>(v); break;
      default: v = ShufDword<-1, -1, -1, 3>(v); break;
    }
    return _mm256_srai_epi32(v, 24);
#else
    switch (g % 4) {
      case 0: v = ShufDword<-1, 0, -1, 0>(v); break;
      case 1: v = ShufDword<-1, 1, -1, 1>(v); break;
      case 2: v = ShufDword<-1, 2, -1, 2>(v); break;
      default: v = ShufDword<-1, 3, -1, 3>(v); break;
    }
    return _mm256_srai_epi16(v, 8);
#endif
  };
#pragma GCC unroll 16
  for (int g = 0; g < 16; ++g) k.scale[g] = sc(g);
  // minp[p] = (32 s_2p, 32 s_2p+1): the bytes in the high bytes, >> 3.
#pragma GCC unroll 8
  for (int p = 0; p < 8; ++p) {
    const __m256i v = p % 2 == 0 ? ShufDword<-1, 0, -1, 1>(w[p / 2]) : ShufDword<-1, 2, -1, 3>(w[p / 2]);
    k.minp[p] = _mm256_srai_epi16(v, 3);
  }
  uint16_t dh[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) std::memcpy(&dh[i], rp[i] + o + offsetof(BlockQ6_K, d), 2);
  k.d = k.dm = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(dh)));
}

template <class V = V8, class Sink>
FORMIGA_ALWAYS_INLINE void Quants8(const uint8_t* const* rp, size_t ib, const BlockQ6_K*, Sink&& sink) {
  const size_t o = ib * sizeof(BlockQ6_K);
  const typename V::T m4 = V::Bytes(0x0f), m30 = V::Bytes(0x30);
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    // ql's first 32 bytes hold quarters 0 and 2, the next 32 quarters 1 and 3.
    typename V::T l[8], qh[8];
    V::Load(rp, o + offsetof(BlockQ6_K, qh) + 32 * h, qh);
    V::Load(rp, o + offsetof(BlockQ6_K, ql) + 64 * h, l);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      sink(32 * h + j, V::Or(V::And(l[j], m4), V::And(V::template Sll16<4>(qh[j]), m30)));
      sink(32 * h + 16 + j, V::Or(V::And(V::template Srl16<4>(l[j]), m4), V::And(qh[j], m30)));
    }
    V::Load(rp, o + offsetof(BlockQ6_K, ql) + 64 * h + 32, l);
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      sink(32 * h + 8 + j, V::Or(V::And(l[j], m4), V::And(V::template Sll16<2>(qh[j]), m30)));
      sink(32 * h + 24 + j, V::Or(V::And(V::template Srl16<4>(l[j]), m4), V::And(V::template Srl16<2>(qh[j]), m30)));
    }
  }
}

FORMIGA_ALWAYS_INLINE __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Type traits of the dot product: quant vectors per scale group, maddubs
// steps summed in int16 before a madd, and whether the mins fold into isum.
template <class Block>
struct K8;
template <>
struct K8<BlockQ4_K> {
  static constexpr int kGroups = 8, kSteps = 8;
  static constexpr bool kFold = false;
};
template <>
struct K8<BlockQ5_K> {
  static constexpr int kGroups = 8, kSteps = 4;
  static constexpr bool kFold = false;
};
template <>
struct K8<BlockQ6_K> {
  static constexpr int kGroups = 16, kSteps = 2;
  static constexpr bool kFold = true;
};

// acc (lane r = row r) += the float part of one token's super-block dot product.
template <class Block>
FORMIGA_ALWAYS_INLINE __m256 Finish8(const Rows8<K8<Block>::kGroups>& k, const BlockQ8_K& a, __m256i isum, __m256 acc) {
  __m256i msum = _mm256_madd_epi16(k.minp[0], Bcast4(reinterpret_cast<const int8_t*>(a.bsums)));
#pragma GCC unroll 8
  for (int p = 1; p < 8; ++p) {
#if FORMIGA_CPU_VNNI
    msum = Dpwssd(msum, k.minp[p], Bcast4(reinterpret_cast<const int8_t*>(a.bsums + 2 * p)));
#else
    msum = _mm256_add_epi32(msum,
                            _mm256_madd_epi16(k.minp[p], Bcast4(reinterpret_cast<const int8_t*>(a.bsums + 2 * p))));
#endif
  }
  const __m256 dx = _mm256_broadcast_ss(&a.d);
  if constexpr (K8<Block>::kFold) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum, msum)), _mm256_mul_ps(k.d, dx), acc);
  } else {
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(k.d, dx), acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_mul_ps(k.dm, dx), acc);
  }
}

#if FORMIGA_CPU_VNNI
// Σ_{v < kN} q[v] · x[4v..4v+3] per lane, exact int32 (two vpdpbusd chains).
template <int kN>
FORMIGA_ALWAYS_INLINE __m256i GroupSumVnni(const __m256i* q, const int8_t* x) {
  static_assert(kN % 2 == 0);
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int v = 0; v < kN; v += 2) {
    s0 = Dpbusd(s0, q[v], Bcast4(x + 4 * v));
    s1 = Dpbusd(s1, q[v + 1], Bcast4(x + 4 * v + 4));
  }
  return _mm256_add_epi32(s0, s1);
}
#endif

// acc[t] (lane r = row r) += the super-block's dot products for NT tokens
// (token t's block at x[t * nb]), from the quants unpacked in k.q.
template <class Block, int NT>
FORMIGA_ALWAYS_INLINE void Dot8(const Rows8<K8<Block>::kGroups>& k, const BlockQ8_K* x, int64_t nb, __m256 acc[NT]) {
  using Tr = K8<Block>;
  constexpr int kPerGroup = 64 / Tr::kGroups;
  __m256i isum[NT];
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) isum[t] = _mm256_setzero_si256();
#pragma GCC unroll 16
  for (int g = 0; g < Tr::kGroups; ++g) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const int8_t* xs = x[t * nb].qs;
#if FORMIGA_CPU_VNNI
      isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(GroupSumVnni<kPerGroup>(k.q + g * kPerGroup,
                                                                                      xs + 4 * g * kPerGroup),
                                                             k.scale[g]));
#else
#pragma GCC unroll 8
      for (int s = 0; s < kPerGroup; s += Tr::kSteps) {
        const int v0 = g * kPerGroup + s;
        __m256i s16 = _mm256_maddubs_epi16(k.q[v0], Bcast4(xs + 4 * v0));
#pragma GCC unroll 8
        for (int i = 1; i < Tr::kSteps; ++i) {
          s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(k.q[v0 + i], Bcast4(xs + 4 * (v0 + i))));
        }
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s16, k.scale[g]));
      }
#endif
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) acc[t] = Finish8<Block>(k, x[t * nb], isum[t], acc[t]);
}

// One token: the same integer sums as Dot8 (exact, so equal whatever the
// grouping) made as the quants are unpacked, without storing them.
template <class Block>
FORMIGA_ALWAYS_INLINE __m256 DotOne8(const uint8_t* const rp[8], size_t ib, Rows8<K8<Block>::kGroups>& k, const BlockQ8_K& a,
                         __m256 acc) {
  using Tr = K8<Block>;
  constexpr int kPerGroup = 64 / Tr::kGroups;
  Head8(rp, ib, static_cast<const Block*>(nullptr), k);
  __m256i isum = _mm256_setzero_si256();
#if FORMIGA_CPU_VNNI
  // Each scale group's vectors arrive in ascending order (Quants8).
  __m256i s32[Tr::kGroups];
  Quants8(rp, ib, static_cast<const Block*>(nullptr), [&](int v, __m256i q) K8_LAMBDA {
    const int g = v / kPerGroup;
    s32[g] = Dpbusd(v % kPerGroup == 0 ? _mm256_setzero_si256() : s32[g], q, Bcast4(a.qs + 4 * v));
    if (v % kPerGroup == kPerGroup - 1) isum = _mm256_add_epi32(isum, _mm256_mullo_epi32(s32[g], k.scale[g]));
  });
#else
  __m256i s16[64 / Tr::kSteps];
  Quants8(rp, ib, static_cast<const Block*>(nullptr), [&](int v, __m256i q) K8_LAMBDA {
    const __m256i p = _mm256_maddubs_epi16(q, Bcast4(a.qs + 4 * v));
    const int sg = v / Tr::kSteps;
    s16[sg] = v % Tr::kSteps == 0 ? p : _mm256_add_epi16(s16[sg], p);
    if (v % Tr::kSteps == Tr::kSteps - 1) {
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(s16[sg], k.scale[v / kPerGroup]));
    }
  });
#endif
  return Finish8<Block>(k, a, isum, acc);
}

template <class Block>
FORMIGA_ALWAYS_INLINE void Unpack8(const uint8_t* const rp[8], size_t ib, Rows8<K8<Block>::kGroups>& k) {
  Head8(rp, ib, static_cast<const Block*>(nullptr), k);
  Quants8(rp, ib, static_cast<const Block*>(nullptr), [&](int v, __m256i q) K8_LAMBDA { k.q[v] = q; });
}

FORMIGA_ALWAYS_INLINE void Store8(float* y, __m256 v, int nrows) {
  if (nrows == 8) {
    _mm256_storeu_ps(y, v);
  } else {
    alignas(32) float buf[8];
    _mm256_store_ps(buf, v);
    std::memcpy(y, buf, static_cast<size_t>(nrows) * sizeof(float));
  }
}

// Decode (T = 1): y[i] for the rows rp[0..nrows), quants consumed as they are
// unpacked. `next` (or null): the following 8 rows, prefetched.
template <class Block>
void Rows8One(const uint8_t* const rp[8], const uint8_t* next, const BlockQ8_K* xq, int64_t nb, float* y,
              int nrows) {
  Rows8<K8<Block>::kGroups> k;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) {
    if (next != nullptr) {
      // NOTE: decode streams the weights once and 8 interleaved row streams
      // defeat the hardware prefetcher: prefetch the next 8 rows (contiguous)
      // at the pace this group is read.
      const char* p = reinterpret_cast<const char*>(next) + ib * 8 * sizeof(Block);
      for (size_t off = 0; off < 8 * sizeof(Block); off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    }
    acc = DotOne8<Block>(rp, static_cast<size_t>(ib), k, xq[ib], acc);
  }
  Store8(y, acc, nrows);
}

// NT tokens of the super-blocks strip[0..ns) (token t's blocks at x[t * nb]);
// the running sums (8 lanes at acc + t * ld) start at 0 (first) or at their
// stored values, and are stored back.
template <class Block, int NT>
void StripTile(const Rows8<K8<Block>::kGroups>* strip, int ns, const BlockQ8_K* x, int64_t nb, float* acc_io,
               int64_t ld, bool first) {
  __m256 acc[NT];
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) acc[t] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(acc_io + t * ld);
  for (int s = 0; s < ns; ++s) Dot8<Block, NT>(strip[s], x + s, nb, acc);
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(acc_io + t * ld, acc[t]);
}

template <class Block>
void StripTiles(const Rows8<K8<Block>::kGroups>* strip, int ns, const BlockQ8_K* x, int64_t nb, int64_t nt,
                float* acc_io, int64_t ld, bool first) {
  switch (nt) {
    case 4: StripTile<Block, 4>(strip, ns, x, nb, acc_io, ld, first); break;
    case 3: StripTile<Block, 3>(strip, ns, x, nb, acc_io, ld, first); break;
    case 2: StripTile<Block, 2>(strip, ns, x, nb, acc_io, ld, first); break;
    default: StripTile<Block, 1>(strip, ns, x, nb, acc_io, ld, first); break;
  }
}

// Prefill (T > 1): kStrip super-blocks of the 8 rows are unpacked once and
// swept by every 4-token tile; the running sums wait in y between strips.
// A tail group (nrows < 8) must not touch y's other lanes: it sweeps one
// token tile at a time, its sums in a local buffer, and unpacks per tile.
// Both apply the same operations in the same order per output.
constexpr int kStrip = 8;

template <class Block>
void Rows8Strips(const uint8_t* const rp[8], const BlockQ8_K* xq, int64_t T, int64_t nb, float* y, int64_t N,
                 int nrows) {
  Rows8<K8<Block>::kGroups> strip[kStrip];
  const auto unpack = [&](int64_t ib0) {
    const int ns = static_cast<int>(std::min<int64_t>(kStrip, nb - ib0));
    for (int s = 0; s < ns; ++s) Unpack8<Block>(rp, static_cast<size_t>(ib0 + s), strip[s]);
    return ns;
  };
  if (nrows == 8) {
    for (int64_t ib0 = 0; ib0 < nb; ib0 += kStrip) {
      const int ns = unpack(ib0);
      for (int64_t t = 0; t < T; t += kTile) {
        StripTiles<Block>(strip, ns, xq + t * nb + ib0, nb, std::min<int64_t>(kTile, T - t), y + t * N, N, ib0 == 0);
      }
    }
    return;
  }
  for (int64_t t = 0; t < T; t += kTile) {
    const int64_t nt = std::min<int64_t>(kTile, T - t);
    alignas(32) float acc[kTile * 8];
    for (int64_t ib0 = 0; ib0 < nb; ib0 += kStrip) {
      const int ns = unpack(ib0);
      StripTiles<Block>(strip, ns, xq + t * nb + ib0, nb, nt, acc, 8, ib0 == 0);
    }
    for (int64_t i = 0; i < nt; ++i) std::memcpy(y + (t + i) * N, acc + 8 * i, static_cast<size_t>(nrows) * sizeof(float));
  }
}

// Batched decode (T = 2..kTokMaxT - 1, e.g. 8 sequences), tiles of up to
// kTokTile tokens: each super-block of the 8 rows is unpacked to L1 (Unpack8,
// as for the strips), then every run of 8 quant vectors (32 elements, one or
// two scale groups) is loaded into registers once and used by every token of
// the tile, one token at a time: a token's sum over the run is finished before
// the next token's starts, so only the 8 vectors and a few temporaries are
// live; the int32 sums and the running float sums of the tile wait in small
// stack arrays. The strips' Dot8 (4 tokens per pass, every vector reloaded
// per token) pays the unpack once per super-block too but was 25-50 % slower
// at T = 8. Same integers (exact) and the same Finish8 float operations, in
// the same order, as every other path.
constexpr int kTokTile = 8;
constexpr int64_t kTokMaxT = 16;  // from here on, the strips

// RowsTok's pieces for one vector width (W::kRows rows in its lanes): Tok8
// here, Tok16 under FORMIGA_CPU_ZMM.
struct Tok8 {
  static constexpr int kRows = 8;
  template <int kGroups>
  using Rows = Rows8<kGroups>;
  using I = __m256i;
  using F = __m256;
  FORMIGA_ALWAYS_INLINE static I Load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
  FORMIGA_ALWAYS_INLINE static void Store(void* p, I v) { _mm256_store_si256(static_cast<__m256i*>(p), v); }
  FORMIGA_ALWAYS_INLINE static I Add(I a, I b) { return _mm256_add_epi32(a, b); }
  FORMIGA_ALWAYS_INLINE static F LoadF(const float* p) { return _mm256_load_ps(p); }
  FORMIGA_ALWAYS_INLINE static void StoreF(float* p, F v) { _mm256_store_ps(p, v); }
  template <class Block>
  FORMIGA_ALWAYS_INLINE static void Unpack(const uint8_t* const* rp, size_t ib, Rows<K8<Block>::kGroups>& k) {
    Unpack8<Block>(rp, ib, k);
  }
  template <class Block>
  FORMIGA_ALWAYS_INLINE static F Finish(const Rows<K8<Block>::kGroups>& k, const BlockQ8_K& a, I isum, F acc) {
    return Finish8<Block>(k, a, isum, acc);
  }
  // The exact int32 sum of quant run m (vectors 8m..8m+7: one or two scale
  // groups) with the token's quants xs = qs + 32m, scales applied.
  template <class Block>
  FORMIGA_ALWAYS_INLINE static I RunSum(const I q[8], const int8_t* xs, const Rows<K8<Block>::kGroups>& k, int m) {
    using Tr = K8<Block>;
    [[maybe_unused]] constexpr int kPerGroup = 64 / Tr::kGroups;
    I s = _mm256_setzero_si256();
#if FORMIGA_CPU_VNNI
#pragma GCC unroll 2
    for (int j0 = 0; j0 < 8; j0 += kPerGroup) {
      s = _mm256_add_epi32(s, _mm256_mullo_epi32(GroupSumVnni<kPerGroup>(q + j0, xs + 4 * j0),
                                                 _mm256_load_si256(&k.scale[(8 * m + j0) / kPerGroup])));
    }
#else
#pragma GCC unroll 8
    for (int j0 = 0; j0 < 8; j0 += Tr::kSteps) {
      I s16 = _mm256_maddubs_epi16(q[j0], Bcast4(xs + 4 * j0));
#pragma GCC unroll 8
      for (int j = 1; j < Tr::kSteps; ++j) {
        s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(q[j0 + j], Bcast4(xs + 4 * (j0 + j))));
      }
      s = _mm256_add_epi32(s, _mm256_madd_epi16(s16, _mm256_load_si256(&k.scale[(8 * m + j0) / kPerGroup])));
    }
#endif
    return s;
  }
};

// Batched decode of W::kRows rows (rp; the first nrows stored), nt tokens:
// see above. `next` (or null): the following W::kRows rows, prefetched at
// the pace these are read.
template <class W, class Block>
void RowsTok(const uint8_t* const* rp, const uint8_t* next, const BlockQ8_K* xq, int64_t nb, int nt, float* y,
             int64_t N, int nrows) {
  constexpr int kR = W::kRows;
  typename W::template Rows<K8<Block>::kGroups> k;
  alignas(64) float acc[kTokTile][kR] = {};
  for (int64_t ib = 0; ib < nb; ++ib) {
    if (next != nullptr) {
      const char* p = reinterpret_cast<const char*>(next) + ib * kR * sizeof(Block);
      for (size_t off = 0; off < kR * sizeof(Block); off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    }
    W::template Unpack<Block>(rp, static_cast<size_t>(ib), k);
    alignas(64) int32_t isum[kTokTile][kR];
    const BlockQ8_K* xb = xq + ib;
#pragma GCC unroll 1
    for (int m = 0; m < 8; ++m) {
      typename W::I q[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) q[j] = W::Load(&k.q[8 * m + j]);
      const BlockQ8_K* a = xb;
#pragma GCC unroll 1
      for (int t = 0; t < nt; ++t, a += nb) {
        const typename W::I s = W::template RunSum<Block>(q, a->qs + 32 * m, k, m);
        W::Store(isum[t], m == 0 ? s : W::Add(W::Load(isum[t]), s));
      }
    }
    const BlockQ8_K* a = xb;
#pragma GCC unroll 1
    for (int t = 0; t < nt; ++t, a += nb) {
      W::StoreF(acc[t], W::template Finish<Block>(k, *a, W::Load(isum[t]), W::LoadF(acc[t])));
    }
  }
  for (int t = 0; t < nt; ++t) std::memcpy(y + t * N, acc[t], static_cast<size_t>(nrows) * sizeof(float));
}

#if FORMIGA_CPU_ZMM
// Prefill, 16 rows at a time (the avx512-vnni tier; FORMIGA_CPU_ZMM): two
// 8-row groups unpacked side by side, rows 0-7 in the low and rows 8-15 in
// the high 256 bits of each zmm (Unpack8's vectors stored into the halves,
// no shuffle), so every vpdpbusd, vpmulld and float step does both groups
// at once. Each lane's integer sums (exact) and float operations are those
// of Dot8 / Finish8 in the same order, so the outputs are the 8-row path's
// bits. kStrip16 super-blocks (4 x 5.3 KB for Q4_K) stay in L1.
template <int kGroups>
struct Rows16 {
  __m512i q[64];
  __m512i scale[kGroups];
  __m512i minp[8];
  __m512 d, dm;
};

constexpr int kStrip16 = 4;

FORMIGA_ALWAYS_INLINE __m512i Bcast4Z(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

FORMIGA_ALWAYS_INLINE void StoreHalf(void* slot, int half, __m256i v) {
  _mm256_store_si256(reinterpret_cast<__m256i*>(slot) + half, v);
}

template <class Block>
FORMIGA_ALWAYS_INLINE void Unpack16(const uint8_t* const rp[16], size_t ib, Rows16<K8<Block>::kGroups>& k) {
  constexpr int kGroups = K8<Block>::kGroups;
#pragma GCC unroll 1
  for (int half = 0; half < 2; ++half) {
    const uint8_t* const* r = rp + 8 * half;
    Rows8<kGroups> head;  // only the head's fields are written
    Head8(r, ib, static_cast<const Block*>(nullptr), head);
#pragma GCC unroll 16
    for (int g = 0; g < kGroups; ++g) StoreHalf(&k.scale[g], half, head.scale[g]);
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) StoreHalf(&k.minp[p], half, head.minp[p]);
    StoreHalf(&k.d, half, _mm256_castps_si256(head.d));
    StoreHalf(&k.dm, half, _mm256_castps_si256(head.dm));
    Quants8(r, ib, static_cast<const Block*>(nullptr), [&](int v, __m256i q) K8_LAMBDA { StoreHalf(&k.q[v], half, q); });
  }
}

FORMIGA_ALWAYS_INLINE void LoadT16x32(const uint8_t* const* rp, size_t off, __m512i r[8]) {
  // R[i] = rows i | i + 4 and R[4 + i] = rows 8 + i | 12 + i (i < 4), so the
  // 256-bit halves transpose as Transpose8x32's inputs and the last step
  // (one vshufi64x2 per output) leaves row i in lane i.
  __m512i R[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    R[i] = _mm512_inserti64x4(_mm512_castsi256_si512(Load32(rp[i] + off)), Load32(rp[i + 4] + off), 1);
    R[4 + i] = _mm512_inserti64x4(_mm512_castsi256_si512(Load32(rp[8 + i] + off)), Load32(rp[12 + i] + off), 1);
  }
  __m512i u[8];
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
    const __m512i* a = R + 4 * h;
    const __m512i t0 = _mm512_unpacklo_epi32(a[0], a[1]), t1 = _mm512_unpackhi_epi32(a[0], a[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(a[2], a[3]), t3 = _mm512_unpackhi_epi32(a[2], a[3]);
    // u[4h + k], 128-bit lanes: words k | k + 4 of rows 8h + 0-3, then of 8h + 4-7.
    u[4 * h + 0] = _mm512_unpacklo_epi64(t0, t2);
    u[4 * h + 1] = _mm512_unpackhi_epi64(t0, t2);
    u[4 * h + 2] = _mm512_unpacklo_epi64(t1, t3);
    u[4 * h + 3] = _mm512_unpackhi_epi64(t1, t3);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm512_shuffle_i32x4(u[k], u[4 + k], 0x88);      // lanes 0, 2 of each: word k
    r[k + 4] = _mm512_shuffle_i32x4(u[k], u[4 + k], 0xdd);  // lanes 1, 3: word k + 4
  }
}

struct V16 {
  using T = __m512i;
  FORMIGA_ALWAYS_INLINE static T And(T a, T b) { return _mm512_and_si512(a, b); }
  FORMIGA_ALWAYS_INLINE static T Or(T a, T b) { return _mm512_or_si512(a, b); }
  template <int n>
  FORMIGA_ALWAYS_INLINE static T Srl16(T a) { return _mm512_srli_epi16(a, n); }
  template <int n>
  FORMIGA_ALWAYS_INLINE static T Sll16(T a) { return _mm512_slli_epi16(a, n); }
  FORMIGA_ALWAYS_INLINE static T Bytes(int v) { return _mm512_set1_epi8(static_cast<char>(v)); }
  FORMIGA_ALWAYS_INLINE static void Load(const uint8_t* const* rp, size_t off, T r[8]) { LoadT16x32(rp, off, r); }
};

// ShufDword for 16 lanes.
template <int b0lo, int b0hi, int b1lo, int b1hi>
FORMIGA_ALWAYS_INLINE __m512i ShufDwordZ(__m512i v) {
  constexpr auto m = [](int lane, int b) -> char { return b < 0 ? char(-128) : static_cast<char>(4 * lane + b); };
  const __m128i mask = _mm_setr_epi8(m(0, b0lo), m(0, b0hi), m(0, b1lo), m(0, b1hi), m(1, b0lo), m(1, b0hi),
                                     m(1, b1lo), m(1, b1hi), m(2, b0lo), m(2, b0hi), m(2, b1lo), m(2, b1hi),
                                     m(3, b0lo), m(3, b0hi), m(3, b1lo), m(3, b1hi));
  return _mm512_shuffle_epi8(v, _mm512_broadcast_i32x4(mask));
}

// LoadT16 for 16 rows: w[m] lane i = bytes 4m..4m+3 at `off` of row i (the
// loads put rows i, i + 4, i + 8, i + 12 in the 128-bit lanes).
FORMIGA_ALWAYS_INLINE void LoadT16Z(const uint8_t* const* rp, size_t off, __m512i w[4]) {
  __m512i a[4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    a[i] = _mm512_inserti32x4(_mm512_setzero_si512(), Load16(rp[i] + off), 0);
    a[i] = _mm512_inserti32x4(a[i], Load16(rp[i + 4] + off), 1);
    a[i] = _mm512_inserti32x4(a[i], Load16(rp[i + 8] + off), 2);
    a[i] = _mm512_inserti32x4(a[i], Load16(rp[i + 12] + off), 3);
  }
  const __m512i t0 = _mm512_unpacklo_epi32(a[0], a[1]), t1 = _mm512_unpackhi_epi32(a[0], a[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(a[2], a[3]), t3 = _mm512_unpackhi_epi32(a[2], a[3]);
  w[0] = _mm512_unpacklo_epi64(t0, t2);
  w[1] = _mm512_unpackhi_epi64(t0, t2);
  w[2] = _mm512_unpacklo_epi64(t1, t3);
  w[3] = _mm512_unpackhi_epi64(t1, t3);
}

// Head8 (VNNI) of Q4_K/Q5_K for 16 rows, in zmm, from the head's 4 words
// (w[m] lane i = word m of row i's block): the same values lane by lane.
FORMIGA_ALWAYS_INLINE void HeadWords16Z(const __m512i w[4], Rows16<8>& k) {
#if FORMIGA_CPU_ZMM_EMULATED
  // (SIMDe 0.7 has no 512-bit vpmovdw.)
  alignas(64) int32_t dd[16];
  alignas(32) uint16_t d[16], dm[16];
  _mm512_store_si512(dd, w[0]);
  for (int i = 0; i < 16; ++i) d[i] = static_cast<uint16_t>(dd[i]), dm[i] = static_cast<uint16_t>(dd[i] >> 16);
  k.d = F16x16(d);
  k.dm = F16x16(dm);
#else
  k.d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_and_si512(w[0], _mm512_set1_epi32(0xffff))));
  k.dm = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(w[0], 16)));
#endif
  const __m512i k1 = _mm512_set1_epi8(0x3f), k2 = _mm512_set1_epi8(0x0f), k3 = _mm512_set1_epi8(0x03);
  const __m512i s03 = _mm512_and_si512(w[1], k1);
  const __m512i m03 = _mm512_and_si512(w[2], k1);
  const __m512i s47 = _mm512_or_si512(_mm512_and_si512(w[3], k2),
                                      _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w[1], 6), k3), 4));
  const __m512i m47 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w[3], 4), k2),
                                      _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w[2], 6), k3), 4));
  k.scale[0] = ShufDwordZ<0, -1, -1, -1>(s03);
  k.scale[1] = ShufDwordZ<1, -1, -1, -1>(s03);
  k.scale[2] = ShufDwordZ<2, -1, -1, -1>(s03);
  k.scale[3] = ShufDwordZ<3, -1, -1, -1>(s03);
  k.scale[4] = ShufDwordZ<0, -1, -1, -1>(s47);
  k.scale[5] = ShufDwordZ<1, -1, -1, -1>(s47);
  k.scale[6] = ShufDwordZ<2, -1, -1, -1>(s47);
  k.scale[7] = ShufDwordZ<3, -1, -1, -1>(s47);
  k.minp[0] = ShufDwordZ<0, -1, 0, -1>(m03);
  k.minp[1] = ShufDwordZ<1, -1, 1, -1>(m03);
  k.minp[2] = ShufDwordZ<2, -1, 2, -1>(m03);
  k.minp[3] = ShufDwordZ<3, -1, 3, -1>(m03);
  k.minp[4] = ShufDwordZ<0, -1, 0, -1>(m47);
  k.minp[5] = ShufDwordZ<1, -1, 1, -1>(m47);
  k.minp[6] = ShufDwordZ<2, -1, 2, -1>(m47);
  k.minp[7] = ShufDwordZ<3, -1, 3, -1>(m47);
}

template <class Block>
FORMIGA_ALWAYS_INLINE void Head16Z(const uint8_t* const* rp, size_t ib, Rows16<8>& k) {
  static_assert(offsetof(Block, scales) == 4);
  __m512i w[4];
  LoadT16Z(rp, ib * sizeof(Block), w);
  HeadWords16Z(w, k);
}

// Arithmetic shift right of each int32 by 24 (SIMDe 0.7 has no 512-bit
// vpsrad: two 256-bit ones in the emulated build).
FORMIGA_ALWAYS_INLINE __m512i Srai32By24(__m512i v) {
#if FORMIGA_CPU_ZMM_EMULATED
  const __m256i lo = _mm256_srai_epi32(_mm512_castsi512_si256(v), 24);
  const __m256i hi = _mm256_srai_epi32(_mm512_extracti64x4_epi64(v, 1), 24);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
#else
  return _mm512_srai_epi32(v, 24);
#endif
}

// Head8 (VNNI) of Q6_K's scales for 16 rows, in zmm, from their 4 words
// (byte b of w[m] lane i = scale 4m + b of row i): the same values.
FORMIGA_ALWAYS_INLINE void ScaleWords16Z(const __m512i w[4], Rows16<16>& k) {
  k.scale[0] = Srai32By24(ShufDwordZ<-1, -1, -1, 0>(w[0]));
  k.scale[1] = Srai32By24(ShufDwordZ<-1, -1, -1, 1>(w[0]));
  k.scale[2] = Srai32By24(ShufDwordZ<-1, -1, -1, 2>(w[0]));
  k.scale[3] = Srai32By24(ShufDwordZ<-1, -1, -1, 3>(w[0]));
  k.scale[4] = Srai32By24(ShufDwordZ<-1, -1, -1, 0>(w[1]));
  k.scale[5] = Srai32By24(ShufDwordZ<-1, -1, -1, 1>(w[1]));
  k.scale[6] = Srai32By24(ShufDwordZ<-1, -1, -1, 2>(w[1]));
  k.scale[7] = Srai32By24(ShufDwordZ<-1, -1, -1, 3>(w[1]));
  k.scale[8] = Srai32By24(ShufDwordZ<-1, -1, -1, 0>(w[2]));
  k.scale[9] = Srai32By24(ShufDwordZ<-1, -1, -1, 1>(w[2]));
  k.scale[10] = Srai32By24(ShufDwordZ<-1, -1, -1, 2>(w[2]));
  k.scale[11] = Srai32By24(ShufDwordZ<-1, -1, -1, 3>(w[2]));
  k.scale[12] = Srai32By24(ShufDwordZ<-1, -1, -1, 0>(w[3]));
  k.scale[13] = Srai32By24(ShufDwordZ<-1, -1, -1, 1>(w[3]));
  k.scale[14] = Srai32By24(ShufDwordZ<-1, -1, -1, 2>(w[3]));
  k.scale[15] = Srai32By24(ShufDwordZ<-1, -1, -1, 3>(w[3]));
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m) {
    k.minp[2 * m] = _mm512_srai_epi16((ShufDwordZ<-1, 0, -1, 1>(w[m])), 3);
    k.minp[2 * m + 1] = _mm512_srai_epi16((ShufDwordZ<-1, 2, -1, 3>(w[m])), 3);
  }
}

FORMIGA_ALWAYS_INLINE void Head16Z(const uint8_t* const* rp, size_t ib, Rows16<16>& k) {
  const size_t o = ib * sizeof(BlockQ6_K);
  __m512i w[4];
  LoadT16Z(rp, o + offsetof(BlockQ6_K, scales), w);  // byte b of w[m] = scale 4m + b
  ScaleWords16Z(w, k);
  alignas(32) uint16_t dh[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) std::memcpy(&dh[i], rp[i] + o + offsetof(BlockQ6_K, d), 2);
  k.d = F16x16(dh);
  k.dm = k.d;
}

// Unpack16 done in zmm: the head decoded on 16 lanes (Head16Z, Head8's
// operations lane by lane) and the quants transposed in zmm (Quants8 with
// V16: LoadT16x32's 32 shuffles per 32-byte stretch where two 8-row LoadT
// take 48). The same values in every lane. Batched decode (Tok16) uses it:
// 1.1B Q4_K_M --batch 8 205-216 -> 231-234 t/s; the prefill strips keep
// Unpack16 (with this one pp512 was 2-5 % slower, 5 alternating pairs).
template <class Block>
FORMIGA_ALWAYS_INLINE void Unpack16Z(const uint8_t* const rp[16], size_t ib, Rows16<K8<Block>::kGroups>& k) {
  if constexpr (K8<Block>::kGroups == 8) {
    Head16Z<Block>(rp, ib, k);
  } else {
    Head16Z(rp, ib, k);
  }
  Quants8<V16>(rp, ib, static_cast<const Block*>(nullptr),
               [&](int v, __m512i q) K8_LAMBDA { _mm512_store_si512(&k.q[v], q); });
}

// GroupSumVnni for 16 lanes.
template <int kN>
FORMIGA_ALWAYS_INLINE __m512i GroupSum16(const __m512i* q, const int8_t* x) {
  static_assert(kN % 2 == 0);
  __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
#pragma GCC unroll 8
  for (int v = 0; v < kN; v += 2) {
    s0 = _mm512_dpbusd_epi32(s0, q[v], Bcast4Z(x + 4 * v));
    s1 = _mm512_dpbusd_epi32(s1, q[v + 1], Bcast4Z(x + 4 * v + 4));
  }
  return _mm512_add_epi32(s0, s1);
}

// Finish8 (VNNI) for 16 lanes.
template <class Block>
FORMIGA_ALWAYS_INLINE __m512 Finish16(const Rows16<K8<Block>::kGroups>& k, const BlockQ8_K& a, __m512i isum,
                                      __m512 acc) {
  // (vpdpwssd into zero = Finish8's first madd: the same exact int32 pairs.)
  __m512i msum = _mm512_setzero_si512();
#pragma GCC unroll 8
  for (int p = 0; p < 8; ++p) {
    msum = _mm512_dpwssd_epi32(msum, k.minp[p], Bcast4Z(reinterpret_cast<const int8_t*>(a.bsums + 2 * p)));
  }
  const __m512 dx = _mm512_set1_ps(a.d);
  if constexpr (K8<Block>::kFold) {
    return _mm512_fmadd_ps(Cvt16(_mm512_sub_epi32(isum, msum)), _mm512_mul_ps(k.d, dx), acc);
  } else {
    acc = _mm512_fmadd_ps(Cvt16(isum), _mm512_mul_ps(k.d, dx), acc);
    return _mm512_fnmadd_ps(Cvt16(msum), _mm512_mul_ps(k.dm, dx), acc);
  }
}

// Dot8 (VNNI) for 16 lanes.
template <class Block, int NT>
FORMIGA_ALWAYS_INLINE void Dot16(const Rows16<K8<Block>::kGroups>& k, const BlockQ8_K* x, int64_t nb, __m512 acc[NT]) {
  using Tr = K8<Block>;
  constexpr int kPerGroup = 64 / Tr::kGroups;
  __m512i isum[NT];
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) isum[t] = _mm512_setzero_si512();
#pragma GCC unroll 16
  for (int g = 0; g < Tr::kGroups; ++g) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) {
      const int8_t* xs = x[t * nb].qs;
      isum[t] = _mm512_add_epi32(
          isum[t], _mm512_mullo_epi32(GroupSum16<kPerGroup>(k.q + g * kPerGroup, xs + 4 * g * kPerGroup), k.scale[g]));
    }
  }
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) acc[t] = Finish16<Block>(k, x[t * nb], isum[t], acc[t]);
}

// StripTile for 16 rows: the running sums of NT tokens (16 outputs each, at
// acc_io + t * ld) start at 0 (first) or at their stored values.
template <class Block, int NT>
void StripTile16(const Rows16<K8<Block>::kGroups>* strip, int ns, const BlockQ8_K* x, int64_t nb, float* acc_io,
                 int64_t ld, bool first) {
  __m512 acc[NT];
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) acc[t] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(acc_io + t * ld);
  for (int s = 0; s < ns; ++s) Dot16<Block, NT>(strip[s], x + s, nb, acc);
#pragma GCC unroll 4
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(acc_io + t * ld, acc[t]);
}

// Rows8Strips for 16 full rows (y: their 16 outputs of each token, stride
// N); unpack(ib, k) fills k with super-block ib of the 16 rows (Unpack16
// from the rows, UnpackPacked16 from a packed group).
template <class Block, class Unpack>
void Rows16Strips(Unpack&& unpack, const BlockQ8_K* xq, int64_t T, int64_t nb, float* y, int64_t N) {
  Rows16<K8<Block>::kGroups> strip[kStrip16];
  for (int64_t ib0 = 0; ib0 < nb; ib0 += kStrip16) {
    const int ns = static_cast<int>(std::min<int64_t>(kStrip16, nb - ib0));
    for (int s = 0; s < ns; ++s) unpack(static_cast<size_t>(ib0 + s), strip[s]);
    for (int64_t t = 0; t < T; t += kTile) {
      const BlockQ8_K* x = xq + t * nb + ib0;
      float* acc = y + t * N;
      switch (std::min<int64_t>(kTile, T - t)) {
        case 4: StripTile16<Block, 4>(strip, ns, x, nb, acc, N, ib0 == 0); break;
        case 3: StripTile16<Block, 3>(strip, ns, x, nb, acc, N, ib0 == 0); break;
        case 2: StripTile16<Block, 2>(strip, ns, x, nb, acc, N, ib0 == 0); break;
        default: StripTile16<Block, 1>(strip, ns, x, nb, acc, N, ib0 == 0); break;
      }
    }
  }
}

// RowsTok's pieces for 16 rows (batched decode): each super-block unpacked
// into L1 side by side (Unpack16, as the prefill strips), so every vpdpbusd
// and vpmulld of a token covers 16 rows. The same integers (exact) and
// Finish16 = Finish8 per lane, in the same order: the 8-row path's bits.
struct Tok16 {
  static constexpr int kRows = 16;
  template <int kGroups>
  using Rows = Rows16<kGroups>;
  using I = __m512i;
  using F = __m512;
  FORMIGA_ALWAYS_INLINE static I Load(const void* p) { return _mm512_load_si512(p); }
  FORMIGA_ALWAYS_INLINE static void Store(void* p, I v) { _mm512_store_si512(p, v); }
  FORMIGA_ALWAYS_INLINE static I Add(I a, I b) { return _mm512_add_epi32(a, b); }
  FORMIGA_ALWAYS_INLINE static F LoadF(const float* p) { return _mm512_load_ps(p); }
  FORMIGA_ALWAYS_INLINE static void StoreF(float* p, F v) { _mm512_store_ps(p, v); }
  template <class Block>
  FORMIGA_ALWAYS_INLINE static void Unpack(const uint8_t* const* rp, size_t ib, Rows<K8<Block>::kGroups>& k) {
    Unpack16Z<Block>(rp, ib, k);
  }
  template <class Block>
  FORMIGA_ALWAYS_INLINE static F Finish(const Rows<K8<Block>::kGroups>& k, const BlockQ8_K& a, I isum, F acc) {
    return Finish16<Block>(k, a, isum, acc);
  }
  template <class Block>
  FORMIGA_ALWAYS_INLINE static I RunSum(const I q[8], const int8_t* xs, const Rows<K8<Block>::kGroups>& k, int m) {
    constexpr int kPerGroup = 64 / K8<Block>::kGroups;
    I s = _mm512_setzero_si512();
#pragma GCC unroll 2
    for (int j0 = 0; j0 < 8; j0 += kPerGroup) {
      s = _mm512_add_epi32(s, _mm512_mullo_epi32(GroupSum16<kPerGroup>(q + j0, xs + 4 * j0),
                                                 _mm512_load_si512(&k.scale[(8 * m + j0) / kPerGroup])));
    }
    return s;
  }
};

// ---- Packed weights (cpu_pack.h): a 16-row group's super-block is one
// run of 4-byte words, word k of row i at 64k + 4i, so the transposes of
// LoadT16x32 / LoadT16Z are plain 64-byte loads. The same values in every
// lane as from the rows (and the same exact integers and float operations,
// in the same order): the rows' bits.

// V16's loads from a packed group block (rp[0]; `off`, a multiple of 4, a
// byte offset inside the rows' block).
struct V16P : V16 {
  FORMIGA_ALWAYS_INLINE static void Load(const uint8_t* const* rp, size_t off, T r[8]) {
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) r[j] = _mm512_loadu_si512(rp[0] + (off / 4 + static_cast<size_t>(j)) * 64);
  }
};

// Word m of the 16 rows' block (lane i = row i), from group block gb.
FORMIGA_ALWAYS_INLINE __m512i PackedWord(const uint8_t* gb, size_t m) { return _mm512_loadu_si512(gb + 64 * m); }

template <class Block>
FORMIGA_ALWAYS_INLINE void HeadPacked16(const uint8_t* gb, Rows16<K8<Block>::kGroups>& k) {
  __m512i w[4];
  if constexpr (K8<Block>::kGroups == 8) {
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) w[m] = PackedWord(gb, m);
    HeadWords16Z(w, k);
  } else {
    constexpr size_t kScales = offsetof(BlockQ6_K, scales) / 4;
#pragma GCC unroll 4
    for (int m = 0; m < 4; ++m) w[m] = PackedWord(gb, kScales + m);
    ScaleWords16Z(w, k);
    k.d = F16x16(reinterpret_cast<const uint16_t*>(gb + 64 * (offsetof(BlockQ6_K, d) / 4)));
    k.dm = k.d;
  }
}

template <class Block>
FORMIGA_ALWAYS_INLINE void UnpackPacked16(const uint8_t* gb, Rows16<K8<Block>::kGroups>& k) {
  HeadPacked16<Block>(gb, k);
  Quants8<V16P>(&gb, 0, static_cast<const Block*>(nullptr),
                [&](int v, __m512i q) K8_LAMBDA { _mm512_store_si512(&k.q[v], q); });
}

// Prefetch distance of the packed one-token kernel (bytes ahead of the
// group block being read: one contiguous stream per task).
constexpr size_t kPackedAhead = 4096;

// Decode (T = 1) of packed group `g` (16 rows): DotOne8's integer sums on 16
// lanes, made as the quants are loaded, then Finish16.
template <class Block>
void RowsOnePacked(const uint8_t* g, const BlockQ8_K* xq, int64_t nb, float* y) {
  using Tr = K8<Block>;
  constexpr int kPerGroup = 64 / Tr::kGroups;
  constexpr size_t kGroupBlock = 16 * sizeof(Block);
  Rows16<Tr::kGroups> k;  // the head's fields only
  __m512 acc = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib, g += kGroupBlock) {
    for (size_t off = 0; off < kGroupBlock; off += 64) _mm_prefetch(reinterpret_cast<const char*>(g) + kPackedAhead + off, _MM_HINT_T0);
    HeadPacked16<Block>(g, k);
    const BlockQ8_K& a = xq[ib];
    __m512i isum = _mm512_setzero_si512();
    __m512i s32[Tr::kGroups];
    Quants8<V16P>(&g, 0, static_cast<const Block*>(nullptr), [&](int v, __m512i q) K8_LAMBDA {
      const int gi = v / kPerGroup;
      s32[gi] = _mm512_dpbusd_epi32(v % kPerGroup == 0 ? _mm512_setzero_si512() : s32[gi], q, Bcast4Z(a.qs + 4 * v));
      if (v % kPerGroup == kPerGroup - 1) isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s32[gi], k.scale[gi]));
    });
    acc = Finish16<Block>(k, a, isum, acc);
  }
  _mm512_storeu_ps(y, acc);
}

// Tok16 from packed groups (rp[0]: the group's first group block).
struct Tok16P : Tok16 {
  template <class Block>
  FORMIGA_ALWAYS_INLINE static void Unpack(const uint8_t* const* rp, size_t ib, Rows<K8<Block>::kGroups>& k) {
    UnpackPacked16<Block>(rp[0] + ib * 16 * sizeof(Block), k);
  }
};

#endif  // FORMIGA_CPU_ZMM

// Rows [n0, n1) of a kRows matrix into y (T rows, `N` = ldy apart).
template <class Block>
void MatMulK8Typed(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1, int64_t N) {
  const int64_t nb = w.cols / kQK_K;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t n = n0; n < n1; n += 8) {
#if FORMIGA_CPU_ZMM
    if (T > 1 && n + 16 <= n1) {
      const uint8_t* rp16[16];
      for (int i = 0; i < 16; ++i) rp16[i] = base + static_cast<size_t>(n + i) * w.row_bytes;
      if (T >= kTokMaxT) {
        Rows16Strips<Block>([&](size_t ib, Rows16<K8<Block>::kGroups>& k) K8_LAMBDA { Unpack16<Block>(rp16, ib, k); },
                            xq, T, nb, y + n, N);
      } else {
        const uint8_t* next = n + 32 <= n1 ? base + static_cast<size_t>(n + 16) * w.row_bytes : nullptr;
        for (int64_t t = 0; t < T; t += kTokTile) {
          const int nt = static_cast<int>(std::min<int64_t>(kTokTile, T - t));
          RowsTok<Tok16, Block>(rp16, next, xq + t * nb, nb, nt, y + t * N + n, N, 16);
        }
      }
      n += 8;  // and 8 more by the loop
      continue;
    }
#endif
    const int nrows = static_cast<int>(std::min<int64_t>(8, n1 - n));
    const uint8_t* rp[8];
    // Tail lanes read the last real row (same arithmetic; not stored).
    for (int i = 0; i < 8; ++i) rp[i] = base + static_cast<size_t>(n + std::min(i, nrows - 1)) * w.row_bytes;
    const uint8_t* next = n + 16 <= n1 ? base + static_cast<size_t>(n + 8) * w.row_bytes : nullptr;
    if (T == 1) {
      Rows8One<Block>(rp, next, xq, nb, y + n, nrows);
    } else if (T < kTokMaxT) {
      for (int64_t t = 0; t < T; t += kTokTile) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokTile, T - t));
        RowsTok<Tok8, Block>(rp, next, xq + t * nb, nb, nt, y + t * N + n, N, nrows);
      }
    } else {
      Rows8Strips<Block>(rp, xq, T, nb, y + n, N, nrows);
    }
  }
}

#if FORMIGA_CPU_ZMM
// Rows [n0, n1) of a packed matrix (cpu_pack.h).
template <class Block>
void MatMulK8Packed(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t nb = w.cols / kQK_K, N = w.rows, groups = N / kPackRows;
  const size_t group_bytes = static_cast<size_t>(nb) * 16 * sizeof(Block);
  const auto group = [&](int64_t gi, float* out, int64_t ld) {
    const uint8_t* g = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(gi) * group_bytes;
    if (T == 1) {
      RowsOnePacked<Block>(g, xq, nb, out);
    } else if (T < kTokMaxT) {
      // The next group, prefetched at the pace this one is read.
      const uint8_t* next = gi + 1 < groups ? g + group_bytes : nullptr;
      for (int64_t t = 0; t < T; t += kTokTile) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokTile, T - t));
        RowsTok<Tok16P, Block>(&g, next, xq + t * nb, nb, nt, out + t * ld, ld, 16);
      }
    } else {
      Rows16Strips<Block>([&](size_t ib, Rows16<K8<Block>::kGroups>& k) K8_LAMBDA {
        UnpackPacked16<Block>(g + ib * 16 * sizeof(Block), k);
      }, xq, T, nb, out, ld);
    }
  };
  ForEachPackedGroup(N, T, n0, n1, y, group, [&](int64_t m0, int64_t m1) {
    MatMulK8Typed<Block>(PackedTail(w), xq, T, y + groups * kPackRows, m0, m1, N);
  });
}
#endif  // FORMIGA_CPU_ZMM

}  // namespace

// The tier's entry point: cpu::<FORMIGA_CPU_TIER>::MatMulQ8KRows8 (cpu_kernels.h).
// Packed weights (cpu_pack.h) exist only for the 512-bit tiers: the
// backend packs only for those, and refuses a packed view it cannot read
// before any kernel runs.
bool MatMulQ8KRows8(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  if (w.layout == WeightLayout::kPacked) {
#if FORMIGA_CPU_ZMM
    switch (w.type) {
      case DType::kQ4_K: MatMulK8Packed<BlockQ4_K>(w, xq, T, y, n0, n1); return true;
      case DType::kQ5_K: MatMulK8Packed<BlockQ5_K>(w, xq, T, y, n0, n1); return true;
      case DType::kQ6_K: MatMulK8Packed<BlockQ6_K>(w, xq, T, y, n0, n1); return true;
      default: break;
    }
#endif
    std::abort();  // unreachable: CpuBackend::MatMulShared checks the layout
  }
  switch (w.type) {
    case DType::kQ4_K: MatMulK8Typed<BlockQ4_K>(w, xq, T, y, n0, n1, w.rows); return true;
    case DType::kQ5_K: MatMulK8Typed<BlockQ5_K>(w, xq, T, y, n0, n1, w.rows); return true;
    case DType::kQ6_K: MatMulK8Typed<BlockQ6_K>(w, xq, T, y, n0, n1, w.rows); return true;
    default: return false;
  }
}

}  // namespace formiga::cpu::FORMIGA_CPU_TIER
