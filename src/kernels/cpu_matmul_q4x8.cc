// Q4_0 MatMul with 8 weight rows in the 8 lanes of a vector (decode and
// prefill). Compiled with -mavx2 -mfma -mf16c.
//
// The one-row kernels of cpu_matmul_q8.cc pay, per (row, token, block of
// 32), an unpack, a sign trick, maddubs + madd, an int->float conversion
// and a scale FMA into an 8-lane accumulator that still needs a horizontal
// sum: most of the work is not multiplying. Here a vector holds 8 rows:
//
// - The 16 quant bytes of one block in 8 rows are loaded and transposed by
//   32-bit groups (4 x 4 transposes in both 128-bit halves: 4 inserts + 8
//   unpacks), so that vector c holds bytes 4c..4c+3 of row r in lane r: the
//   low nibbles are columns 4c..4c+3 of each row, the high nibbles columns
//   16+4c..16+4c+3. The weights stay in the GGUF layout (no repacking, the
//   mmap is used as is).
// - Per token, the matching 4 activation bytes are broadcast (a load) and
//   _mm256_maddubs_epi16(q, x) gives, in lane r, two int16 partial sums of
//   row r. q is the unsigned nibble (0..15), so the Q4_0 offset is taken
//   out once per block as 8 * sum(x), exactly: the block's dot product
//   sum((q - 8) x) is computed in exact integers.
//   Bound: |pair| <= 2 * 15 * 127 = 3810, eight steps add to <= 30480 <
//   32767, so the int16 sums of a whole block never saturate.
// - Per block and token: one madd (pairs to int32), one subtraction, one
//   conversion and one FMA with d_row * d_x for 8 outputs at once; the
//   lanes are the outputs, stored with one store: no horizontal sums.
//
// Every output (row, token) is accumulated in block order with the same
// operations whatever the token tile (NT) or the rows around it, so results
// are bit-identical for any batch, tile and thread count (the invariance
// test in cpu_matmul_test.cc). Tail rows (N % 8) run the same lanes with the
// missing rows pointing at a real row, and only the real lanes are stored.
//
// Shapes: W is (N, C) in Q4_0 blocks, xq is (T, C/32) ActQ8, y is (T, N).
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"

namespace formiga::cpu {
namespace {

constexpr int kLanes = 8;
constexpr int kTile = 4;

inline uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline __m256i LoadPair(const uint8_t* lo, const uint8_t* hi) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
}

inline __m256i Bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// y[t * ldy + lane] = dot(row lane, token t) for NT tokens and the 8 rows
// starting at `w`, `stride` bytes apart (a weight matrix's rows are adjacent,
// so the 8 rows are one contiguous stretch of 8 * stride bytes).
template <int NT>
void DotRows8Q4_0(const uint8_t* w, size_t stride, const ActQ8* xq, int64_t nb, float* y, int64_t ldy) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  const __m256i ones = _mm256_set1_epi16(1);
  const size_t s3 = 3 * stride;
  const uint8_t* w4 = w + 4 * stride;
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < nb; ++ib, w += sizeof(BlockQ4_0), w4 += sizeof(BlockQ4_0)) {
    if constexpr (NT == 1) {
      // One token: the weights stream from DRAM; fetch the next group's
      // stretch (8 * stride ahead) at the pace it is used, 144 bytes a block.
      const char* ahead = reinterpret_cast<const char*>(w) + 8 * stride + ib * 126;
      _mm_prefetch(ahead, _MM_HINT_T0);
      _mm_prefetch(ahead + 64, _MM_HINT_T0);
      _mm_prefetch(ahead + 128, _MM_HINT_T0);
    }
    const uint64_t dlo = static_cast<uint64_t>(Load16(w)) | static_cast<uint64_t>(Load16(w + stride)) << 16 |
                         static_cast<uint64_t>(Load16(w + 2 * stride)) << 32 |
                         static_cast<uint64_t>(Load16(w + s3)) << 48;
    const uint64_t dhi = static_cast<uint64_t>(Load16(w4)) | static_cast<uint64_t>(Load16(w4 + stride)) << 16 |
                         static_cast<uint64_t>(Load16(w4 + 2 * stride)) << 32 |
                         static_cast<uint64_t>(Load16(w4 + s3)) << 48;
    const __m256 d8 = _mm256_cvtph_ps(_mm_insert_epi64(_mm_cvtsi64_si128(static_cast<long long>(dlo)),
                                                       static_cast<long long>(dhi), 1));
    // Rows r and r + 4 in the two halves, then 4 x 4 transposes of 32-bit groups.
    const __m256i a0 = LoadPair(w + 2, w4 + 2);
    const __m256i a1 = LoadPair(w + stride + 2, w4 + stride + 2);
    const __m256i a2 = LoadPair(w + 2 * stride + 2, w4 + 2 * stride + 2);
    const __m256i a3 = LoadPair(w + s3 + 2, w4 + s3 + 2);
    const __m256i t0 = _mm256_unpacklo_epi32(a0, a1);
    const __m256i t1 = _mm256_unpackhi_epi32(a0, a1);
    const __m256i t2 = _mm256_unpacklo_epi32(a2, a3);
    const __m256i t3 = _mm256_unpackhi_epi32(a2, a3);
    const __m256i q[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                          _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
    __m256i p[NT];
    for (int t = 0; t < NT; ++t) p[t] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i lo = _mm256_and_si256(q[c], m4);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q[c], 4), m4);
