// Paged attention and KV stores for the cpu backend. Compiled with -mavx2
// -mfma -mf16c.
//
// One work item is a (token, query head) pair: it reads its sequence's K/V
// rows through the block table (converted to f32 once per span of positions
// for all the query heads of a GQA group in the item range, see
// AttentionRun) and keeps an online ("flash") softmax: a
// running max m, running sum l and an unnormalized output acc (D floats),
// rescaled once per chunk of kChunk positions, so no T x S score matrix is
// ever materialized. KV heads are shared by H/KH query heads (GQA/MQA).
//
// Shapes: q, out (T, H, D); cache K/V [n_blocks][block_size][KH][D].
//
// This file is also the body of the avx512-vnni tier's attention
// (isa/avx512_attention.cc, and isa/emulated_attention.cc for cpu_isa_test):
// there FORMIGA_CPU_ZMM is 1, FORMIGA_ATTN_NS names the namespace of its
// AttentionItems, and a GQA group's heads are scored and accumulated
// together, up to 4 at a time, in 512-bit vectors (AttentionRunZ), with
// exactly the operations of the code below, lane for lane.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/quant.h"

#include "kernels/cpu_kernels.h"
#include "kernels/cpu_simd.h"
#include "kernels/isa/tier.h"

#ifdef FORMIGA_ATTN_NS
#define FORMIGA_ATTN_NAMESPACE formiga::cpu::FORMIGA_ATTN_NS
#else
#define FORMIGA_ATTN_NAMESPACE formiga::cpu
#endif

namespace FORMIGA_ATTN_NAMESPACE {
namespace {

constexpr int64_t kChunk = 64;  // positions scored before each rescale of acc

// Element i of a KV array in the cache's type. Offsets are in elements for
// every type; for q8_0 element i lives in block i / 32 (34 bytes: f16 scale,
// 32 int8), and 8-wide loads never straddle a block because D % 32 == 0.
template <DType kType>
inline __m256 LoadKv(const void* base, int64_t i) {
  if constexpr (kType == DType::kF16) {
    return LoadF16(static_cast<const uint16_t*>(base) + i);
  } else if constexpr (kType == DType::kQ8_0) {
    const uint8_t* block = static_cast<const uint8_t*>(base) + (i / 32) * 34;
    uint16_t scale;
    std::memcpy(&scale, block, 2);
    const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + i % 32));
    return _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(scale)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)));
  } else {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

template <DType kType>
inline float LoadKv1(const void* base, int64_t i) {
  if constexpr (kType == DType::kF16) {
    return _cvtsh_ss(static_cast<const uint16_t*>(base)[i]);
  } else if constexpr (kType == DType::kQ8_0) {
    const uint8_t* block = static_cast<const uint8_t*>(base) + (i / 32) * 34;
    uint16_t scale;
    std::memcpy(&scale, block, 2);
    return _cvtsh_ss(scale) * static_cast<float>(static_cast<int8_t>(block[2 + i % 32]));
  } else {
    return static_cast<const float*>(base)[i];
  }
}

template <DType kType>
inline float Dot(const float* q, const void* k, int64_t off, int64_t D) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), LoadKv<kType>(k, off + d), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), LoadKv<kType>(k, off + d + 8), acc1);
  }
  if (d + 8 <= D) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), LoadKv<kType>(k, off + d), acc0);
    d += 8;
  }
  float s = HSum(_mm256_add_ps(acc0, acc1));
  for (; d < D; ++d) s += q[d] * LoadKv1<kType>(k, off + d);
  return s;
}

