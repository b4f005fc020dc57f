// MatMul for Q4_0, Q5_0 and Q8_0 with 8 weight rows in the 8 lanes of a
// vector (decode and prefill). Compiled with -mavx2 -mfma -mf16c as the avx2
// tier, and again, as included by isa/*_q4x8.cc, for the VNNI tiers
// (cpu_isa.h, isa/tier.h): under FORMIGA_CPU_VNNI each int8 dot-product step
// (maddubs + int16 adds + madd) is vpdpbusd instead, giving the same exact
// int32 sums, and everything else is the same code.
//
// The one-row kernels of cpu_matmul_q8.cc pay, per (row, token, block of
// 32), an unpack, a sign trick, maddubs + madd, an int->float conversion
// and a scale FMA into an 8-lane accumulator that still needs a horizontal
// sum: most of the work is not multiplying. Here a vector holds 8 rows:
//
// - The quant bytes of one block in 8 adjacent rows are loaded (rows r and
//   r + 4 in the two 128-bit halves) and transposed by 32-bit groups (4 x 4
//   transposes, 8 unpacks per 16 bytes), so that vector c holds bytes
//   4c..4c+3 of row r in lane r. Q4: the low nibbles are columns 4c..4c+3,
//   the high nibbles columns 16+4c..16+4c+3; Q8_0: columns 4c..4c+3. The
//   weights are the mapped GGUF rows; the avx512-vnni tier reads a packed
//   copy instead, this transposed form stored (cpu_pack.h; "Packed
//   weights" below), with the same per-lane operations.
// - Per token, the matching 4 activation bytes are broadcast (a load) and
//   _mm256_maddubs_epi16 gives, in lane r, two int16 partial sums of row r.
//   Q4: the nibble q (0..15) is the unsigned operand; |pair| <= 2*15*127 =
//   3810, so the 8 steps of a block add up to <= 30480 < 32767 in int16
//   without saturating, and one madd per block widens to int32. Q4_0's
//   offset comes out exactly as 8 * sum(x) (the activation's integer sum).
//   Q8_0 (signed weights) uses the sign trick |w| * (x * sign(w)); a pair
//   can reach 2*128*127 = 32512, so every step is widened to int32 at once.
// - Per block and token: int32 -> float and one FMA with d_row * d_x for 8
//   outputs at once; the lanes are the outputs, stored with one store: no
//   horizontal sums.
//
// NOTE: Q4_1 (SmolLM2's type) stays on the one-row kernel on purpose. Its
// operation order mirrors llama.cpp's vec_dot_q4_1_q8_1, and that keeps the
// default model's greedy text identical to llama.cpp's (model_golden_test).
// A Q4_1 variant of this kernel was written and measured: +15 % tg per core
// on SmolLM2, same pp, top-1 vs llama.cpp 95.9 % instead of 96.5 % and one
// greedy golden answer flipped at a 0.195-logit near-tie, so it was dropped.
//
// Paths by batch size: one token (decode) DotRows8, unpacking on the fly and
// prefetching the next group; 2..15 tokens (batched decode) DotRows8Tok,
// each block unpacked in registers once per tile of up to 8 tokens; 16+
// (prefill) each 8-row group unpacked once per call, then BlockDot tiles.
//
// VNNI (vpdpbusd: 4 u8 x s8 products added to an int32 lane, no
// saturation): the nibble or |w| bytes are the unsigned operand as for
// maddubs, and the int32 sums are those of the AVX2 path (which never
// saturates, bounds above), so every tier gives the same bits.
//
// Every output (row, token) is accumulated in block order with the same
// operations whatever the token tile (NT) or the rows around it, so results
// are bit-identical for any batch, tile and thread count (the invariance
// test in cpu_matmul_test.cc). The last N % 8 rows are copied into a
// zero-padded group and run the very same code.
//
// Shapes: W is (N, C) in blocks of 32, xq is (T, C/32) ActQ8, y is (T, N).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_pack.h"
#include "kernels/cpu_simd.h"
#include "kernels/isa/tier.h"

namespace formiga::cpu::FORMIGA_CPU_TIER {
namespace {

constexpr int kLanes = 8;
// From this many tokens on, a row group is unpacked once per call (below it,
// DotRows8Tok unpacks each block in registers per tile of up to kTokTile
// tokens: faster at T = 2..12, measured).
constexpr int64_t kUnpackMinT = 16;
// Tokens per tile: batched decode (DotRows8Tok) and from pre-unpacked blocks
// (token by token, reloading from L1).
constexpr int kTokTile = 8;
constexpr int kUnpackedTile = 8;

// kFour: 4-bit quants in the Q4_0 nibble layout, plus (kFive) a fifth bit
// from the 32-bit qh at offset 2; value = q - (1 << kOffsetShift).
struct FmtQ4_0 {
  using Block = BlockQ4_0;
  static constexpr int kQsOffset = 2;
  static constexpr bool kFour = true, kFive = false;
  static constexpr int kOffsetShift = 3;  // 8
};
struct FmtQ5_0 {
  using Block = BlockQ5_0;
  static constexpr int kQsOffset = 6;
  static constexpr bool kFour = true, kFive = true;
  static constexpr int kOffsetShift = 4;  // 16
};
struct FmtQ8_0 {
  using Block = BlockQ8_0;
  static constexpr int kQsOffset = 2;
  static constexpr bool kFour = false, kFive = false;
  static constexpr int kOffsetShift = 0;
};

// Byte groups whose int16 sums may be added before widening to int32: Q4
// pairs reach 2 * 15 * 127 = 3810, so all 4 groups (8 steps, 30480) fit;
// Q5 pairs reach 2 * 31 * 127 = 7874, so 2 groups (31496).
template <class Fmt>
constexpr int kWiden = Fmt::kFive ? 2 : 4;

FORMIGA_ALWAYS_INLINE uint64_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The f16 at `off` of 8 rows (w, w + s, w + 2s, w + s3 and the same from w4).
FORMIGA_ALWAYS_INLINE __m256 Gather8F16(const uint8_t* w, const uint8_t* w4, size_t s, size_t s3, int off) {
  w += off;
  w4 += off;
  const uint64_t lo = Load16(w) | Load16(w + s) << 16 | Load16(w + 2 * s) << 32 | Load16(w + s3) << 48;
  const uint64_t hi = Load16(w4) | Load16(w4 + s) << 16 | Load16(w4 + 2 * s) << 32 | Load16(w4 + s3) << 48;
  return _mm256_cvtph_ps(
      _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(lo)), static_cast<long long>(hi), 1));
}