#pragma GCC unroll 8
      for (int t = 0; t < NT; ++t) {
        const int8_t* qs = xq[t * nb + ib].qs;
        p[t] = _mm256_add_epi16(p[t], _mm256_add_epi16(_mm256_maddubs_epi16(lo, Bcast4(qs + 4 * c)),
                                                       _mm256_maddubs_epi16(hi, Bcast4(qs + 16 + 4 * c))));
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const ActQ8& a = xq[t * nb + ib];
      const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(p[t], ones), _mm256_set1_epi32(8 * a.qsum));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(d8, _mm256_broadcast_ss(&a.d)), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + t * ldy, acc[t]);
}

template <int NT>
void DotRows8Q4_0Tail(const uint8_t* w, size_t stride, int n_valid, const ActQ8* xq, int64_t nb, float* y,
                      int64_t ldy) {
  // The last rows (N % 8) are copied to a zero-padded 8-row group, so they
  // get exactly the arithmetic of full groups; only the real lanes are stored.
  thread_local std::vector<uint8_t> pad;
  pad.assign(kLanes * stride, 0);
  std::memcpy(pad.data(), w, n_valid * stride);
  alignas(32) float tmp[NT][kLanes];
  DotRows8Q4_0<NT>(pad.data(), stride, xq, nb, tmp[0], kLanes);
  for (int t = 0; t < NT; ++t) std::memcpy(y + t * ldy, tmp[t], n_valid * sizeof(float));
}

template <int NT>
void DotGroup(const uint8_t* w, size_t stride, int n_valid, const ActQ8* xq, int64_t nb, float* y, int64_t ldy) {
  if (n_valid == kLanes) {
    DotRows8Q4_0<NT>(w, stride, xq, nb, y, ldy);
  } else {
    DotRows8Q4_0Tail<NT>(w, stride, n_valid, xq, nb, y, ldy);
  }
}

}  // namespace

void MatMulQ4_0Rows8(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t nb = w.cols / kQK, N = w.rows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r0 = n0; r0 < n1; r0 += kLanes) {
    const int n_valid = static_cast<int>(std::min<int64_t>(kLanes, n1 - r0));
    const uint8_t* rows = base + static_cast<size_t>(r0) * w.row_bytes;
    int64_t t = 0;
    for (; t + kTile <= T; t += kTile) DotGroup<kTile>(rows, w.row_bytes, n_valid, xq + t * nb, nb, y + t * N + r0, N);
    switch (T - t) {
      case 3: DotGroup<3>(rows, w.row_bytes, n_valid, xq + t * nb, nb, y + t * N + r0, N); break;
      case 2: DotGroup<2>(rows, w.row_bytes, n_valid, xq + t * nb, nb, y + t * N + r0, N); break;
      case 1: DotGroup<1>(rows, w.row_bytes, n_valid, xq + t * nb, nb, y + t * N + r0, N); break;
      default: break;
    }
  }
}

}  // namespace formiga::cpu