// acc (D) = acc * alpha + Σ_j p[j] * v_j.
template <DType kType>
inline void Accumulate(float* acc, float alpha, const float* p, const int64_t* voff, int64_t n, const void* v,
                       int64_t D) {
  int64_t d = 0;
  for (; d + 8 <= D; d += 8) {
    __m256 a = _mm256_mul_ps(_mm256_loadu_ps(acc + d), _mm256_set1_ps(alpha));
    for (int64_t j = 0; j < n; ++j) a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), LoadKv<kType>(v, voff[j] + d), a);
    _mm256_storeu_ps(acc + d, a);
  }
  for (; d < D; ++d) {
    float a = acc[d] * alpha;
    for (int64_t j = 0; j < n; ++j) a += p[j] * LoadKv1<kType>(v, voff[j] + d);
    acc[d] = a;
  }
}

// Dot<kType> of q with the 4 rows at base + off[0..3], D % 8 == 0: each row
// gets exactly Dot's operations (two accumulators over the same chunks, HSum
// of their sum), q's chunks are loaded once for all four, and the four
// horizontal sums share their shuffles.
template <DType kType>
inline __m128 Dot4(const float* q, const void* base, const int64_t* off, int64_t D) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  const int64_t o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3];
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) {
    const __m256 qa = _mm256_loadu_ps(q + d), qb = _mm256_loadu_ps(q + d + 8);
    a0 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o0 + d), a0);
    b0 = _mm256_fmadd_ps(qb, LoadKv<kType>(base, o0 + d + 8), b0);
    a1 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o1 + d), a1);
    b1 = _mm256_fmadd_ps(qb, LoadKv<kType>(base, o1 + d + 8), b1);
    a2 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o2 + d), a2);
    b2 = _mm256_fmadd_ps(qb, LoadKv<kType>(base, o2 + d + 8), b2);
    a3 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o3 + d), a3);
    b3 = _mm256_fmadd_ps(qb, LoadKv<kType>(base, o3 + d + 8), b3);
  }
  if (d + 8 <= D) {
    const __m256 qa = _mm256_loadu_ps(q + d);
    a0 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o0 + d), a0);
    a1 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o1 + d), a1);
    a2 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o2 + d), a2);
    a3 = _mm256_fmadd_ps(qa, LoadKv<kType>(base, o3 + d), a3);
  }
  return HSum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3));
}

// Accumulate<kType>, kW chunks of 8 columns at a time: each chunk gets
// Accumulate's operations in the same order (rescale, then one FMA per
// position, positions in order); p[j] is broadcast once per kW chunks instead
// of once per chunk.
template <DType kType, int kW>
FORMIGA_ALWAYS_INLINE void AccumulateW(float* acc, __m256 va, const float* p, const int64_t* voff, int64_t n,
                                       const void* v, int64_t d) {
  __m256 a[kW];
#pragma GCC unroll 8
  for (int k = 0; k < kW; ++k) a[k] = _mm256_mul_ps(_mm256_loadu_ps(acc + d + 8 * k), va);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t o = voff[j] + d;
    const __m256 pj = _mm256_set1_ps(p[j]);
#pragma GCC unroll 8
    for (int k = 0; k < kW; ++k) a[k] = _mm256_fmadd_ps(pj, LoadKv<kType>(v, o + 8 * k), a[k]);
  }
#pragma GCC unroll 8
  for (int k = 0; k < kW; ++k) _mm256_storeu_ps(acc + d + 8 * k, a[k]);
}

// 64 columns at a time (8 FMA chains: 4 would wait on the FMA latency), then
// 32, then Accumulate itself.
template <DType kType>
inline void Accumulate4(float* acc, float alpha, const float* p, const int64_t* voff, int64_t n, const void* v,
                        int64_t D) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t d = 0;
  for (; d + 64 <= D; d += 64) AccumulateW<kType, 8>(acc, va, p, voff, n, v, d);
  for (; d + 32 <= D; d += 32) AccumulateW<kType, 4>(acc, va, p, voff, n, v, d);
  // The last D % 32 columns: Accumulate itself, on offset arguments.
  if (d < D) {
    int64_t off[kChunk];
    for (int64_t j = 0; j < n; ++j) off[j] = voff[j] + d;
    Accumulate<kType>(acc + d, alpha, p, off, n, v, D - d);
  }
}