// The 32-bit word at `off` of 8 rows, row r in lane r.
FORMIGA_ALWAYS_INLINE __m256i Gather8U32(const uint8_t* w, const uint8_t* w4, size_t s, size_t s3, int off) {
  const auto at = [off](const uint8_t* p) {
    int32_t v;
    std::memcpy(&v, p + off, 4);
    return v;
  };
  return _mm256_setr_epi32(at(w), at(w + s), at(w + 2 * s), at(w + s3), at(w4), at(w4 + s), at(w4 + 2 * s),
                           at(w4 + s3));
}

// Q5 fifth bits for 4 columns: 0x10 in byte k of lane r where bit
// kFirst + k of row r's qh (lane r of `qh`) is set. Byte group c of the
// transposed quants needs kFirst = 4c (low nibbles) and 16 + 4c (high).
template <int kFirst>
FORMIGA_ALWAYS_INLINE __m256i FifthBits(__m256i qh) {
  constexpr char j = kFirst / 8;  // the byte of qh holding the 4 bits
  const __m256i idx = _mm256_setr_epi8(j, j, j, j, 4 + j, 4 + j, 4 + j, 4 + j, 8 + j, 8 + j, 8 + j, 8 + j, 12 + j,
                                       12 + j, 12 + j, 12 + j, j, j, j, j, 4 + j, 4 + j, 4 + j, 4 + j, 8 + j, 8 + j,
                                       8 + j, 8 + j, 12 + j, 12 + j, 12 + j, 12 + j);
  const __m256i mask = _mm256_set1_epi32(kFirst % 8 == 0 ? 0x08040201 : static_cast<int>(0x80402010u));
  const __m256i rep = _mm256_shuffle_epi8(qh, idx);
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(rep, mask), mask), _mm256_set1_epi8(0x10));
}

// Low and high 4-bit groups of transposed byte group c (plus the fifth bits).
template <class Fmt, int c>
FORMIGA_ALWAYS_INLINE void Nibbles(__m256i q, __m256i qh, __m256i& lo, __m256i& hi) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  lo = _mm256_and_si256(q, m4);
  hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
  if constexpr (Fmt::kFive) {
    lo = _mm256_or_si256(lo, FifthBits<4 * c>(qh));
    hi = _mm256_or_si256(hi, FifthBits<16 + 4 * c>(qh));
  } else {
    (void)qh;
  }
}

FORMIGA_ALWAYS_INLINE __m256i LoadPair(const uint8_t* lo, const uint8_t* hi) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
}

// 16 bytes at `off` of 8 rows -> q[c] = bytes 4c..4c+3 of row r in lane r.
FORMIGA_ALWAYS_INLINE void Transpose16(const uint8_t* w, const uint8_t* w4, size_t s, size_t s3, int off, __m256i q[4]) {
  const __m256i a0 = LoadPair(w + off, w4 + off);
  const __m256i a1 = LoadPair(w + s + off, w4 + s + off);
  const __m256i a2 = LoadPair(w + 2 * s + off, w4 + 2 * s + off);
  const __m256i a3 = LoadPair(w + s3 + off, w4 + s3 + off);
  const __m256i t0 = _mm256_unpacklo_epi32(a0, a1);
  const __m256i t1 = _mm256_unpackhi_epi32(a0, a1);
  const __m256i t2 = _mm256_unpacklo_epi32(a2, a3);
  const __m256i t3 = _mm256_unpackhi_epi32(a2, a3);
  q[0] = _mm256_unpacklo_epi64(t0, t2);
  q[1] = _mm256_unpackhi_epi64(t0, t2);
  q[2] = _mm256_unpacklo_epi64(t1, t3);
  q[3] = _mm256_unpackhi_epi64(t1, t3);
}

FORMIGA_ALWAYS_INLINE __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

#if FORMIGA_CPU_VNNI
// VNNI: the int32 sums of one block and token (what the AVX2 paths build
// with maddubs + madd). Q4/Q5: v = the block's 8 nibble vectors (lo0, hi0,
// lo1, ...), the offset (q - 8 or q - 16) as the start value; two chains.
template <class Fmt>
FORMIGA_ALWAYS_INLINE __m256i SumFourVnni(const __m256i* v, const ActQ8& a) {
  __m256i s0 = _mm256_set1_epi32(-a.qsum * (1 << Fmt::kOffsetShift)), s1 = _mm256_setzero_si256();
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    s0 = Dpbusd(s0, v[2 * c], Bcast4(a.qs + 4 * c));
    s1 = Dpbusd(s1, v[2 * c + 1], Bcast4(a.qs + 16 + 4 * c));
  }
  return _mm256_add_epi32(s0, s1);
}
// Q8_0, one half of the block: aq = |q| and q of its 4 column groups, x the
// activations of those 16 columns (sign trick as in the AVX2 path).
FORMIGA_ALWAYS_INLINE __m256i SumHalfQ8Vnni(const __m256i* aq, const __m256i* q, const int8_t* x) {
  __m256i s0 = Dpbusd(_mm256_setzero_si256(), aq[0], _mm256_sign_epi8(Bcast4(x), q[0]));
  __m256i s1 = Dpbusd(_mm256_setzero_si256(), aq[1], _mm256_sign_epi8(Bcast4(x + 4), q[1]));
  s0 = Dpbusd(s0, aq[2], _mm256_sign_epi8(Bcast4(x + 8), q[2]));
  s1 = Dpbusd(s1, aq[3], _mm256_sign_epi8(Bcast4(x + 12), q[3]));
  return _mm256_add_epi32(s0, s1);
}
#endif

