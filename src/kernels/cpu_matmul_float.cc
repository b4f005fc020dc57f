// MatMul kernels for float weights (F32, F16, BF16) and the activation
// quantizers used by the quantized MatMul kernels (cpu_matmul_q8.cc,
// cpu_matmul_k.cc). Compiled with -mavx2 -mfma -mf16c.
//
// Shapes: W is (N, C), x is (T, C), y is (T, N).
#include <algorithm>
#include <cmath>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"

namespace formiga::cpu {
namespace {

// The one-token path (decode): DotRowF<kType, 1> one row at a time.
// The multi-token path (prefill): MatMulFloatBlocked, a cache-blocked GEMM.
//
// Both compute every output y = dot(w, x) in exactly the same floating-point
// operations and order (so a token's result does not depend on the batch,
// its tile or the thread count): the 8-column chunks j = 0, 1, ... of the
// row are FMA'd into two 8-lane accumulators, acc0 the even chunks and acc1
// the odd ones, each in increasing j; then HSum(acc0 + acc1), then the
// C % 8 tail columns by scalar FMAs (FinishDot).

// Multi-token path: register tile of kMR rows x kNR tokens (12 accumulators
// + 3 activation vectors + 1 weight vector = the 16 ymm registers). An
// output's two accumulators are independent FMA chains, so the tile runs the
// even chunks of a k-block with one set of 12 accumulators, then the odd
// chunks: per 8 columns, 4 weight loads (converted) + 3 activation loads per
// 12 FMAs.
constexpr int kMR = 4;
constexpr int kNR = 3;
// Cache blocks: kRb rows x kTb tokens of outputs are open at a time (their
// accumulators kept in a stack scratch between k-blocks, 2 x 8 floats per
// output); the columns are swept in k-blocks of kKc so that a token tile's
// activations (kNR x kKc f32) stay in L1 while every row tile of the block
// runs over them, and the block's weights (kRb x kKc) stay in L1/L2 while
// every token tile does. kKc is a multiple of 16 (chunk parity is global).
constexpr int64_t kRb = 32;
constexpr int64_t kTb = 24;
constexpr int64_t kKc = 512;
static_assert(kRb % kMR == 0 && kTb % kNR == 0 && kKc % 16 == 0);

// 8 weights of row `w` at column c, as f32.
template <DType kType>
inline __m256 LoadW(const void* w, int64_t c) {
  if constexpr (kType == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(w) + c);
  } else if constexpr (kType == DType::kF16) {
    return LoadF16(static_cast<const uint16_t*>(w) + c);
  } else {
    return LoadBF16(static_cast<const uint16_t*>(w) + c);
  }
}

template <DType kType>
inline float ScalarW(const void* w, int64_t c) {
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

// The end of every output's dot product, shared by both paths: the two
// accumulators' lanes, then columns [c8, C) (C % 8 of them) by explicit
// scalar FMAs (not left to the compiler's contraction choice).
template <DType kType>
inline float FinishDot(__m256 acc0, __m256 acc1, const void* w, const float* x, int64_t c8, int64_t C) {
  float s = HSum(_mm256_add_ps(acc0, acc1));
  for (int64_t c = c8; c < C; ++c) s = __builtin_fmaf(ScalarW<kType>(w, c), x[c], s);
  return s;
}

// One-token path: y = dot(w, x).
template <DType kType>
float DotRowF(const void* w, const float* x, int64_t C) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    acc0 = _mm256_fmadd_ps(LoadW<kType>(w, c), _mm256_loadu_ps(x + c), acc0);
    acc1 = _mm256_fmadd_ps(LoadW<kType>(w, c + 8), _mm256_loadu_ps(x + c + 8), acc1);
  }
  if (c + 8 <= C) {
    acc0 = _mm256_fmadd_ps(LoadW<kType>(w, c), _mm256_loadu_ps(x + c), acc0);
    c += 8;
  }
  return FinishDot<kType>(acc0, acc1, w, x, c, C);
}