// K/V rows [s0, s0 + n) of KV head kh into f32 rows of D (exact: q8_0
// values are representable in f32, so later arithmetic is unchanged).
template <DType kType>
void ConvertRows(const void* cache, const int64_t* offs, int64_t D, int64_t n, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    float* o = out + j * D;
    int64_t d = 0;
    for (; d + 8 <= D; d += 8) _mm256_storeu_ps(o + d, LoadKv<kType>(cache, offs[j] + d));
    for (; d < D; ++d) o[d] = LoadKv1<kType>(cache, offs[j] + d);
  }
}

// Element offset of position jj's row of KV head kh in the paged cache.
FORMIGA_ALWAYS_INLINE int64_t KvRowOffset(const int32_t* table, int64_t bs, int64_t KH, int64_t kh, int64_t D,
                                          int64_t jj) {
  return ((static_cast<int64_t>(table[jj / bs]) * bs + jj % bs) * KH + kh) * D;
}

// n queries' online-softmax state: output sums (n x D) at 0, (m, l) = (-inf, 0).
inline void ResetState(float* acc, float* ml, int64_t n, int64_t D) {
  std::fill(acc, acc + n * D, 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    ml[2 * i] = -INFINITY;
    ml[2 * i + 1] = 0.0f;
  }
}

// One query's output: its sum (D floats) over its softmax total l.
inline void WriteOutput(float* out, const float* acc, float l, int64_t D) {
  const float inv_l = 1.0f / l;
  for (int64_t d = 0; d < D; ++d) out[d] = acc[d] * inv_l;
}

// One head's online-softmax step over a chunk: scores [0, n) (the scaled
// dot products; the buffer holds n rounded up to 8) become the chunk's
// weights exp(s - m'), padded with zeros to a multiple of 8; ml = (m, l),
// the running max and sum, become (m', l · alpha + Σ weights). Returns alpha
// = exp(m - m'), the factor that rescales the head's output sum.
FORMIGA_ALWAYS_INLINE float SoftmaxChunk(float* scores, int64_t n, float softcap, float* ml) {
  const int64_t n8 = (n + 7) / 8 * 8;
  const float m = ml[0], l = ml[1];
  int64_t j;
  for (j = n; j < n8; ++j) scores[j] = -INFINITY;
  if (softcap > 0.0f) {
    const __m256 cap = _mm256_set1_ps(softcap), inv = _mm256_set1_ps(1.0f / softcap);
    for (j = 0; j < n8; j += 8) {
      const __m256 sc = _mm256_loadu_ps(scores + j);
      _mm256_storeu_ps(scores + j, _mm256_mul_ps(cap, Tanh(_mm256_mul_ps(sc, inv))));
    }
  }
  float cmax = m;
  for (j = 0; j < n; ++j) cmax = std::max(cmax, scores[j]);
  const float alpha = m == -INFINITY ? 0.0f : std::exp(m - cmax);
  const __m256 vmax = _mm256_set1_ps(cmax);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j < n8; j += 8) {
    __m256 e = Exp(_mm256_sub_ps(_mm256_loadu_ps(scores + j), vmax));
    // Padding lanes (positions >= n) must weigh exactly 0.
    const __m256i lane =
        _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(j)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane));
    e = _mm256_and_ps(e, valid);
    _mm256_storeu_ps(scores + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  ml[0] = cmax;
  ml[1] = l * alpha + HSum(vsum);
  return alpha;
}

#if FORMIGA_CPU_ZMM
// ---- The 512-bit build (FORMIGA_CPU_ZMM): HB heads of a GQA group at once,
// D % 16 == 0. A 16-column step of a score is Dot's step, acc0 (the first 8
// columns) in the low lanes and acc1 (the next 8) in the high ones, so
// Low + High is Dot's acc0 + acc1 before the same HSum / HSum4; an output
// column's lane gets Accumulate's rescale and its FMAs in position order.
// Sharing: each K/V row's 16-column stretch is loaded and converted once
// for the HB heads (the 256-bit code converts it once per head).

