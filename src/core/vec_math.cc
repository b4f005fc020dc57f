#include "core/vec_math.h"

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace formiga {
namespace {

// exp(d) for d below this is under 1.7e-38: counted as 0 (both bodies), which
// also keeps 2^n a normal float in the vector body.
constexpr float kExpFloor = -87.0f;

using Candidate = std::pair<float, int32_t>;

// a ranks before b: larger value, then smaller index.
bool Better(const Candidate& a, const Candidate& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

// The top-k heap (front: the worst kept). Values arrive in index order, so
// a value equal to the worst kept ranks after it: only strictly larger
// values enter once the heap is full.
struct TopKHeap {
  std::vector<Candidate>* heap;
  size_t k;
  float threshold = -std::numeric_limits<float>::infinity();  // enter only above this

  void Offer(float v, int64_t i) {
    if (!(v > threshold)) return;  // also NaN, and -inf while not full
    if (heap->size() < k) {
      heap->emplace_back(v, static_cast<int32_t>(i));
      std::push_heap(heap->begin(), heap->end(), Better);
      if (heap->size() == k) threshold = heap->front().first;
      return;
    }
    std::pop_heap(heap->begin(), heap->end(), Better);
    heap->back() = Candidate(v, static_cast<int32_t>(i));
    std::push_heap(heap->begin(), heap->end(), Better);
    threshold = heap->front().first;
  }
  void Finish() { std::sort_heap(heap->begin(), heap->end(), Better); }
};

#if defined(__x86_64__)
bool HaveAvx2Fma() {
  static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return have;
}

__attribute__((target("avx2,fma"))) int64_t ArgMaxAvx2(const float* x, int64_t n) {
  // Lane l tracks the first maximum among x[l], x[l + 8], ...: strict > keeps
  // the first, and NaN compares false.
  __m256 best = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256i best_i = _mm256_setzero_si256();
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i step = _mm256_set1_epi32(8);
  int64_t i = 0;
  // NOTE: int32 lane indices: rows longer than 2^31 go to the scalar loop.
  const int64_t vec_end = n < (int64_t{1} << 31) ? n - n % 8 : 0;
  for (; i < vec_end; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 gt = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
    best = _mm256_blendv_ps(best, v, gt);
    best_i = _mm256_blendv_epi8(best_i, idx, _mm256_castps_si256(gt));
    idx = _mm256_add_epi32(idx, step);
  }
  alignas(32) float lane_v[8];
  alignas(32) int32_t lane_i[8];
  _mm256_store_ps(lane_v, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lane_i), best_i);
  float bv = -std::numeric_limits<float>::infinity();
  int64_t bi = 0;
  for (int l = 0; l < 8; ++l) {
    // The largest value; among lanes holding it, the smallest index.
    if (lane_v[l] > bv || (lane_v[l] == bv && lane_v[l] != -std::numeric_limits<float>::infinity() && lane_i[l] < bi)) {
      bv = lane_v[l];
      bi = lane_i[l];
    }
  }
  for (; i < n; ++i) {
    if (x[i] > bv) {
      bv = x[i];
      bi = i;
    }
  }
  return bi;
}

__attribute__((target("avx2,fma"))) double SumExpShiftedAvx2(const float* x, int64_t n, float shift) {
  // exp(d) = 2^k · exp(r), k = round(d · log2 e), r = d - k ln 2 (ln 2 split
  // in two for an exact first product), exp(r) on |r| <= ln2 / 2 by the
  // degree-7 polynomial 1 + r + r² p(r) (Cephes' expf coefficients).
  const __m256 vshift = _mm256_set1_ps(shift);
  const __m256 floor = _mm256_set1_ps(kExpFloor), ceil = _mm256_set1_ps(88.0f);
  const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
  const __m256 p0 = _mm256_set1_ps(1.9875691500e-4f), p1 = _mm256_set1_ps(1.3981999507e-3f);
  const __m256 p2 = _mm256_set1_ps(8.3334519073e-3f), p3 = _mm256_set1_ps(4.1665795894e-2f);
  const __m256 p4 = _mm256_set1_ps(1.6666665459e-1f), p5 = _mm256_set1_ps(5.0000001201e-1f);
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vshift);
    const __m256 keep = _mm256_cmp_ps(d, floor, _CMP_GE_OQ);  // false for NaN and tiny terms
    d = _mm256_min_ps(_mm256_max_ps(d, floor), ceil);
    const __m256 k = _mm256_round_ps(_mm256_mul_ps(d, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, ln2_hi, d);
    r = _mm256_fnmadd_ps(k, ln2_lo, r);
    __m256 p = _mm256_fmadd_ps(p0, r, p1);
    p = _mm256_fmadd_ps(p, r, p2);
    p = _mm256_fmadd_ps(p, r, p3);
    p = _mm256_fmadd_ps(p, r, p4);
    p = _mm256_fmadd_ps(p, r, p5);
    __m256 e = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, one));
    const __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    e = _mm256_and_ps(_mm256_mul_ps(e, _mm256_castsi256_ps(pow2)), keep);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  return sum + SumExpShiftedScalar(x + i, n - i, shift);
}

__attribute__((target("avx2,fma"))) void TopKAvx2(const float* x, int64_t n, TopKHeap& h) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    int mask = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(h.threshold), _CMP_GT_OQ));
    while (mask != 0) {
      const int l = __builtin_ctz(static_cast<unsigned>(mask));
      mask &= mask - 1;
      h.Offer(x[i + l], i + l);  // re-checks against the threshold it may have raised
    }
  }
  for (; i < n; ++i) h.Offer(x[i], i);
}
#endif

}  // namespace

int64_t ArgMaxScalar(const float* x, int64_t n) {
  float bv = -std::numeric_limits<float>::infinity();
  int64_t bi = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] > bv) {
      bv = x[i];
      bi = i;
    }
  }
  return bi;
}

double SumExpShiftedScalar(const float* x, int64_t n, float shift) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - shift;
    if (d >= kExpFloor) sum += std::exp(d);
  }
  return sum;
}

void TopKScalar(const float* x, int64_t n, int k, std::vector<Candidate>* out) {
  out->clear();
  if (k <= 0) return;
  TopKHeap h{out, static_cast<size_t>(k)};
  for (int64_t i = 0; i < n; ++i) h.Offer(x[i], i);
  h.Finish();
}

void TopK(const float* x, int64_t n, int k, std::vector<Candidate>* out) {
  out->clear();
  if (k <= 0) return;
  TopKHeap h{out, static_cast<size_t>(k)};
#if defined(__x86_64__)
  if (HaveAvx2Fma()) {
    TopKAvx2(x, n, h);
    h.Finish();
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) h.Offer(x[i], i);
  h.Finish();
}

int64_t ArgMax(const float* x, int64_t n) {
#if defined(__x86_64__)
  if (HaveAvx2Fma()) return ArgMaxAvx2(x, n);
#endif
  return ArgMaxScalar(x, n);
}

double SumExpShifted(const float* x, int64_t n, float shift) {
#if defined(__x86_64__)
  if (HaveAvx2Fma()) return SumExpShiftedAvx2(x, n, shift);
#endif
  return SumExpShiftedScalar(x, n, shift);
}

}  // namespace formiga
