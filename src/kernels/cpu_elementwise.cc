// Row-wise and elementwise cpu kernels: norms, RoPE, activations, residual
// adds, scaling, soft-capping. Compiled with -mavx2 -mfma -mf16c.
//
// NOTE: a tail shorter than 8 goes through the same vector code (padded in a
// small buffer) rather than a scalar twin, so an element's result never
// depends on where a task boundary or the array's end falls.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"

namespace formiga::cpu {
namespace {

// Applies f (8 lanes -> 8 lanes) to a[i0, i1) (and b when given), writing y.
template <class F>
inline void Map(const float* a, const float* b, float* y, int64_t i0, int64_t i1, F f) {
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    const __m256 va = _mm256_loadu_ps(a + i);
    const __m256 vb = b != nullptr ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps();
    _mm256_storeu_ps(y + i, f(va, vb));
  }
  if (i < i1) {
    const int64_t n = i1 - i;
    float ta[8] = {0}, tb[8] = {0}, ty[8];
    std::memcpy(ta, a + i, static_cast<size_t>(n) * 4);
    if (b != nullptr) std::memcpy(tb, b + i, static_cast<size_t>(n) * 4);
    _mm256_storeu_ps(ty, f(_mm256_loadu_ps(ta), _mm256_loadu_ps(tb)));
    std::memcpy(y + i, ty, static_cast<size_t>(n) * 4);
  }
}

inline __m256 Silu(__m256 g) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(g, _mm256_add_ps(one, Exp(_mm256_sub_ps(_mm256_setzero_ps(), g))));
}

inline __m256 GeluTanh(__m256 x) {
  const __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.79788456080286535588f),
                                 _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x3, x));
  const __m256 half_x = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
  return _mm256_fmadd_ps(half_x, Tanh(u), half_x);
}

// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7).
inline __m256 Erf(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), ax,
                                                                       _mm256_set1_ps(1.0f)));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 e = Exp(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(ax, ax)));
  const __m256 r = _mm256_fnmadd_ps(p, e, _mm256_set1_ps(1.0f));
  return _mm256_or_ps(r, sign);
}

inline __m256 GeluErf(__m256 x) {
  const __m256 half_x = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
  return _mm256_fmadd_ps(half_x, Erf(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f))), half_x);
}

// Σ x² (or Σ (x - mean)² when centered) of one row, in a fixed order.
inline float SumSquares(const float* x, int64_t C, float mean) {
  const __m256 vm = _mm256_set1_ps(mean);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    const __m256 a = _mm256_sub_ps(_mm256_loadu_ps(x + c), vm);
    const __m256 b = _mm256_sub_ps(_mm256_loadu_ps(x + c + 8), vm);
    acc0 = _mm256_fmadd_ps(a, a, acc0);
    acc1 = _mm256_fmadd_ps(b, b, acc1);
  }
  float s = HSum(_mm256_add_ps(acc0, acc1));
  for (; c < C; ++c) s += (x[c] - mean) * (x[c] - mean);
  return s;
}

inline float Sum(const float* x, int64_t C) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 16 <= C; c += 16) {
    acc0 = _mm256_add_ps(acc0, _mm256_loadu_ps(x + c));
    acc1 = _mm256_add_ps(acc1, _mm256_loadu_ps(x + c + 8));
  }
  float s = HSum(_mm256_add_ps(acc0, acc1));
  for (; c < C; ++c) s += x[c];
  return s;
}

}  // namespace

void RmsNormRows(const float* x, const float* weight, float* y, int64_t t0, int64_t t1, int64_t C, float eps) {
  for (int64_t t = t0; t < t1; ++t) {
    const float* xt = x + t * C;
    float* yt = y + t * C;
    const float inv = 1.0f / std::sqrt(SumSquares(xt, C, 0.0f) / static_cast<float>(C) + eps);
    const __m256 vinv = _mm256_set1_ps(inv);
    if (weight != nullptr) {
      Map(xt, weight, yt, 0, C, [&](__m256 a, __m256 w) { return _mm256_mul_ps(_mm256_mul_ps(a, vinv), w); });
    } else {
      Map(xt, nullptr, yt, 0, C, [&](__m256 a, __m256) { return _mm256_mul_ps(a, vinv); });
    }
  }
}