FORMIGA_ALWAYS_INLINE __m256 LowPlusHigh(__m512 v) {
  return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

// 16 elements of a KV array from element i, as f32 (f16 or f32 rows).
template <DType kType>
FORMIGA_ALWAYS_INLINE __m512 LoadKv16(const void* base, int64_t i) {
  if constexpr (kType == DType::kF16) {
    const uint16_t* h = static_cast<const uint16_t*>(base) + i;
#if FORMIGA_CPU_ZMM_EMULATED
    return Join16(LoadF16(h), LoadF16(h + 8));  // SIMDe 0.7: no 512-bit vcvtph2ps
#else
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
#endif
  } else {
    return _mm512_loadu_ps(static_cast<const float*>(base) + i);
  }
}

// scores[h * kChunk + j] = Dot(q[h], k_j) * scale for queries h < HB and
// positions j < n: Dot4's operations for each 4 positions, Dot's for the rest.
template <DType kType, int HB>
FORMIGA_ALWAYS_INLINE void ScoresZ(const float* const* q, const void* kb, const int64_t* offs, int64_t n, int64_t D,
                                   float scale, float* scores) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    __m512 a[HB][4];
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) a[h][r] = _mm512_setzero_ps();
    }
    for (int64_t d = 0; d < D; d += 16) {
      __m512 k[4];
#pragma GCC unroll 4
      for (int r = 0; r < 4; ++r) k[r] = LoadKv16<kType>(kb, offs[j + r] + d);
#pragma GCC unroll 4
      for (int h = 0; h < HB; ++h) {
        const __m512 qv = _mm512_loadu_ps(q[h] + d);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) a[h][r] = _mm512_fmadd_ps(qv, k[r], a[h][r]);
      }
    }
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
      const __m128 s = HSum4(LowPlusHigh(a[h][0]), LowPlusHigh(a[h][1]), LowPlusHigh(a[h][2]), LowPlusHigh(a[h][3]));
      _mm_storeu_ps(scores + h * kChunk + j, _mm_mul_ps(s, _mm_set1_ps(scale)));
    }
  }
  for (; j < n; ++j) {
    __m512 a[HB];
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) a[h] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
      const __m512 k = LoadKv16<kType>(kb, offs[j] + d);
#pragma GCC unroll 4
      for (int h = 0; h < HB; ++h) a[h] = _mm512_fmadd_ps(_mm512_loadu_ps(q[h] + d), k, a[h]);
    }
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) scores[h * kChunk + j] = HSum(LowPlusHigh(a[h])) * scale;
  }
}

// acc[h] (D floats) = acc[h] * alpha[h] + Σ_j p_h[j] v_j for queries h <
// HB, kW 16-column chunks from column d.
template <DType kType, int HB, int kW>
FORMIGA_ALWAYS_INLINE void AccumulateZW(float* const* acc, const float* alpha, const float* p, const int64_t* voff,
                                        int64_t n, const void* vb, int64_t d) {
  __m512 a[HB][kW];
#pragma GCC unroll 4
  for (int h = 0; h < HB; ++h) {
    const __m512 va = _mm512_set1_ps(alpha[h]);
#pragma GCC unroll 8
    for (int k = 0; k < kW; ++k) a[h][k] = _mm512_mul_ps(_mm512_loadu_ps(acc[h] + d + 16 * k), va);
  }
  for (int64_t j = 0; j < n; ++j) {
    __m512 v[kW];
#pragma GCC unroll 8
    for (int k = 0; k < kW; ++k) v[k] = LoadKv16<kType>(vb, voff[j] + d + 16 * k);
#pragma GCC unroll 4
    for (int h = 0; h < HB; ++h) {
      const __m512 pj = _mm512_set1_ps(p[h * kChunk + j]);
#pragma GCC unroll 8
      for (int k = 0; k < kW; ++k) a[h][k] = _mm512_fmadd_ps(pj, v[k], a[h][k]);
    }
  }
#pragma GCC unroll 4
  for (int h = 0; h < HB; ++h) {
#pragma GCC unroll 8
    for (int k = 0; k < kW; ++k) _mm512_storeu_ps(acc[h] + d + 16 * k, a[h][k]);
  }
}

