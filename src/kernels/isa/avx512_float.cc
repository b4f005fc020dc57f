// MatMul kernels for float weights (F32, F16, BF16) for the avx512-vnni
// tier: the same outputs as cpu_matmul_float.cc, bit for bit, at twice the
// width. Compiled with -mavx512f -mavx512bw -mavx512vl on top of the AVX2
// flags (src/kernels/CMakeLists.txt); run only where DetectCpuIsa says the
// CPU and OS have AVX-512. isa/emulated_float.cc compiles it again for
// cpu_isa_test with SIMDe emulating the 512-bit instructions.
//
// How the bits stay the AVX2 kernels' (cpu_float_dot.h): every output's two
// 8-lane accumulators (acc0 over the row's even 8-column chunks, acc1 over
// the odd ones) are the low and high halves of one zmm; a step loads a
// chunk pair, 16 adjacent columns (the weights, one conversion, and the
// activations alike), and does one 512-bit FMA, which is the two 256-bit
// FMAs of the AVX2 step, lane for lane. When nc is odd the last chunk goes
// last into the low half alone (a 256-bit FMA), as in the AVX2 order. The
// ends (HSum of acc0 + acc1, the C % 8 scalar tail) are FinishDot / HSum4
// themselves.
//
// Shapes: W is (N, C), x is (T, C), y is (T, N).
#include <algorithm>

#include "kernels/cpu_float_dot.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"

#ifndef FORMIGA_FLOAT512_NS
#define FORMIGA_FLOAT512_NS avx512
#endif

