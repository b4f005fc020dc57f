// MatMul kernels for float weights (F32, F16, BF16) and the activation
// quantizers used by the quantized MatMul kernels (cpu_matmul_q8.cc,
// cpu_matmul_k.cc). Compiled with -mavx2 -mfma -mf16c.
//
// Shapes: W is (N, C), x is (T, C), y is (T, N).
#include <algorithm>
#include <cmath>

#include "kernels/cpu_float_dot.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"

namespace formiga::cpu {
namespace {

// The one-token path (decode): DotRowsF, two rows at a time.
// The multi-token path (prefill): MatMulFloatBlocked, a cache-blocked GEMM.
//
// Both compute every output y = dot(w, x) with exactly the operations and
// order of cpu_float_dot.h, so a token's result does not depend on the
// batch, its tile or the thread count (nor on the tier: isa/avx512_float.cc
// keeps the same order). Two accumulators give the one-token loop two
// independent FMA chains; alternating chunks (rather than halves of the
// row, the order until session 10) let the AVX-512 kernels load 16 adjacent
// columns at once, and each row stream from DRAM as one sequential range.

// Multi-token path: register tile of kMR rows x kNR tokens: 12 accumulators
// + 3 weight vectors + 1 activation vector = the 16 ymm registers; per 8
// columns, 3 weight loads (converted) + 4 activation loads per 12 FMAs. The
// weights come from L2 (3 x 16 bytes a step for f16), the activations from L1.
// 3 x 4 measured ~1-2 % faster than 4 x 3 (less L2 traffic per FMA).
constexpr int kMR = 3;
constexpr int kNR = 4;
// Cache blocks: kRb rows x kTb tokens of outputs are open at a time, their
// two accumulators per output (2 x 32 bytes) kept in a stack scratch between
// k-blocks (72 KB). The paired columns are swept in k-blocks of at most kKc
// columns, each twice (even chunks, then odd ones), so that a token tile's
// activations (kNR x kKc f32, 16 KB) stay in L1 while every row tile of the
// block runs over them, and the block's weights (kRb x kKc, 96 KB as f16)
// stay in L2 while every token tile does.
// Measured (C = 2048, T = 64): kKc 768 / 1024 / 2048, kRb 32..64 and kTb
// 12..48 all within 2 %; k-blocks of 4096+ columns were 20-30 % slower.
constexpr int64_t kRb = 48;
constexpr int64_t kTb = 24;
constexpr int64_t kKc = 1024;
static_assert(kRb % kMR == 0 && kTb % kNR == 0 && kKc % 8 == 0);

// One-token path: y = dot(w, x) for R adjacent rows at once (w, stride
// row_bytes): 2R independent FMA chains. For f16/bf16 the bytes from `ahead`
// on (the next R rows, or farther for short rows) are prefetched as one
// sequential stream, R lines per step (as many as the step consumes): with
// two streams per row (the halves order before session 10) the hardware
// prefetcher alone served C = 2048 at 10.5 GB/s instead of 14.5. f32 rows
// (8 KB at C = 2048) stream at ~18 GB/s without help and lost 15-20 % with
// it. Every row's operations are those of the one-row loop.
template <DType kType, int R>
void DotRowsF(const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t ahead, float* y) {
  constexpr int64_t kElem = kType == DType::kF32 ? 4 : 2;
  constexpr int64_t kStep = 64 / kElem;  // columns per cache line: whole chunk pairs
  const int64_t nc = C / 8, n16 = PairedColumns(C);
  const char* pf = reinterpret_cast<const char*>(w) + ahead;
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + kStep <= n16; c += kStep) {
    if constexpr (kElem == 2) {
#pragma GCC unroll 4
      for (int j = 0; j < R; ++j) _mm_prefetch(pf + R * c * kElem + 64 * j, _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int64_t u = 0; u < kStep; u += 16) {
      const __m256 x0 = _mm256_loadu_ps(x + c + u), x1 = _mm256_loadu_ps(x + c + u + 8);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc0[r] = _mm256_fmadd_ps(LoadW<kType>(w + r * row_bytes, c + u), x0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(LoadW<kType>(w + r * row_bytes, c + u + 8), x1, acc1[r]);
      }
    }
  }
  for (; c < n16; c += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
    for (int r = 0; r < R; ++r) {
      acc0[r] = _mm256_fmadd_ps(LoadW<kType>(w + r * row_bytes, c), x0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(LoadW<kType>(w + r * row_bytes, c + 8), x1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    y[r] = FinishDot<kType>(AddOddChunk<kType>(acc0[r], w + r * row_bytes, x, C), acc1[r], w + r * row_bytes, x,
                            8 * nc, C);
  }
}

// Register tile: R rows (w, stride row_bytes) x NT tokens (x, stride C) over
// the chunks at columns c0, c0 + 16, ... below c1 (one parity: acc0's or
// acc1's chunks of a k-block). st holds the tile's accumulators for that
// parity, [r][t]; `first` starts them at zero.
template <DType kType, int R, int NT>
void TileF(const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1, bool first,
           __m256* st) {
  // NOTE: the pragmas are needed: at -O2 GCC keeps the r/t loops (and with
  // them the accumulators in memory), which ran at a third of the speed.
  __m256 acc[R][NT];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) acc[r][t] = first ? _mm256_setzero_ps() : st[r * NT + t];
  }
  for (int64_t c = c0; c < c1; c += 16) {
    if constexpr (R <= NT) {  // R weight vectors in registers, one activation at a time
      __m256 wv[R];
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) wv[r] = LoadW<kType>(w + r * row_bytes, c);
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) {
        const __m256 xv = _mm256_loadu_ps(x + t * C + c);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) acc[r][t] = _mm256_fmadd_ps(wv[r], xv, acc[r][t]);
      }
    } else {  // NT activation vectors in registers, one weight vector at a time
      __m256 xv[NT];
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) xv[t] = _mm256_loadu_ps(x + t * C + c);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const __m256 wv = LoadW<kType>(w + r * row_bytes, c);
#pragma GCC unroll 4
        for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int t = 0; t < NT; ++t) st[r * NT + t] = acc[r][t];
  }
}