// Register tile: R rows (w, stride row_bytes) x NT tokens (x, stride C) over
// the chunks of columns [c0, c1) (c0 a multiple of 16, c1 of 8). st holds the
// tile's accumulators, [parity][r][t]; `first` starts them at zero.
template <DType kType, int R, int NT>
void TileF(const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1, bool first,
           __m256* st) {
  // NOTE: the pragmas are needed: at -O2 GCC keeps the r/t loops (and with
  // them the accumulators in memory), which ran at a quarter of the speed.
  for (int p = 0; p < 2; ++p) {
    __m256 acc[R][NT];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) acc[r][t] = first ? _mm256_setzero_ps() : st[(p * R + r) * NT + t];
    }
    for (int64_t c = c0 + 8 * p; c + 8 <= c1; c += 16) {
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
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
      for (int t = 0; t < NT; ++t) st[(p * R + r) * NT + t] = acc[r][t];
    }
  }
}

template <DType kType, int R>
void TileFRows(int nt, const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1,
               bool first, __m256* st) {
  static_assert(kNR == 3);
  switch (nt) {
    case 3: TileF<kType, R, 3>(w, row_bytes, x, C, c0, c1, first, st); break;
    case 2: TileF<kType, R, 2>(w, row_bytes, x, C, c0, c1, first, st); break;
    default: TileF<kType, R, 1>(w, row_bytes, x, C, c0, c1, first, st); break;
  }
}

template <DType kType>
void TileFAny(int r, int nt, const uint8_t* w, size_t row_bytes, const float* x, int64_t C, int64_t c0, int64_t c1,
              bool first, __m256* st) {
  static_assert(kMR == 4);
  switch (r) {
    case 4: TileFRows<kType, 4>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    case 3: TileFRows<kType, 3>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    case 2: TileFRows<kType, 2>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
    default: TileFRows<kType, 1>(nt, w, row_bytes, x, C, c0, c1, first, st); break;
  }
}

// Multi-token path over rows [n0, n1) and all T tokens.
template <DType kType>
void MatMulFloatBlocked(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t C = w.cols, N = w.rows, C8 = C / 8 * 8;
  const auto* base = static_cast<const uint8_t*>(w.data);
  // Accumulators of the open kRb x kTb outputs, by (token tile, row tile).
  constexpr int kSlot = 2 * kMR * kNR;
  alignas(32) __m256 st[kTb / kNR][kRb / kMR][kSlot];
  for (int64_t rb0 = n0; rb0 < n1; rb0 += kRb) {
    const int64_t rb1 = std::min(n1, rb0 + kRb);
    const uint8_t* wb = base + static_cast<size_t>(rb0) * w.row_bytes;
    for (int64_t tb0 = 0; tb0 < T; tb0 += kTb) {
      const int64_t tb1 = std::min(T, tb0 + kTb);
      for (int64_t k0 = 0;; k0 += kKc) {
        const int64_t k1 = std::min(C8, k0 + kKc);
        for (int64_t t = tb0; t < tb1; t += kNR) {
          const int nt = static_cast<int>(std::min<int64_t>(kNR, tb1 - t));
          for (int64_t n = rb0; n < rb1; n += kMR) {
            const int r = static_cast<int>(std::min<int64_t>(kMR, rb1 - n));
            TileFAny<kType>(r, nt, wb + static_cast<size_t>(n - rb0) * w.row_bytes, w.row_bytes, x + t * C, C, k0,
                            k1, k0 == 0, st[(t - tb0) / kNR][(n - rb0) / kMR]);
          }
        }
        if (k1 >= C8) break;
      }
      for (int64_t t = tb0; t < tb1; t += kNR) {
        const int nt = static_cast<int>(std::min<int64_t>(kNR, tb1 - t));
        for (int64_t n = rb0; n < rb1; n += kMR) {
          const int r = static_cast<int>(std::min<int64_t>(kMR, rb1 - n));
          const __m256* s = st[(t - tb0) / kNR][(n - rb0) / kMR];
          for (int i = 0; i < r; ++i) {
            const void* row = base + static_cast<size_t>(n + i) * w.row_bytes;
            for (int j = 0; j < nt; ++j) {
              y[(t + j) * N + n + i] =
                  FinishDot<kType>(s[i * nt + j], s[(r + i) * nt + j], row, x + (t + j) * C, C8, C);
            }
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
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t n = n0; n < n1; ++n) y[n] = DotRowF<kType>(base + static_cast<size_t>(n) * w.row_bytes, x, w.cols);
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