// One block of an 8-row group, unpacked and transposed: Q4_0 holds the low
// and high nibbles of the 4 column groups (lo0, hi0, lo1, hi1, ...), Q8_0 the
// absolute value and the signed quants of its 8 column groups (|q0|, q0, ...).
template <class Fmt>
struct alignas(32) Unpacked {
  __m256i v[Fmt::kFour ? 8 : 16];
  __m256 d8;
};

template <class Fmt>
FORMIGA_ALWAYS_INLINE void UnpackBlock(const uint8_t* w, const uint8_t* w4, size_t s, size_t s3, Unpacked<Fmt>& b) {
  b.d8 = Gather8F16(w, w4, s, s3, 0);
  if constexpr (Fmt::kFour) {
    __m256i q[4];
    Transpose16(w, w4, s, s3, Fmt::kQsOffset, q);
    const __m256i qh = Fmt::kFive ? Gather8U32(w, w4, s, s3, 2) : _mm256_setzero_si256();
    Nibbles<Fmt, 0>(q[0], qh, b.v[0], b.v[1]);
    Nibbles<Fmt, 1>(q[1], qh, b.v[2], b.v[3]);
    Nibbles<Fmt, 2>(q[2], qh, b.v[4], b.v[5]);
    Nibbles<Fmt, 3>(q[3], qh, b.v[6], b.v[7]);
  } else {
    for (int half = 0; half < 2; ++half) {
      __m256i q[4];
      Transpose16(w, w4, s, s3, Fmt::kQsOffset + 16 * half, q);
      for (int c = 0; c < 4; ++c) {
        b.v[2 * (4 * half + c)] = _mm256_sign_epi8(q[c], q[c]);  // |w| (0x80 reads as 128 unsigned)
        b.v[2 * (4 * half + c) + 1] = q[c];
      }
    }
  }
}

// acc[t] += block ib's contribution to the 8 outputs of token t, t < NT,
// from a pre-unpacked block. DotRows8 does the same float operations.
template <class Fmt, int NT>
FORMIGA_ALWAYS_INLINE void BlockDot(const Unpacked<Fmt>& b, const ActQ8* xq, int64_t nb, int64_t ib, __m256 acc[NT]) {
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);  // AVX2 step only
  // NOTE: token by token, each reloading the block's vectors from L1: with
  // the column groups outermost (every vector loaded once for NT tokens) GCC
  // hoists all 2 * NT products of a group and spills them (-30 %).
#pragma GCC unroll 8
  for (int t = 0; t < NT; ++t) {
    const ActQ8& a = xq[t * nb + ib];
    __m256i isum;
#if FORMIGA_CPU_VNNI
    if constexpr (Fmt::kFour) {
      isum = SumFourVnni<Fmt>(b.v, a);
    } else {
      __m256i aq[4], q[4];
      for (int c = 0; c < 4; ++c) aq[c] = b.v[2 * c], q[c] = b.v[2 * c + 1];
      isum = SumHalfQ8Vnni(aq, q, a.qs);
      for (int c = 0; c < 4; ++c) aq[c] = b.v[8 + 2 * c], q[c] = b.v[8 + 2 * c + 1];
      isum = _mm256_add_epi32(isum, SumHalfQ8Vnni(aq, q, a.qs + 16));
    }
#else
    if constexpr (Fmt::kFour) {
      isum = _mm256_setzero_si256();
      __m256i p = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        p = _mm256_add_epi16(p, _mm256_add_epi16(_mm256_maddubs_epi16(b.v[2 * c], Bcast4(a.qs + 4 * c)),
                                                 _mm256_maddubs_epi16(b.v[2 * c + 1], Bcast4(a.qs + 16 + 4 * c))));
        if (c % kWiden<Fmt> == kWiden<Fmt> - 1) {
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, ones));
          p = _mm256_setzero_si256();
        }
      }
      isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_set1_epi32(a.qsum), Fmt::kOffsetShift));
    } else {
      isum = _mm256_setzero_si256();
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) {
        const __m256i x = Bcast4(a.qs + 4 * c);
        isum = _mm256_add_epi32(
            isum, _mm256_madd_epi16(_mm256_maddubs_epi16(b.v[2 * c], _mm256_sign_epi8(x, b.v[2 * c + 1])), ones));
      }
    }
#endif
    acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(b.d8, _mm256_broadcast_ss(&a.d)), acc[t]);
  }
}