template <DType kType, int R>
void TileFRows(int nt, const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1,
               bool first, __m256* st) {
  static_assert(kNR <= 4);
  switch (nt) {
    case 4: if constexpr (kNR >= 4) TileF<kType, R, 4>(w, row_bytes, x, C, c0, c1, first, st); break;
    case 3: TileF<kType, R, 3>(w, row_bytes, x, C, c0, c1, first, st); break;
    case 2: TileF<kType, R, 2>(w, row_bytes, x, C, c0, c1, first, st); break;
    default: TileF<kType, R, 1>(w, row_bytes, x, C, c0, c1, first, st); break;
  }
}

template <DType kType>
void TileFAny(int r, int nt, const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1,
              bool first, __m256* st) {
  static_assert(kMR <= 4);
  switch (r) {
    case 4: if constexpr (kMR >= 4) TileFRows<kType, 4>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    case 3: TileFRows<kType, 3>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    case 2: TileFRows<kType, 2>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    default: TileFRows<kType, 1>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
  }
}

// Multi-token path over rows [n0, n1) and all T tokens.
template <DType kType>
void MatMulFloatBlocked(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t C = w.cols, N = w.rows, nc = C / 8, C8 = 8 * nc, n16 = PairedColumns(C);
  const auto* base = static_cast<const uint8_t*>(w.data);
  // The paired columns in n_k k-blocks of kc columns (the last one shorter).
  const int64_t n_k = std::max<int64_t>(1, (n16 + kKc - 1) / kKc);
  const int64_t kc = (n16 / 16 + n_k - 1) / n_k * 16;
  // Accumulators of the open kRb x kTb outputs, by (token tile, row tile):
  // [parity][r][t] in a slot.
  constexpr int kSlot = 2 * kMR * kNR;
  alignas(32) __m256 st[kTb / kNR][kRb / kMR][kSlot];
  const int64_t tile_calls = (T + kNR - 1) / kNR * 2 * n_k * (kRb / kMR);
  for (int64_t rb0 = n0; rb0 < n1; rb0 += kRb) {
    const int64_t rb1 = std::min(n1, rb0 + kRb);
    const uint8_t* wb = base + static_cast<size_t>(rb0) * w.row_bytes;
    // The next row block's weights are prefetched a few lines per tile call
    // while this block computes: its first token block would otherwise wait
    // on DRAM (4 row streams wanting ~30 GB/s, where one core gets ~15).
    const uint8_t* pf = base + static_cast<size_t>(rb1) * w.row_bytes;
    const uint8_t* pf_end = base + static_cast<size_t>(std::min(N, rb1 + kRb)) * w.row_bytes;
    const int64_t pf_step = ((pf_end - pf) / 64 + tile_calls - 1) / tile_calls * 64;
    for (int64_t tb0 = 0; tb0 < T; tb0 += kTb) {
      const int64_t tb1 = std::min(T, tb0 + kTb);
      for (int64_t kb = 0; kb < n_k; ++kb) {
        const int64_t k0 = kb * kc, k1 = std::min(n16, k0 + kc);
        for (int64_t t = tb0; t < tb1; t += kNR) {
          const int nt = static_cast<int>(std::min<int64_t>(kNR, tb1 - t));
          for (int64_t n = rb0; n < rb1; n += kMR) {
            const int r = static_cast<int>(std::min<int64_t>(kMR, rb1 - n));
            // Even chunks, then odd ones, back to back: the tile's weight
            // lines are still in L1 for the second sweep.
            for (int parity = 0; parity < 2; ++parity) {
              for (const uint8_t* e = std::min(pf + pf_step, pf_end); pf < e; pf += 64) {
                _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T0);
              }
              TileFAny<kType>(r, nt, wb + static_cast<size_t>(n - rb0) * w.row_bytes, w.row_bytes, x + t * C, C,
                              k0 + 8 * parity, k1, kb == 0, st[(t - tb0) / kNR][(n - rb0) / kMR] + parity * r * nt);
            }
          }
        }
      }
      for (int64_t t = tb0; t < tb1; t += kNR) {
        const int nt = static_cast<int>(std::min<int64_t>(kNR, tb1 - t));
        for (int64_t n = rb0; n < rb1; n += kMR) {
          const int r = static_cast<int>(std::min<int64_t>(kMR, rb1 - n));
          const __m256* s = st[(t - tb0) / kNR][(n - rb0) / kMR];
          for (int j = 0; j < nt; ++j) {
            __m256 acc0[kMR], acc1[kMR];
            for (int i = 0; i < r; ++i) {
              acc0[i] = AddOddChunk<kType>(s[i * nt + j], base + static_cast<size_t>(n + i) * w.row_bytes,
                                           x + (t + j) * C, C);
              acc1[i] = s[(r + i) * nt + j];
            }
            FinishRows<kType>(acc0, acc1, r, base + static_cast<size_t>(n) * w.row_bytes, w.row_bytes, x + (t + j) * C,
                              C8, C, y + (t + j) * N + n);
          }
        }
      }
    }
  }
}