// One chunk of n positions for HB queries that read the same K/V rows
// (heads of one GQA group, of one or several tokens): q[h] their queries,
// acc[h] their output sums, ml[h] their (m, l) pairs; scores, each query's
// SoftmaxChunk, accumulation. 4 x HB accumulators of 16 columns at most
// (one query: 8, as Accumulate4 keeps 8 chains of 8).
template <DType kType, int HB>
void QueriesZ(const float* const* q, const void* kb, const int64_t* offs, int64_t n, const void* vb,
              const AttentionParams& p, float* scores, float* const* acc, float* const* ml) {
  const int64_t D = p.head_dim;
  ScoresZ<kType, HB>(q, kb, offs, n, D, p.scale, scores);
  float alpha[HB];
  for (int h = 0; h < HB; ++h) alpha[h] = SoftmaxChunk(scores + h * kChunk, n, p.softcap, ml[h]);
  constexpr int kW = HB == 1 ? 8 : 4;
  int64_t d = 0;
  for (; d + 16 * kW <= D; d += 16 * kW) AccumulateZW<kType, HB, kW>(acc, alpha, scores, offs, n, vb, d);
  for (; d < D; d += 16) AccumulateZW<kType, HB, 1>(acc, alpha, scores, offs, n, vb, d);
}

// QueriesZ for nq <= 4 queries.
template <DType kType>
void QueriesAnyZ(int nq, const float* const* q, const void* kb, const int64_t* offs, int64_t n, const void* vb,
                 const AttentionParams& p, float* scores, float* const* acc, float* const* ml) {
  switch (nq) {
    case 1: QueriesZ<kType, 1>(q, kb, offs, n, vb, p, scores, acc, ml); break;
    case 2: QueriesZ<kType, 2>(q, kb, offs, n, vb, p, scores, acc, ml); break;
    case 3: QueriesZ<kType, 3>(q, kb, offs, n, vb, p, scores, acc, ml); break;
    default: QueriesZ<kType, 4>(q, kb, offs, n, vb, p, scores, acc, ml); break;
  }
}
#endif  // FORMIGA_CPU_ZMM