// y[t * ldy + lane] = dot(row lane, token t) for NT tokens and the 8 rows
// starting at `w`, `stride` bytes apart (a weight matrix's rows are adjacent,
// so the 8 rows are one contiguous stretch of 8 * stride bytes), unpacking
// each block on the fly in registers. Used for one token (decode: NT = 1;
// for 2+ tokens DotRows8Tok below is faster: with NT = 4 GCC spilled the
// 2 * NT partial sums and products). NOTE: written out rather than through UnpackBlock/BlockDot, which
// GCC keeps in memory here (-45 % at T = 1); the float operations, the only
// ones whose order matters (the integer sums are exact), are the same as
// BlockDot's, in the same order, so both paths give the same bits.
template <class Fmt, int NT>
void DotRows8(const uint8_t* w, size_t stride, const ActQ8* xq, int64_t nb, float* y, int64_t ldy) {
  constexpr size_t kBytes = sizeof(typename Fmt::Block);
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);  // AVX2 step only
  const size_t s3 = 3 * stride;
  const uint8_t* w4 = w + 4 * stride;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib, w += kBytes, w4 += kBytes) {
    if constexpr (NT == 1) {
      // One token: the weights stream from DRAM; fetch the next group's
      // stretch (8 * stride ahead) at the pace it is used, 8 blocks a step.
      const char* ahead = reinterpret_cast<const char*>(w) + 8 * stride + ib * (7 * kBytes);
      for (size_t k = 0; k < 8 * kBytes; k += 64) _mm_prefetch(ahead + k, _MM_HINT_T0);
    }
    const __m256 d8 = Gather8F16(w, w4, stride, s3, 0);
    __m256i p[NT];
    for (int t = 0; t < NT; ++t) p[t] = _mm256_setzero_si256();
    if constexpr (Fmt::kFour) {
      __m256i q[4];
      Transpose16(w, w4, stride, s3, Fmt::kQsOffset, q);
      const __m256i qh = Fmt::kFive ? Gather8U32(w, w4, stride, s3, 2) : _mm256_setzero_si256();
      [[maybe_unused]] __m256i p16[NT];  // AVX2 step only
      for (int t = 0; t < NT; ++t) p16[t] = _mm256_setzero_si256();
      const auto group = [&]<int c>() {
        __m256i lo, hi;
        Nibbles<Fmt, c>(q[c], qh, lo, hi);
#pragma GCC unroll 8
        for (int t = 0; t < NT; ++t) {
          const int8_t* qs = xq[t * nb + ib].qs;
#if FORMIGA_CPU_VNNI
          p[t] = Dpbusd(Dpbusd(p[t], lo, Bcast4(qs + 4 * c)), hi, Bcast4(qs + 16 + 4 * c));
#else
          p16[t] = _mm256_add_epi16(p16[t], _mm256_add_epi16(_mm256_maddubs_epi16(lo, Bcast4(qs + 4 * c)),
                                                             _mm256_maddubs_epi16(hi, Bcast4(qs + 16 + 4 * c))));
          if constexpr (c % kWiden<Fmt> == kWiden<Fmt> - 1) {
            p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(p16[t], ones));
            p16[t] = _mm256_setzero_si256();
          }
#endif
        }
      };
      group.template operator()<0>();
      group.template operator()<1>();
      group.template operator()<2>();
      group.template operator()<3>();
    } else {
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        __m256i q[4];
        Transpose16(w, w4, stride, s3, Fmt::kQsOffset + 16 * half, q);
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
          const __m256i aq = _mm256_sign_epi8(q[c], q[c]);  // |w| (0x80 reads as 128 unsigned)
#pragma GCC unroll 8
          for (int t = 0; t < NT; ++t) {
            const __m256i x = Bcast4(xq[t * nb + ib].qs + 16 * half + 4 * c);
#if FORMIGA_CPU_VNNI
            p[t] = Dpbusd(p[t], aq, _mm256_sign_epi8(x, q[c]));
#else
            p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(x, q[c])), ones));
#endif
          }
        }
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const ActQ8& a = xq[t * nb + ib];
      __m256i isum = p[t];
      if constexpr (Fmt::kFour) isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(a.qsum << Fmt::kOffsetShift));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d8, _mm256_broadcast_ss(&a.d)), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + t * ldy, acc[t]);
}

// Batched decode (nt = 2..kTokTile tokens, e.g. 8 sequences): each block of
// the 8-row group is unpacked once into registers (Q4/Q5: 8 vectors) and
// used by every token of the tile, one token at a time: a token's block sum
// is finished (one int32 vector) before the next token's starts, so only the
// unpacked block and a few temporaries are live (no spills), and the running
// sums wait in a small stack array (one load + store per block and token,
// off the critical multiply port). The float operations are BlockDot's, in
// its order, so the bits are those of every other path.
template <class Fmt>
void DotRows8Tok(const uint8_t* w, size_t stride, const ActQ8* xq, int64_t nb, int nt, float* y, int64_t ldy) {
  constexpr size_t kBytes = sizeof(typename Fmt::Block);
  [[maybe_unused]] const __m256i ones = _mm256_set1_epi16(1);  // AVX2 step only
  const size_t s3 = 3 * stride;
  const uint8_t* w4 = w + 4 * stride;
  alignas(32) float acc[kTokTile][kLanes] = {};
  for (int64_t ib = 0; ib < nb; ++ib, w += kBytes, w4 += kBytes) {
    // The next group's stretch, at the pace this one is read (as DotRows8's
    // one-token path).
    const char* ahead = reinterpret_cast<const char*>(w) + 8 * stride + ib * (7 * kBytes);
    for (size_t k = 0; k < 8 * kBytes; k += 64) _mm_prefetch(ahead + k, _MM_HINT_T0);
    const __m256 d8 = Gather8F16(w, w4, stride, s3, 0);
    if constexpr (!Fmt::kFour) {
      // Q8_0: 16 vectors per block (|q| and q of 8 column groups), so one
      // half of the block at a time; the first half's int32 sums wait in
      // `part`.
      alignas(32) int32_t part[kTokTile][kLanes];
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        __m256i q[4], aq[4];
        Transpose16(w, w4, stride, s3, Fmt::kQsOffset + 16 * half, q);
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) aq[c] = _mm256_sign_epi8(q[c], q[c]);  // |w| (0x80 reads as 128 unsigned)
        const ActQ8* a = xq + ib;
#pragma GCC unroll 1
        for (int t = 0; t < nt; ++t, a += nb) {
#if FORMIGA_CPU_VNNI
          __m256i isum = SumHalfQ8Vnni(aq, q, a->qs + 16 * half);
#else
          __m256i s4[4];
#pragma GCC unroll 4
          for (int c = 0; c < 4; ++c) {
            const __m256i x = Bcast4(a->qs + 16 * half + 4 * c);
            s4[c] = _mm256_madd_epi16(_mm256_maddubs_epi16(aq[c], _mm256_sign_epi8(x, q[c])), ones);
          }
          __m256i isum = _mm256_add_epi32(_mm256_add_epi32(s4[0], s4[1]), _mm256_add_epi32(s4[2], s4[3]));
#endif
          if (half == 0) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(part[t]), isum);
            continue;
          }
          isum = _mm256_add_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(part[t])), isum);
          _mm256_store_ps(acc[t], _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum),
                                                  _mm256_mul_ps(d8, _mm256_broadcast_ss(&a->d)), _mm256_load_ps(acc[t])));
        }
      }
      continue;
    }
    __m256i q[4];
    Transpose16(w, w4, stride, s3, Fmt::kQsOffset, q);
    const __m256i qh = Fmt::kFive ? Gather8U32(w, w4, stride, s3, 2) : _mm256_setzero_si256();
    __m256i v[8];
    Nibbles<Fmt, 0>(q[0], qh, v[0], v[1]);
    Nibbles<Fmt, 1>(q[1], qh, v[2], v[3]);
    Nibbles<Fmt, 2>(q[2], qh, v[4], v[5]);
    Nibbles<Fmt, 3>(q[3], qh, v[6], v[7]);
    const ActQ8* a = xq + ib;
