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

// Tokens per weight-row load: each weight vector is loaded once and used
// for kTile tokens (what makes prefill faster than T separate matvecs).
constexpr int kTile = 4;
// Rows processed per token tile before moving to the next tile: small enough
// that the rows stay in L1/L2 while every token tile streams over them.
constexpr int64_t kRowBlock = 16;

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

// y[t * ldy] = dot(w, x_t) for NT tokens x_t = x + t * C. Per token: two
// accumulators over alternating 8-column chunks, then the scalar tail; the
// order does not depend on NT, so a token's result is the same in any tile.
template <DType kType, int NT>
void DotRowF(const void* w, const float* x, int64_t C, float* y, int64_t ldy) {
  __m256 acc0[NT], acc1[NT];
  for (int t = 0; t < NT; ++t) acc0[t] = acc1[t] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    const __m256 w0 = LoadW<kType>(w, c);
    const __m256 w1 = LoadW<kType>(w, c + 8);
    for (int t = 0; t < NT; ++t) {
      acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * C + c), acc0[t]);
      acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * C + c + 8), acc1[t]);
    }
  }
  if (c + 8 <= C) {
    const __m256 w0 = LoadW<kType>(w, c);
    for (int t = 0; t < NT; ++t) acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * C + c), acc0[t]);
    c += 8;
  }
  for (int t = 0; t < NT; ++t) {
    float s = HSum(_mm256_add_ps(acc0[t], acc1[t]));
    for (int64_t cc = c; cc < C; ++cc) s += ScalarW<kType>(w, cc) * x[t * C + cc];
    y[t * ldy] = s;
  }
}

template <DType kType>
void MatMulFloatTyped(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1) {
  const int64_t C = w.cols, N = w.rows;
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r0 = n0; r0 < n1; r0 += kRowBlock) {
    const int64_t r1 = std::min(n1, r0 + kRowBlock);
    for (int64_t t = 0; t < T; t += kTile) {
      const int64_t nt = std::min<int64_t>(kTile, T - t);
      for (int64_t n = r0; n < r1; ++n) {
        const void* row = base + static_cast<size_t>(n) * w.row_bytes;
        float* yo = y + t * N + n;
        const float* xt = x + t * C;
        switch (nt) {
          case 4: DotRowF<kType, 4>(row, xt, C, yo, N); break;
          case 3: DotRowF<kType, 3>(row, xt, C, yo, N); break;
          case 2: DotRowF<kType, 2>(row, xt, C, yo, N); break;
          default: DotRowF<kType, 1>(row, xt, C, yo, N); break;
        }
      }
    }
  }
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
      b.s = d * static_cast<float>(HSumI32(sum));
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