// The query heads [h0, h1) of token t, which share KV head kh, chunk by
// chunk of kChunk positions from lo: scores (4 positions at a time), online
// softmax, accumulation (4 column chunks at a time). f16 and f32 rows are
// read from the cache as they are; q8_0 rows (costly to decode) are
// converted to f32 once per chunk for all the heads of the run. Each head
// keeps its own online-softmax state, and its arithmetic (chunks of kChunk
// from lo, Dot, rescale, Accumulate: the 4-wide helpers do each row's and
// column's exact operations) is the same whatever the run it belongs to, so
// results do not depend on the batch.
template <DType kType>
void AttentionRun(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                  float* out, int64_t t, int64_t h0, int64_t h1, float* scores) {
  const int64_t H = p.n_heads, KH = p.n_kv_heads, D = p.head_dim, bs = kv.layout.block_size;
  const int64_t kh = h0 / (H / KH), nh = h1 - h0;
  const int64_t pos = batch.positions[t];
  const int32_t* table = batch.block_tables[batch.seq_of_token[t]];
  const int64_t lo = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
  // NOTE: f16 rows are read as they are even by a GQA group's several heads:
  // converting each chunk once for the group (as q8_0 rows are) was measured
  // slower (attention of a 512-token prefill +18 % on the 1.1B shape, +65 %
  // on Gemma-3's 256-wide heads): the f32 copy outgrows L1, and vcvtph2ps
  // costs little beside the load.
  constexpr bool kConvert = kType == DType::kQ8_0;
  constexpr DType kRead = kConvert ? DType::kF32 : kType;  // what Dot4/Accumulate4 read
  constexpr bool kZmm = FORMIGA_CPU_ZMM;
  thread_local std::vector<float> buf;
  const size_t need = static_cast<size_t>((kConvert ? 2 * kChunk * D : 0) + nh * (D + 2) + (kZmm ? 4 * kChunk : 0));
  if (buf.size() < need) buf.resize(need);
  float* kf = buf.data();
  float* vf = kf + (kConvert ? kChunk * D : 0);
  float* acc = vf + (kConvert ? kChunk * D : 0);  // nh x D
  float* ml = acc + nh * D;                       // nh x (m, l)
  [[maybe_unused]] float* zscores = ml + 2 * nh;  // QueriesZ: 4 x kChunk
  ResetState(acc, ml, nh, D);
  int64_t cache_offs[kChunk], f32_offs[kChunk];
  for (int64_t j0 = lo; j0 <= pos; j0 += kChunk) {
    const int64_t n = std::min(kChunk, pos + 1 - j0);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t jj = j0 + j;
      cache_offs[j] = KvRowOffset(table, bs, KH, kh, D, jj);
      f32_offs[j] = j * D;
    }
    const void* kb = kv.k;
    const void* vb = kv.v;
    const int64_t* offs = cache_offs;
    if constexpr (kConvert) {
      ConvertRows<kType>(kv.k, cache_offs, D, n, kf);
      ConvertRows<kType>(kv.v, cache_offs, D, n, vf);
      kb = kf;
      vb = vf;
      offs = f32_offs;
    }
    for (int64_t i = 0; i < nh; ++i) {
      const float* qh = q + (t * H + h0 + i) * D;
      float* acch = acc + i * D;
#if FORMIGA_CPU_ZMM
      if (D % 16 == 0) {
        const int hb = static_cast<int>(std::min<int64_t>(4, nh - i));
        const float* qs[4];
        float* accs[4];
        float* mls[4];
        for (int k = 0; k < hb; ++k) {
          qs[k] = qh + k * D;
          accs[k] = acch + k * D;
          mls[k] = ml + 2 * (i + k);
        }
        QueriesAnyZ<kRead>(hb, qs, kb, offs, n, vb, p, zscores, accs, mls);
        i += hb - 1;
        continue;
      }
#endif
      int64_t j = 0;
      if (D % 8 == 0) {
        for (; j + 4 <= n; j += 4) {
          _mm_storeu_ps(scores + j, _mm_mul_ps(Dot4<kRead>(qh, kb, offs + j, D), _mm_set1_ps(p.scale)));
        }
      }
      for (; j < n; ++j) scores[j] = Dot<kRead>(qh, kb, offs[j], D) * p.scale;
      const float alpha = SoftmaxChunk(scores, n, p.softcap, ml + 2 * i);
      Accumulate4<kRead>(acch, alpha, scores, offs, n, vb, D);
    }
  }
  for (int64_t i = 0; i < nh; ++i) WriteOutput(out + (t * H + h0 + i) * D, acc + i * D, ml[2 * i + 1], D);
}

#if FORMIGA_CPU_ZMM
// Tokens sharing one chunk pass (AttentionTokensZ): prefill tokens of one
// sequence, up to 4 at a time.
constexpr int64_t kMaxTokens = 4;