#pragma GCC unroll 1
    for (int t = 0; t < nt; ++t, a += nb) {
#if FORMIGA_CPU_VNNI
      const __m256i isum = SumFourVnni<Fmt>(v, *a);
#else
      __m256i isum = _mm256_setzero_si256();
      __m256i p = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        p = _mm256_add_epi16(p, _mm256_add_epi16(_mm256_maddubs_epi16(v[2 * c], Bcast4(a->qs + 4 * c)),
                                                 _mm256_maddubs_epi16(v[2 * c + 1], Bcast4(a->qs + 16 + 4 * c))));
        if (c % kWiden<Fmt> == kWiden<Fmt> - 1) {
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, ones));
          p = _mm256_setzero_si256();
        }
      }
      isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_set1_epi32(a->qsum), Fmt::kOffsetShift));
#endif
      _mm256_store_ps(acc[t], _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d8, _mm256_broadcast_ss(&a->d)),
                                              _mm256_load_ps(acc[t])));
    }
  }
  for (int t = 0; t < nt; ++t) std::memcpy(y + t * ldy, acc[t], sizeof(acc[t]));
}

#if FORMIGA_CPU_ZMM
// Batched decode, 16 rows at a time (the avx512-vnni tier; Q4_0 and Q8_0):
// DotRows8Tok with each 512-bit load holding rows i, i + 4, i + 8, i + 12 in
// its four 128-bit lanes, so Transpose16's unpacks (within 128-bit lanes)
// leave row i's bytes in 32-bit lane i and every vpdpbusd covers 16 rows.
// Each lane's integer sums (exact) and float operations are DotRows8Tok's,
// in the same order: the same bits as the 8-row and AVX2 paths.
// NOTE: the one-token (decode) version of this kernel was 25-57 % faster
// with the weights in L2 but 10-30 % slower streaming them from DRAM, and
// was removed (docs/kernels.md "512-bit paths"); batched decode is
// compute-bound.

// 16 bytes at `off` of rows w, w + s4, w + 2 s4, w + 3 s4.
FORMIGA_ALWAYS_INLINE __m512i LoadQuad(const uint8_t* w, size_t s4, int off) {
  const auto at = [&](int k) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + k * s4 + off)); };
  __m512i v = _mm512_inserti32x4(_mm512_setzero_si512(), at(0), 0);
  v = _mm512_inserti32x4(v, at(1), 1);
  v = _mm512_inserti32x4(v, at(2), 2);
  return _mm512_inserti32x4(v, at(3), 3);
}

// Transpose16 for 16 rows: q[c] lane i = bytes 4c..4c+3 at `off` of row i.
FORMIGA_ALWAYS_INLINE void Transpose16Z(const uint8_t* w, size_t s, int off, __m512i q[4]) {
  const size_t s4 = 4 * s;
  const __m512i a0 = LoadQuad(w, s4, off), a1 = LoadQuad(w + s, s4, off);
  const __m512i a2 = LoadQuad(w + 2 * s, s4, off), a3 = LoadQuad(w + 3 * s, s4, off);
  const __m512i t0 = _mm512_unpacklo_epi32(a0, a1), t1 = _mm512_unpackhi_epi32(a0, a1);
  const __m512i t2 = _mm512_unpacklo_epi32(a2, a3), t3 = _mm512_unpackhi_epi32(a2, a3);
  q[0] = _mm512_unpacklo_epi64(t0, t2);
  q[1] = _mm512_unpackhi_epi64(t0, t2);
  q[2] = _mm512_unpacklo_epi64(t1, t3);
  q[3] = _mm512_unpackhi_epi64(t1, t3);
}

// The f16 block scales of the 16 rows as f32, lane i = row i: scalar loads
// (Gather8F16 twice). NOTE: the shuffle ports are this kernel's limit; a
// 16-row transpose of word 0 was 20 % slower, vpgatherdd 25 % (Zen 5).
FORMIGA_ALWAYS_INLINE __m512 Gather16F16(const uint8_t* w, size_t s) {
  return Join16(Gather8F16(w, w + 4 * s, s, 3 * s, 0), Gather8F16(w + 8 * s, w + 12 * s, s, 3 * s, 0));
}

FORMIGA_ALWAYS_INLINE __m512i Bcast4Z(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Q8_0's sign trick on 16 lanes: |w| times x negated where w < 0 (AVX-512
// has no vpsignb; where w = 0 the product is 0 either way, and x = -128
// never occurs: ActQ8 is symmetric).
FORMIGA_ALWAYS_INLINE __m512i SignedX(__m512i x, __mmask64 neg) {
  return _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x);
}