void LayerNormRows(const float* x, const float* weight, const float* bias, float* y, int64_t t0, int64_t t1,
                   int64_t C, float eps) {
  for (int64_t t = t0; t < t1; ++t) {
    const float* xt = x + t * C;
    float* yt = y + t * C;
    const float mean = Sum(xt, C) / static_cast<float>(C);
    const float inv = 1.0f / std::sqrt(SumSquares(xt, C, mean) / static_cast<float>(C) + eps);
    const __m256 vm = _mm256_set1_ps(mean), vinv = _mm256_set1_ps(inv);
    Map(xt, nullptr, yt, 0, C, [&](__m256 a, __m256) { return _mm256_mul_ps(_mm256_sub_ps(a, vm), vinv); });
    if (weight != nullptr) Map(yt, weight, yt, 0, C, [](__m256 a, __m256 w) { return _mm256_mul_ps(a, w); });
    if (bias != nullptr) Map(yt, bias, yt, 0, C, [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); });
  }
}

void RopeRows(float* x, const int32_t* positions, int64_t t0, int64_t t1, int64_t n_heads, int64_t D,
              RopeStyle style, int64_t n_rot, const double* inv_freq) {
  const int64_t half = n_rot / 2;
  for (int64_t t = t0; t < t1; ++t) {
    float* xt = x + t * n_heads * D;
    for (int64_t i = 0; i < half; ++i) {
      // NOTE: the angle in double, like the ref: position * frequency loses
      // digits in f32 at long contexts.
      const double angle = static_cast<double>(positions[t]) * inv_freq[i];
      const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
      const int64_t a = style == RopeStyle::kNormal ? 2 * i : i;
      const int64_t b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      for (int64_t h = 0; h < n_heads; ++h) {
        float* v = xt + h * D;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
      }
    }
  }
}

void SiluMulRange(const float* gate, const float* up, float* y, int64_t i0, int64_t i1) {
  Map(gate, up, y, i0, i1, [](__m256 g, __m256 u) { return _mm256_mul_ps(Silu(g), u); });
}

void GeluMulRange(const float* gate, const float* up, float* y, int64_t i0, int64_t i1) {
  Map(gate, up, y, i0, i1, [](__m256 g, __m256 u) { return _mm256_mul_ps(GeluTanh(g), u); });
}

void GeluRange(const float* x, float* y, int64_t i0, int64_t i1, bool tanh_approx) {
  if (tanh_approx) {
    Map(x, nullptr, y, i0, i1, [](__m256 a, __m256) { return GeluTanh(a); });
  } else {
    Map(x, nullptr, y, i0, i1, [](__m256 a, __m256) { return GeluErf(a); });
  }
}

void AddRange(const float* a, const float* b, float* y, int64_t i0, int64_t i1) {
  Map(a, b, y, i0, i1, [](__m256 va, __m256 vb) { return _mm256_add_ps(va, vb); });
}

void AddBiasRows(const float* x, const float* bias, float* y, int64_t t0, int64_t t1, int64_t C) {
  for (int64_t t = t0; t < t1; ++t) {
    Map(x + t * C, bias, y + t * C, 0, C, [](__m256 a, __m256 b) { return _mm256_add_ps(a, b); });
  }
}

void ScaleRange(float* x, float s, int64_t i0, int64_t i1) {
  const __m256 vs = _mm256_set1_ps(s);
  Map(x, nullptr, x, i0, i1, [&](__m256 a, __m256) { return _mm256_mul_ps(a, vs); });
}

void SoftCapRange(const float* x, float* y, int64_t i0, int64_t i1, float cap) {
  const __m256 vc = _mm256_set1_ps(cap), vinv = _mm256_set1_ps(1.0f / cap);
  Map(x, nullptr, y, i0, i1, [&](__m256 a, __m256) { return _mm256_mul_ps(vc, Tanh(_mm256_mul_ps(a, vinv))); });
}

}  // namespace formiga::cpu