// The whole GQA group [h0, h1) for nt <= kMaxTokens tokens t0.. of one
// sequence, no sliding window, f16/f32 rows, D % 16 == 0: chunk by chunk of
// positions from 0 (as each token's own run), the queries whose chunk holds
// the same number of positions go through QueriesZ together, up to 4 at a
// time, so the tokens share each K/V row's loads as a group's heads do. Every
// query gets its own run's operations (its chunks in order, QueriesZ's per
// chunk), so the bits do not change.
template <DType kType>
void AttentionTokensZ(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                      float* out, int64_t t0, int64_t nt, int64_t h0, int64_t h1) {
  const int64_t H = p.n_heads, KH = p.n_kv_heads, D = p.head_dim, bs = kv.layout.block_size;
  const int64_t kh = h0 / (H / KH), nh = h1 - h0, nq = nt * nh;
  const int32_t* table = batch.block_tables[batch.seq_of_token[t0]];
  int64_t max_pos = 0;
  for (int64_t k = 0; k < nt; ++k) max_pos = std::max<int64_t>(max_pos, batch.positions[t0 + k]);
  thread_local std::vector<float> buf;
  const size_t need = static_cast<size_t>(nq * (D + 2) + 4 * kChunk);
  if (buf.size() < need) buf.resize(need);
  float* acc = buf.data();     // nq x D, query (k, i) at (k nh + i) D
  float* ml = acc + nq * D;    // nq x (m, l)
  float* scores = ml + 2 * nq;  // 4 x kChunk
  ResetState(acc, ml, nq, D);
  int64_t offs[kChunk];
  for (int64_t j0 = 0; j0 <= max_pos; j0 += kChunk) {
    const int64_t n_max = std::min(kChunk, max_pos + 1 - j0);
    for (int64_t j = 0; j < n_max; ++j) offs[j] = KvRowOffset(table, bs, KH, kh, D, j0 + j);
    const float* qs[4];
    float* accs[4];
    float* mls[4];
    int cnt = 0;
    int64_t cur_n = 0;
    for (int64_t k = 0; k < nt; ++k) {
      const int64_t pos = batch.positions[t0 + k];
      if (pos < j0) continue;
      const int64_t n = std::min(kChunk, pos + 1 - j0);
      for (int64_t i = 0; i < nh; ++i) {
        if (cnt == 4 || (cnt > 0 && n != cur_n)) {
          QueriesAnyZ<kType>(cnt, qs, kv.k, offs, cur_n, kv.v, p, scores, accs, mls);
          cnt = 0;
        }
        cur_n = n;
        qs[cnt] = q + ((t0 + k) * H + h0 + i) * D;
        accs[cnt] = acc + (k * nh + i) * D;
        mls[cnt] = ml + 2 * (k * nh + i);
        ++cnt;
      }
    }
    if (cnt > 0) QueriesAnyZ<kType>(cnt, qs, kv.k, offs, cur_n, kv.v, p, scores, accs, mls);
  }
  for (int64_t k = 0; k < nt; ++k) {
    for (int64_t i = 0; i < nh; ++i) {
      const int64_t qi = k * nh + i;
      WriteOutput(out + ((t0 + k) * H + h0 + i) * D, acc + qi * D, ml[2 * qi + 1], D);
    }
  }
}

// The items [i0, i1) group by group: a token whose whole group is in the
// range goes with the next tokens of its sequence whose whole group is too
// (AttentionTokensZ), the other runs alone (AttentionRun).
template <DType kType>
void AttentionByGroupsZ(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                        float* out, int64_t i0, int64_t i1, float* scratch) {
  const int64_t H = p.n_heads, group = p.n_heads / p.n_kv_heads;
  const int64_t t_first = i0 / H, t_last = (i1 - 1) / H;
  for (int64_t hs = 0; hs < H; hs += group) {
    const int64_t he = hs + group;
    for (int64_t t = t_first; t <= t_last;) {
      const int64_t a = std::max(i0, t * H + hs), b = std::min(i1, t * H + he);
      if (b - a < group) {  // part of the group, or none of it
        if (a < b) AttentionRun<kType>(q, kv, batch, p, out, t, a - t * H, b - t * H, scratch);
        ++t;
        continue;
      }
      int64_t nt = 1;
      while (nt < kMaxTokens && t + nt <= t_last && (t + nt) * H + he <= i1 &&
             batch.seq_of_token[t + nt] == batch.seq_of_token[t]) {
        ++nt;
      }
      if (nt == 1) {
        AttentionRun<kType>(q, kv, batch, p, out, t, hs, he, scratch);
      } else {
        AttentionTokensZ<kType>(q, kv, batch, p, out, t, nt, hs, he);
      }
      t += nt;
    }
  }
}
#endif  // FORMIGA_CPU_ZMM