// y[t * ldy + i] = dot(row i, token t) for the nt tokens and the 16 full
// rows starting at w, `stride` bytes apart.
template <class Fmt>
void DotRows16Tok(const uint8_t* w, size_t stride, const ActQ8* xq, int64_t nb, int nt, float* y, int64_t ldy) {
  static_assert(!Fmt::kFive, "Q5_0 stays on the 8-row path");
  constexpr size_t kBytes = sizeof(typename Fmt::Block);
  alignas(64) float acc[kTokTile][16] = {};
  for (int64_t ib = 0; ib < nb; ++ib, w += kBytes) {
    // The next 16 rows' stretch, at the pace this one is read.
    const char* ahead = reinterpret_cast<const char*>(w) + 16 * stride + ib * (15 * kBytes);
    for (size_t k = 0; k < 16 * kBytes; k += 64) _mm_prefetch(ahead + k, _MM_HINT_T0);
    const __m512 d16 = Gather16F16(w, stride);
    const ActQ8* a = xq + ib;
    if constexpr (!Fmt::kFour) {
      alignas(64) int32_t part[kTokTile][16];
#pragma GCC unroll 2
      for (int half = 0; half < 2; ++half) {
        __m512i q[4], aq[4];
        __mmask64 neg[4];
        Transpose16Z(w, stride, Fmt::kQsOffset + 16 * half, q);
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) aq[c] = _mm512_abs_epi8(q[c]), neg[c] = _mm512_movepi8_mask(q[c]);
        const ActQ8* at = a;
#pragma GCC unroll 1
        for (int t = 0; t < nt; ++t, at += nb) {
          const int8_t* x = at->qs + 16 * half;
          __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aq[0], SignedX(Bcast4Z(x), neg[0]));
          __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aq[1], SignedX(Bcast4Z(x + 4), neg[1]));
          s0 = _mm512_dpbusd_epi32(s0, aq[2], SignedX(Bcast4Z(x + 8), neg[2]));
          s1 = _mm512_dpbusd_epi32(s1, aq[3], SignedX(Bcast4Z(x + 12), neg[3]));
          __m512i isum = _mm512_add_epi32(s0, s1);
          if (half == 0) {
            _mm512_store_si512(part[t], isum);
            continue;
          }
          isum = _mm512_add_epi32(_mm512_load_si512(part[t]), isum);
          _mm512_store_ps(acc[t], _mm512_fmadd_ps(Cvt16(isum), _mm512_mul_ps(d16, _mm512_set1_ps(at->d)),
                                                  _mm512_load_ps(acc[t])));
        }
      }
      continue;
    }
    __m512i q[4], v[8];
    Transpose16Z(w, stride, Fmt::kQsOffset, q);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      v[2 * c] = _mm512_and_si512(q[c], m4);
      v[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(q[c], 4), m4);
    }
#pragma GCC unroll 1
    for (int t = 0; t < nt; ++t, a += nb) {
      // SumFourVnni on 16 lanes: the offset as the first chain's start.
      __m512i s0 = _mm512_set1_epi32(-a->qsum * (1 << Fmt::kOffsetShift)), s1 = _mm512_setzero_si512();
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        s0 = _mm512_dpbusd_epi32(s0, v[2 * c], Bcast4Z(a->qs + 4 * c));
        s1 = _mm512_dpbusd_epi32(s1, v[2 * c + 1], Bcast4Z(a->qs + 16 + 4 * c));
      }
      _mm512_store_ps(acc[t], _mm512_fmadd_ps(Cvt16(_mm512_add_epi32(s0, s1)),
                                              _mm512_mul_ps(d16, _mm512_set1_ps(a->d)), _mm512_load_ps(acc[t])));
    }
  }
  for (int t = 0; t < nt; ++t) std::memcpy(y + t * ldy, acc[t], sizeof(acc[t]));
}

// ---- Packed weights (cpu_pack.h): 16 rows per group, one contiguous run.
// The same per-lane integers (exact) and float operations, in the same
// order, as DotRows8 / DotRows8Tok / BlockDot: the same bits as the rows.

// The int32 sums of one packed group block `gb` and token `a` (16 lanes).
// Q4_0: the nibbles against the activations, the offset as the first
// chain's start (SumFourVnni); Q8_0: the offset-binary bytes (q + 128)
// against the activations, minus 128 * sum(x) as the start.
template <class Fmt>
FORMIGA_ALWAYS_INLINE __m512i PackedSum(const __m512i* v, const ActQ8& a) {
  constexpr int kShift = Fmt::kFour ? Fmt::kOffsetShift : 7;
  __m512i s0 = _mm512_set1_epi32(-a.qsum * (1 << kShift)), s1 = _mm512_setzero_si512();
  if constexpr (Fmt::kFour) {
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      s0 = _mm512_dpbusd_epi32(s0, v[2 * c], Bcast4Z(a.qs + 4 * c));
      s1 = _mm512_dpbusd_epi32(s1, v[2 * c + 1], Bcast4Z(a.qs + 16 + 4 * c));
    }
  } else {
#pragma GCC unroll 4
    for (int c = 0; c < 8; c += 2) {
      s0 = _mm512_dpbusd_epi32(s0, v[c], Bcast4Z(a.qs + 4 * c));
      s1 = _mm512_dpbusd_epi32(s1, v[c + 1], Bcast4Z(a.qs + 4 * c + 4));
    }
  }
  return _mm512_add_epi32(s0, s1);
}

// The 8 unsigned quant vectors of a packed group block: Q4_0 lo0, hi0, lo1,
// ...; Q8_0 the 8 column groups' offset-binary bytes.
template <class Fmt>
FORMIGA_ALWAYS_INLINE void PackedQuants(const uint8_t* gb, __m512i v[8]) {
  const uint8_t* q = gb + 32;
  if constexpr (Fmt::kFour) {
    const __m512i m4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i b = _mm512_loadu_si512(q + 64 * c);
      v[2 * c] = _mm512_and_si512(b, m4);
      v[2 * c + 1] = _mm512_and_si512(_mm512_srli_epi16(b, 4), m4);
    }
  } else {
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) v[c] = _mm512_loadu_si512(q + 64 * c);
  }
}

// Prefetch distance of the packed one-token kernel, in bytes ahead of the
// group block being read (one contiguous stream per task).
constexpr size_t kPackedAhead = 2048;