template <DType kType>
void MatMulFloatTyped(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  if (T > 1) {
    MatMulFloatBlocked<kType>(w, x, T, y, n0, n1);
    return;
  }
  DecodeRows(w, n0, n1, y, [&](auto rows, const uint8_t* row, int64_t ahead, float* yo) {
    DotRowsF<kType, decltype(rows)::value>(row, w.row_bytes, x, w.cols, ahead, yo);
  });
}

// Packs 4 x 8 int32 (already in [-127, 127]) into 32 int8 in order.
inline __m256i PackI32ToI8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline __m256 AbsPs(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// Quantizes 32 floats with scale id (= 1/d); returns the int8 vector and
// adds the sum of the quants to *sum.
inline __m256i Quantize32(const float* x, __m256 id, __m256i* sum) {
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id));
    *sum = _mm256_add_epi32(*sum, q[k]);
  }
  return PackI32ToI8(q[0], q[1], q[2], q[3]);
}

inline __m256 AbsMax32(const float* x) {
  __m256 m = AbsPs(_mm256_loadu_ps(x));
  for (int k = 1; k < 4; ++k) m = _mm256_max_ps(m, AbsPs(_mm256_loadu_ps(x + 8 * k)));
  return m;
}

}  // namespace

ActFormat ActFormatOf(DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
      return ActFormat::kF32;
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
      return ActFormat::kQ8;
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return ActFormat::kQ8K;
    default:
      return ActFormat::kUnsupported;
  }
}

void MatMulFloatRows(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  switch (w.type) {
    case DType::kF32: MatMulFloatTyped<DType::kF32>(w, x, T, y, n0, n1); break;
    case DType::kF16: MatMulFloatTyped<DType::kF16>(w, x, T, y, n0, n1); break;
    default: MatMulFloatTyped<DType::kBF16>(w, x, T, y, n0, n1); break;
  }
}

void QuantizeActQ8(const float* x, int64_t C, int64_t t0, int64_t t1, ActQ8* out) {
  const int64_t nb = C / kQK;
  for (int64_t t = t0; t < t1; ++t) {
    for (int64_t ib = 0; ib < nb; ++ib) {
      const float* xb = x + t * C + ib * kQK;
      ActQ8& b = out[t * nb + ib];
      const float amax = HMax(AbsMax32(xb));
      const float d = amax / 127.0f;
      const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
      __m256i sum = _mm256_setzero_si256();
      const __m256i q = Quantize32(xb, _mm256_set1_ps(id), &sum);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs), q);
      b.d = d;
      b.qsum = HSumI32(sum);
      b.s = d * static_cast<float>(b.qsum);
    }
  }
}

void QuantizeActQ8K(const float* x, int64_t C, int64_t t0, int64_t t1, BlockQ8_K* out) {
  const int64_t nb = C / kQK_K;
  for (int64_t t = t0; t < t1; ++t) {
    for (int64_t ib = 0; ib < nb; ++ib) {
      const float* xb = x + t * C + ib * kQK_K;
      BlockQ8_K& b = out[t * nb + ib];
      __m256 m = _mm256_setzero_ps();
      for (int k = 0; k < kQK_K; k += 32) m = _mm256_max_ps(m, AbsMax32(xb + k));
      const float amax = HMax(m);
      const __m256 id = _mm256_set1_ps(amax > 0.0f ? 127.0f / amax : 0.0f);
      b.d = amax / 127.0f;
      for (int k = 0; k < kQK_K; k += 32) {
        __m256i sum = _mm256_setzero_si256();
        const __m256i q = Quantize32(xb + k, id, &sum);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs + k), q);
      }
      for (int g = 0; g < kQK_K / 16; ++g) {
        int s = 0;
        for (int l = 0; l < 16; ++l) s += b.qs[16 * g + l];
        b.bsums[g] = static_cast<int16_t>(s);
      }
    }
  }
}

}  // namespace formiga::cpu