namespace formiga::cpu::FORMIGA_FLOAT512_NS {
namespace {

// [a | b]: two 8-lane vectors as one 16-lane vector.
FORMIGA_ALWAYS_INLINE __m512 Join(__m256 a, __m256 b) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(a)), _mm256_castps_pd(b), 1));
}
FORMIGA_ALWAYS_INLINE __m256 Low(__m512 v) { return _mm512_castps512_ps256(v); }
FORMIGA_ALWAYS_INLINE __m256 High(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

// Weights of row `w` at columns c..c+15 (a chunk pair), as f32.
template <DType kType>
FORMIGA_ALWAYS_INLINE __m512 LoadW2(const void* w, int64_t c) {
  if constexpr (kType == DType::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(w) + c);
  } else {
    const uint16_t* p = static_cast<const uint16_t*>(w) + c;
#if FORMIGA_FLOAT512_EMULATED
    // SIMDe 0.7 has no 512-bit vcvtph2ps / vpmovzxwd: the two 256-bit
    // conversions give the same (exact) values.
    return Join(LoadW<kType>(p, 0), LoadW<kType>(p, 8));
#else
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    if constexpr (kType == DType::kF16) {
      return _mm512_cvtph_ps(h);
    } else {
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
#endif
  }
}

// One-token path (decode): y = dot(w, x) for R adjacent rows (stride
// row_bytes), both accumulators of each row in one zmm: R FMA chains.
// Prefetch as cpu_matmul_float.cc's DotRowsF: for 16-bit types the bytes
// from `ahead` on as one sequential stream, as many lines per step as the
// step consumes.
template <DType kType, int R>
void DotRows2(const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t ahead, float* y) {
  constexpr int64_t kElem = kType == DType::kF32 ? 4 : 2;
  constexpr int64_t kStep = 64 / kElem;  // columns per cache line: whole chunk pairs
  const int64_t nc = C / 8, n16 = PairedColumns(C);
  const char* pf = reinterpret_cast<const char*>(w) + ahead;
  __m512 acc[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  int64_t c = 0;
  for (; c + kStep <= n16; c += kStep) {
    if constexpr (kElem == 2) {
#pragma GCC unroll 8
      for (int j = 0; j < R; ++j) _mm_prefetch(pf + R * c * kElem + 64 * j, _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int64_t u = 0; u < kStep; u += 16) {
      const __m512 xv = _mm512_loadu_ps(x + c + u);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(LoadW2<kType>(w + r * row_bytes, c + u), xv, acc[r]);
    }
  }
  for (; c < n16; c += 16) {
    const __m512 xv = _mm512_loadu_ps(x + c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(LoadW2<kType>(w + r * row_bytes, c), xv, acc[r]);
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m256 acc0 = AddOddChunk<kType>(Low(acc[r]), w + r * row_bytes, x, C);
    y[r] = FinishDot<kType>(acc0, High(acc[r]), w + r * row_bytes, x, 8 * nc, C);
  }
}

// Multi-token path: register tile of kMR rows x kNR tokens: 24 accumulators
// + 4 weight vectors + 1 activation vector of the 32 zmm registers. Per
// step 4 weight loads-and-conversions and 6 activation loads per 24 FMAs.
// Measured (1.1B F16 pp512, Zen 5, 2 threads, halves order): 4 x 6 178 t/s;
// 3 x 8 95; 2 x 12 49-76 (GCC no longer keeps the tile in registers);
// k-blocks spanning 512 / 1024 / 2048 columns: 169 / 178 / 176. Converting
// each k-block's weights to f32 once per token block (a 192 KB panel read
// by the tiles from L2) was slower: 150-156 against 175-185 (session 10).
constexpr int kMR = 4;
constexpr int kNR = 6;
// Cache blocks as cpu_matmul_float.cc's: kRb rows x kTb tokens of outputs
// open at a time (their accumulators in a 72 KB stack scratch between
// k-blocks); a k-block spans kKc paired columns, so a token tile's
// activations (kNR x kKc f32, 24 KB) stay in L1 and the block's weights
// (kRb x kKc, 96 KB as f16) in L2.
constexpr int64_t kRb = 48;
constexpr int64_t kTb = 24;
constexpr int64_t kKc = 1024;
static_assert(kRb % kMR == 0 && kTb % kNR == 0 && kKc % 8 == 0);

// R rows (w, stride row_bytes) x NT tokens (x, stride C) over the chunk
// pairs at columns [c0, c1). st holds the tile's accumulators, [r][t];
// `first` starts them at zero.
template <DType kType, int R, int NT>
void Tile2(const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1, bool first,
           __m512* st) {
  __m512 acc[R][NT];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) acc[r][t] = first ? _mm512_setzero_ps() : st[r * NT + t];
  }
  for (int64_t c = c0; c < c1; c += 16) {
    __m512 wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = LoadW2<kType>(w + r * row_bytes, c);
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) {
      const __m512 xv = _mm512_loadu_ps(x + t * C + c);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int t = 0; t < NT; ++t) st[r * NT + t] = acc[r][t];
  }
}

template <DType kType, int R>
void Tile2Rows(int nt, const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1,
               bool first, __m512* st) {
  static_assert(kNR == 6);
  switch (nt) {
    case 6: Tile2<kType, R, 6>(w, row_bytes, x, C, c0, c1, first, st); break;
    case 5: Tile2<kType, R, 5>(w, row_bytes, x, C, c0, c1, first, st); break;
    case 4: Tile2<kType, R, 4>(w, row_bytes, x, C, c0, c1, first, st); break;
    case 3: Tile2<kType, R, 3>(w, row_bytes, x, C, c0, c1, first, st); break;
    case 2: Tile2<kType, R, 2>(w, row_bytes, x, C, c0, c1, first, st); break;
    default: Tile2<kType, R, 1>(w, row_bytes, x, C, c0, c1, first, st); break;
  }
}

template <DType kType>
void Tile2Any(int r, int nt, const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1,
              bool first, __m512* st) {
  static_assert(kMR == 4);
  switch (r) {
    case 4: Tile2Rows<kType, 4>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    case 3: Tile2Rows<kType, 3>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    case 2: Tile2Rows<kType, 2>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    default: Tile2Rows<kType, 1>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
  }
}

// Multi-token path over rows [n0, n1) and all T tokens.
template <DType kType>
void MatMulBlocked2(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t C = w.cols, N = w.rows, nc = C / 8, C8 = 8 * nc, n16 = PairedColumns(C);
  const auto* base = static_cast<const uint8_t*>(w.data);
  const int64_t n_k = std::max<int64_t>(1, (n16 + kKc - 1) / kKc);
  const int64_t kc = (n16 / 16 + n_k - 1) / n_k * 16;
  alignas(64) __m512 st[kTb / kNR][kRb / kMR][kMR * kNR];
  const int64_t tile_calls = (T + kNR - 1) / kNR * n_k * (kRb / kMR);
  for (int64_t rb0 = n0; rb0 < n1; rb0 += kRb) {
    const int64_t rb1 = std::min(n1, rb0 + kRb);
    const uint8_t* wb = base + static_cast<size_t>(rb0) * w.row_bytes;
    // The next row block's weights, a few lines per tile call (as cpu_matmul_float.cc).
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
            for (const uint8_t* e = std::min(pf + pf_step, pf_end); pf < e; pf += 64) {
              _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T0);
            }
            Tile2Any<kType>(r, nt, wb + static_cast<size_t>(n - rb0) * w.row_bytes, w.row_bytes, x + t * C, C, k0, k1,
                            kb == 0, st[(t - tb0) / kNR][(n - rb0) / kMR]);
          }
        }
      }
      for (int64_t t = tb0; t < tb1; t += kNR) {
        const int nt = static_cast<int>(std::min<int64_t>(kNR, tb1 - t));
        for (int64_t n = rb0; n < rb1; n += kMR) {
          const int r = static_cast<int>(std::min<int64_t>(kMR, rb1 - n));
          const __m512* s = st[(t - tb0) / kNR][(n - rb0) / kMR];
          for (int j = 0; j < nt; ++j) {
            const float* xt = x + (t + j) * C;
            __m256 acc0[kMR], acc1[kMR];
            for (int i = 0; i < r; ++i) {
              acc0[i] = AddOddChunk<kType>(Low(s[i * nt + j]), base + static_cast<size_t>(n + i) * w.row_bytes, xt, C);
              acc1[i] = High(s[i * nt + j]);
            }
            FinishRows<kType>(acc0, acc1, r, base + static_cast<size_t>(n) * w.row_bytes, w.row_bytes, xt, C8, C,
                              y + (t + j) * N + n);
          }
        }
      }
    }
  }
}

template <DType kType>
void MatMulTyped(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  if (T > 1) {
    MatMulBlocked2<kType>(w, x, T, y, n0, n1);
    return;
  }
  DecodeRows(w, n0, n1, y, [&](auto rows, const uint8_t* row, int64_t ahead, float* yo) {
    DotRows2<kType, decltype(rows)::value>(row, w.row_bytes, x, w.cols, ahead, yo);
  });
}

}  // namespace

void MatMulFloatRows(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  switch (w.type) {
    case DType::kF32: MatMulTyped<DType::kF32>(w, x, T, y, n0, n1); break;
    case DType::kF16: MatMulTyped<DType::kF16>(w, x, T, y, n0, n1); break;
    default: MatMulTyped<DType::kBF16>(w, x, T, y, n0, n1); break;
  }
}

}  // namespace formiga::cpu::FORMIGA_FLOAT512_NS