// Decode: y[i] = dot(row i, the token) for the 16 rows of packed group `g`.
template <class Fmt>
void DotPacked16(const uint8_t* g, const ActQ8* a, int64_t nb, float* y) {
  constexpr size_t kGroupBlock = 16 * sizeof(typename Fmt::Block);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib, g += kGroupBlock, ++a) {
    for (size_t k = 0; k < kGroupBlock; k += 64) _mm_prefetch(reinterpret_cast<const char*>(g) + kPackedAhead + k, _MM_HINT_T0);
    __m512i v[8];
    PackedQuants<Fmt>(g, v);
    const __m512 d16 = F16x16(reinterpret_cast<const uint16_t*>(g));
    acc = _mm512_fmadd_ps(Cvt16(PackedSum<Fmt>(v, *a)), _mm512_mul_ps(d16, _mm512_set1_ps(a->d)), acc);
  }
  _mm512_storeu_ps(y, acc);
}

// Batched decode: the nt (<= kTokTile) tokens of a tile, each group block
// unpacked once into registers for all of them.
template <class Fmt>
void DotPacked16Tok(const uint8_t* g, const ActQ8* xq, int64_t nb, int nt, float* y, int64_t ldy) {
  constexpr size_t kGroupBlock = 16 * sizeof(typename Fmt::Block);
  alignas(64) float acc[kTokTile][16] = {};
  for (int64_t ib = 0; ib < nb; ++ib, g += kGroupBlock) {
    for (size_t k = 0; k < kGroupBlock; k += 64) _mm_prefetch(reinterpret_cast<const char*>(g) + kPackedAhead + k, _MM_HINT_T0);
    __m512i v[8];
    PackedQuants<Fmt>(g, v);
    const __m512 d16 = F16x16(reinterpret_cast<const uint16_t*>(g));
    const ActQ8* a = xq + ib;
#pragma GCC unroll 1
    for (int t = 0; t < nt; ++t, a += nb) {
      _mm512_store_ps(acc[t], _mm512_fmadd_ps(Cvt16(PackedSum<Fmt>(v, *a)), _mm512_mul_ps(d16, _mm512_set1_ps(a->d)),
                                              _mm512_load_ps(acc[t])));
    }
  }
  for (int t = 0; t < nt; ++t) std::memcpy(y + t * ldy, acc[t], sizeof(acc[t]));
}
#endif  // FORMIGA_CPU_ZMM

// The same from blocks unpacked beforehand (prefill: each group is unpacked
// once per call instead of once per token tile).
template <class Fmt, int NT>
void DotUnpacked(const Unpacked<Fmt>* pk, const ActQ8* xq, int64_t nb, float* y, int64_t ldy, int n_valid) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib) BlockDot<Fmt, NT>(pk[ib], xq, nb, ib, acc);
  for (int t = 0; t < NT; ++t) {
    if (n_valid == kLanes) {
      _mm256_storeu_ps(y + t * ldy, acc[t]);
    } else {
      alignas(32) float tmp[kLanes];
      _mm256_store_ps(tmp, acc[t]);
      std::memcpy(y + t * ldy, tmp, n_valid * sizeof(float));
    }
  }
}

// The last rows (N % 8) go through a zero-padded copy of 8 rows, so they get
// exactly the arithmetic of full groups; only the real lanes are stored.
inline const uint8_t* PadGroup(const uint8_t* w, size_t stride, int n_valid) {
  thread_local std::vector<uint8_t> pad;
  pad.assign(kLanes * stride, 0);
  std::memcpy(pad.data(), w, n_valid * stride);
  return pad.data();
}

// y rows for `nt` tokens of the 8-row group at w (n_valid real rows): one
// token by DotRows8 (decode), 2..kTokTile by DotRows8Tok.
template <class Fmt>
void DotGroup(const uint8_t* w, size_t stride, int n_valid, const ActQ8* xq, int64_t nb, int nt, float* y,
              int64_t ldy) {
  const auto dot = [&](const uint8_t* g, float* out, int64_t ld) {
    if (nt == 1) {
      DotRows8<Fmt, 1>(g, stride, xq, nb, out, ld);
    } else {
      DotRows8Tok<Fmt>(g, stride, xq, nb, nt, out, ld);
    }
  };
  if (n_valid == kLanes) {
    dot(w, y, ldy);
    return;
  }
  alignas(32) float tmp[kTokTile][kLanes];
  dot(PadGroup(w, stride, n_valid), tmp[0], kLanes);
  for (int t = 0; t < nt; ++t) std::memcpy(y + t * ldy, tmp[t], n_valid * sizeof(float));
}

// Every token tile of T tokens over a pre-unpacked 8-row group.
template <class Fmt>
void DotUnpackedTiles(const Unpacked<Fmt>* pk, const ActQ8* xq, int64_t nb, int64_t T, float* y, int64_t ldy,
                      int n_valid) {
  constexpr int kBig = kUnpackedTile;
  int64_t t = 0;
  for (; t + kBig <= T; t += kBig) DotUnpacked<Fmt, kBig>(pk, xq + t * nb, nb, y + t * ldy, ldy, n_valid);
  for (; t + 4 <= T; t += 4) DotUnpacked<Fmt, 4>(pk, xq + t * nb, nb, y + t * ldy, ldy, n_valid);
  for (; t < T; ++t) DotUnpacked<Fmt, 1>(pk, xq + t * nb, nb, y + t * ldy, ldy, n_valid);
}

