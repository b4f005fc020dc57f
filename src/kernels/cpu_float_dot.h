// The per-output dot-product order of the float MatMuls (F32, F16, BF16
// weights), shared by the AVX2 kernels (cpu_matmul_float.cc) and the
// AVX-512 ones (isa/avx512_float.cc), which must give the same bits.
//
// Every output y = dot(w, x) is computed as follows. The row's nc = C / 8
// chunks of 8 columns are FMA'd, in increasing order, into two 8-lane
// accumulators: even chunks (columns 16k .. 16k + 7) into acc0, odd ones
// (16k + 8 .. 16k + 15) into acc1; when nc is odd, its last chunk (columns
// PairedColumns(C) ..) goes into acc0 after all the pairs. Then
// HSum(acc0 + acc1), then the C % 8 tail columns by scalar FMAs
// (FinishDot). The AVX2 kernels keep acc0 and acc1 in two ymm registers;
// the AVX-512 kernels keep them as the two halves of one zmm register, so
// one 512-bit FMA over 16 adjacent columns (one load, one conversion)
// advances both with the same per-lane operations.
//
// NOTE: include only from files compiled with at least -mavx2 -mfma -mf16c,
// after cpu_simd.h; everything is `static` (see cpu_simd.h).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"
#include "kernels/backend.h"
#include "kernels/cpu_simd.h"

namespace formiga::cpu {

// The columns covered by whole chunk pairs: [0, PairedColumns(C)).
static inline int64_t PairedColumns(int64_t C) { return C / 16 * 16; }

// 8 weights of row `w` at column c, as f32.
template <DType kType>
static inline __m256 LoadW(const void* w, int64_t c) {
  if constexpr (kType == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + c);
  } else if constexpr (kType == DType::kF16) {
    return LoadF16(static_cast<const uint16_t*>(w) + c);
  } else {
    return LoadBF16(static_cast<const uint16_t*>(w) + c);
  }
}

template <DType kType>
static inline float ScalarW(const void* w, int64_t c) {
  if constexpr (kType == DType::kF32) {
    return static_cast<const float*>(w)[c];
  } else if constexpr (kType == DType::kF16) {
    return _cvtsh_ss(static_cast<const uint16_t*>(w)[c]);
  } else {
    uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(w)[c]) << 16;
    float f;
    __builtin_memcpy(&f, &bits, 4);
    return f;
  }
}

// acc0 plus the unpaired last chunk (columns PairedColumns(C) .. + 7) when
// C / 8 is odd, as every path adds it: after all the pairs.
template <DType kType>
static inline __m256 AddOddChunk(__m256 acc0, const void* w, const float* x, int64_t C) {
  if ((C / 8) % 2 == 0) return acc0;
  const int64_t n16 = PairedColumns(C);
  return _mm256_fmadd_ps(LoadW<kType>(w, n16), _mm256_loadu_ps(x + n16), acc0);
}

// The end of every output's dot product, shared by all paths: the two
// accumulators' lanes, then columns [c8, C) (C % 8 of them) by explicit
// scalar FMAs (not left to the compiler's contraction choice).
template <DType kType>
static inline float FinishDot(__m256 acc0, __m256 acc1, const void* w, const float* x, int64_t c8, int64_t C) {
  float s = HSum(_mm256_add_ps(acc0, acc1));
  for (int64_t c = c8; c < C; ++c) s = __builtin_fmaf(ScalarW<kType>(w, c), x[c], s);
  return s;
}

// The end of one token's outputs for r <= 4 adjacent rows (rows at `row`,
// stride row_bytes) of the GEMMs of both builds: acc0[i], acc1[i] are row
// i's two accumulators. With no tail columns, 3 or 4 rows' sums at once
// (HSum4: HSum's additions); never a store past row r - 1 (the next row may
// be another task's).
template <DType kType>
static inline void FinishRows(const __m256* acc0, const __m256* acc1, int r, const uint8_t* row, size_t row_bytes,
                              const float* x, int64_t c8, int64_t C, float* y) {
  if (r >= 3 && c8 == C) {
    __m256 v[4];
    for (int i = 0; i < r; ++i) v[i] = _mm256_add_ps(acc0[i], acc1[i]);
    if (r == 3) v[3] = v[2];
    const __m128 sums = HSum4(v[0], v[1], v[2], v[3]);
    if (r == 4) {
      _mm_storeu_ps(y, sums);
    } else {
      _mm_storel_pi(reinterpret_cast<__m64*>(y), sums);
      _mm_store_ss(y + 2, _mm_movehl_ps(sums, sums));
    }
    return;
  }
  for (int i = 0; i < r; ++i) y[i] = FinishDot<kType>(acc0[i], acc1[i], row + i * row_bytes, x, c8, C);
}

// The one-token (decode) driver of both builds: rows [n0, n1) two at a
// time, then one, prefetching two rows (at least 4 KB, in whole rows) ahead
// (4 rows per pass: no better from DRAM, see docs/kernels.md). Calls
// dot(std::integral_constant<int, R>, row, ahead, y + n) with R = 2 or 1.
template <class Dot>
static inline void DecodeRows(const WeightView& w, int64_t n0, int64_t n1, float* y, Dot&& dot) {
  constexpr int kRows = 2;
  const auto* base = static_cast<const uint8_t*>(w.data);
  const auto ahead = static_cast<int64_t>(std::max<size_t>(4095 / w.row_bytes + 1, kRows) * w.row_bytes);
  int64_t n = n0;
  for (; n + kRows <= n1; n += kRows) {
    dot(std::integral_constant<int, kRows>{}, base + static_cast<size_t>(n) * w.row_bytes, ahead, y + n);
  }
  for (; n < n1; ++n) dot(std::integral_constant<int, 1>{}, base + static_cast<size_t>(n) * w.row_bytes, ahead, y + n);
}

}  // namespace formiga::cpu