template <DType kType>
void AttentionTyped(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                    float* out, int64_t i0, int64_t i1, float* scratch) {
  const int64_t H = p.n_heads, group = p.n_heads / p.n_kv_heads;
#if FORMIGA_CPU_ZMM
  if constexpr (kType != DType::kQ8_0) {
    if (p.window == 0 && p.head_dim % 16 == 0) {
      AttentionByGroupsZ<kType>(q, kv, batch, p, out, i0, i1, scratch);
      return;
    }
  }
#endif
  for (int64_t item = i0; item < i1;) {
    const int64_t t = item / H, h = item % H;
    const int64_t h1 = std::min({H, (h / group + 1) * group, h + (i1 - item)});
    AttentionRun<kType>(q, kv, batch, p, out, t, h, h1, scratch);
    item += h1 - h;
  }
}

}  // namespace

void AttentionItems(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                    float* out, int64_t i0, int64_t i1, float* scratch) {
  switch (kv.layout.type) {
    case DType::kF16: AttentionTyped<DType::kF16>(q, kv, batch, p, out, i0, i1, scratch); break;
    case DType::kQ8_0: AttentionTyped<DType::kQ8_0>(q, kv, batch, p, out, i0, i1, scratch); break;
    default: AttentionTyped<DType::kF32>(q, kv, batch, p, out, i0, i1, scratch); break;
  }
}

#ifndef FORMIGA_ATTN_NS  // the AVX2 build alone: what every tier shares

int64_t AttentionScratchFloats(int64_t /*head_dim*/) { return kChunk; }

void StoreKvRows(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv, int64_t t0,
                 int64_t t1) {
  const int64_t row = kv.layout.n_kv_heads * kv.layout.head_dim;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t dst = batch.slots[t] * row;
    if (kv.layout.type == DType::kQ8_0) {
      // NOTE: the reference quantizer, so cpu and ref caches hold identical bytes.
      const size_t row_bytes = static_cast<size_t>(row / 32 * 34);
      (void)QuantizeRow(DType::kQ8_0, k + t * row, static_cast<uint8_t*>(kv.k) + batch.slots[t] * row_bytes, row);
      (void)QuantizeRow(DType::kQ8_0, v + t * row, static_cast<uint8_t*>(kv.v) + batch.slots[t] * row_bytes, row);
    } else if (kv.layout.type == DType::kF16) {
      for (int pass = 0; pass < 2; ++pass) {
        const float* src = (pass == 0 ? k : v) + t * row;
        uint16_t* out = static_cast<uint16_t*>(pass == 0 ? kv.k : kv.v) + dst;
        int64_t e = 0;
        for (; e + 8 <= row; e += 8) StoreF16(out + e, _mm256_loadu_ps(src + e));
        for (; e < row; ++e) out[e] = _cvtss_sh(src[e], _MM_FROUND_TO_NEAREST_INT);
      }
    } else {
      std::copy(k + t * row, k + (t + 1) * row, static_cast<float*>(kv.k) + dst);
      std::copy(v + t * row, v + (t + 1) * row, static_cast<float*>(kv.v) + dst);
    }
  }
}

#endif  // !FORMIGA_ATTN_NS

}  // namespace FORMIGA_ATTN_NAMESPACE