// Rows [n0, n1) of a kRows matrix into y (T rows, `N` = ldy apart).
template <class Fmt>
void MatMulRows8(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1, int64_t N) {
  const int64_t nb = w.cols / kQK;
  const auto* base = static_cast<const uint8_t*>(w.data);
  thread_local std::vector<Unpacked<Fmt>> unpacked;
  for (int64_t r0 = n0; r0 < n1; r0 += kLanes) {
    const int n_valid = static_cast<int>(std::min<int64_t>(kLanes, n1 - r0));
    const uint8_t* rows = base + static_cast<size_t>(r0) * w.row_bytes;
#if FORMIGA_CPU_ZMM
    if constexpr (!Fmt::kFive) {
      if (T > 1 && T < kUnpackMinT && r0 + 16 <= n1) {
        for (int64_t t = 0; t < T; t += kTokTile) {
          const int nt = static_cast<int>(std::min<int64_t>(kTokTile, T - t));
          DotRows16Tok<Fmt>(rows, w.row_bytes, xq + t * nb, nb, nt, y + t * N + r0, N);
        }
        r0 += kLanes;  // and kLanes more by the loop
        continue;
      }
    }
#endif
    if (T >= kUnpackMinT) {
      // Several token tiles: unpack the group once (nb blocks, a few KB: it
      // stays in L1/L2 while every tile sweeps it).
      const size_t stride = w.row_bytes;
      const uint8_t* g = n_valid == kLanes ? rows : PadGroup(rows, stride, n_valid);
      unpacked.resize(static_cast<size_t>(nb));
      for (int64_t ib = 0; ib < nb; ++ib) {
        const uint8_t* wb = g + ib * sizeof(typename Fmt::Block);
        UnpackBlock<Fmt>(wb, wb + 4 * stride, stride, 3 * stride, unpacked[ib]);
      }
      DotUnpackedTiles<Fmt>(unpacked.data(), xq, nb, T, y + r0, N, n_valid);
      continue;
    }
    for (int64_t t = 0; t < T; t += kTokTile) {
      const int nt = static_cast<int>(std::min<int64_t>(kTokTile, T - t));
      DotGroup<Fmt>(rows, w.row_bytes, n_valid, xq + t * nb, nb, nt, y + t * N + r0, N);
    }
  }
}

#if FORMIGA_CPU_ZMM
// Prefill from packed weights: rows 8h .. 8h + 7 of packed group block `gb`
// as the Unpacked block UnpackBlock makes from the rows.
template <class Fmt>
FORMIGA_ALWAYS_INLINE void UnpackPackedHalf(const uint8_t* gb, int h, Unpacked<Fmt>& b) {
  const auto at = [&](int c) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gb + 32 + 64 * c + 32 * h)); };
  b.d8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(gb + 16 * h)));
  if constexpr (Fmt::kFour) {
    const __m256i none = _mm256_setzero_si256();
    Nibbles<Fmt, 0>(at(0), none, b.v[0], b.v[1]);
    Nibbles<Fmt, 1>(at(1), none, b.v[2], b.v[3]);
    Nibbles<Fmt, 2>(at(2), none, b.v[4], b.v[5]);
    Nibbles<Fmt, 3>(at(3), none, b.v[6], b.v[7]);
  } else {
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int c = 0; c < 8; ++c) {
      const __m256i q = _mm256_xor_si256(at(c), bias);  // q + 128 -> q
      b.v[2 * c] = _mm256_sign_epi8(q, q);
      b.v[2 * c + 1] = q;
    }
  }
}

// Rows [n0, n1) of a packed matrix (cpu_pack.h).
template <class Fmt>
void MatMulPacked(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  constexpr size_t kGroupBlock = 16 * sizeof(typename Fmt::Block);
  const int64_t nb = w.cols / kQK, N = w.rows;
  const size_t group_bytes = static_cast<size_t>(nb) * kGroupBlock;
  thread_local std::vector<Unpacked<Fmt>> unpacked;
  const auto group = [&](int64_t gi, float* out, int64_t ld) {
    const uint8_t* g = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(gi) * group_bytes;
    if (T == 1) {
      DotPacked16<Fmt>(g, xq, nb, out);
    } else if (T < kUnpackMinT) {
      for (int64_t t = 0; t < T; t += kTokTile) {
        const int nt = static_cast<int>(std::min<int64_t>(kTokTile, T - t));
        DotPacked16Tok<Fmt>(g, xq + t * nb, nb, nt, out + t * ld, ld);
      }
    } else {
      unpacked.resize(static_cast<size_t>(nb));
      for (int h = 0; h < 2; ++h) {
        for (int64_t ib = 0; ib < nb; ++ib) UnpackPackedHalf<Fmt>(g + ib * kGroupBlock, h, unpacked[ib]);
        DotUnpackedTiles<Fmt>(unpacked.data(), xq, nb, T, out + kLanes * h, ld, kLanes);
      }
    }
  };
  const int64_t full = N / kPackRows * kPackRows;
  ForEachPackedGroup(N, T, n0, n1, y, group, [&](int64_t m0, int64_t m1) {
    MatMulRows8<Fmt>(PackedTail(w), xq, T, y + full, m0, m1, N);
  });
}
#endif  // FORMIGA_CPU_ZMM

}  // namespace

// The tier's entry point: cpu::<FORMIGA_CPU_TIER>::MatMulQ8Rows8 (cpu_kernels.h).
// Packed weights (cpu_pack.h) exist only for the 512-bit tiers' Q4_0 and
// Q8_0: the backend packs only for those, and refuses a packed view it
// cannot read before any kernel runs.
bool MatMulQ8Rows8(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  if (w.layout == WeightLayout::kPacked) {
#if FORMIGA_CPU_ZMM
    switch (w.type) {
      case DType::kQ4_0: MatMulPacked<FmtQ4_0>(w, xq, T, y, n0, n1); return true;
      case DType::kQ8_0: MatMulPacked<FmtQ8_0>(w, xq, T, y, n0, n1); return true;
      default: break;
    }
#endif
    std::abort();  // unreachable: CpuBackend::MatMulShared checks CanReadPacked
  }
  switch (w.type) {
    case DType::kQ4_0: MatMulRows8<FmtQ4_0>(w, xq, T, y, n0, n1, w.rows); return true;
    case DType::kQ5_0: MatMulRows8<FmtQ5_0>(w, xq, T, y, n0, n1, w.rows); return true;
    case DType::kQ8_0: MatMulRows8<FmtQ8_0>(w, xq, T, y, n0, n1, w.rows); return true;
    default: return false;
  }
}

}  // namespace formiga::cpu::FORMIGA_CPU_TIER
