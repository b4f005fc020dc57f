// Internal interface between the cpu backend's dispatcher (cpu_backend.cc,
// compiled for the baseline ISA) and its AVX2/FMA/F16C kernels (the other
// cpu_*.cc files, compiled with -mavx2 -mfma -mf16c).
//
// NOTE: this header must stay free of intrinsics and of inline code that could
// be compiled with AVX2 in one file and linked into baseline code: only
// declarations and plain structs. The dispatcher checks the CPU (in
// MakeCpuBackend) before any function declared here can run.
//
// Each kernel processes a range of outputs given by its caller ([n0, n1) rows,
// [t0, t1) tokens...): the dispatcher splits work into tasks by output, so a
// value is always computed by the same code in the same order whatever the
// thread count (bit-reproducible results).
//
// Thread safety: kernels are pure functions of their inputs; callers give
// disjoint outputs (and per-thread scratch) to concurrent calls.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/quant.h"
#include "kernels/backend.h"

namespace formiga::cpu {

// Activations quantized for the 32-element block types: x[j] ~= d * qs[j],
// qs in [-127, 127] (never -128: the sign trick of the signed-weight dot
// products needs |qs| <= 127); s = d * sum(qs) (for the types with a min);
// qsum = sum(qs) exactly (the rows-in-lanes Q4_0 kernel's offset term).
struct ActQ8 {
  float d;
  float s;
  int32_t qsum;
  int8_t qs[kQK];
};

// Which activation format, if any, a weight type's dot product consumes.
enum class ActFormat { kF32, kQ8, kQ8K, kUnsupported };
ActFormat ActFormatOf(DType type);

// x (T, C) -> (T, C/32) ActQ8 blocks / (T, C/256) BlockQ8_K blocks, for tokens [t0, t1).
void QuantizeActQ8(const float* x, int64_t C, int64_t t0, int64_t t1, ActQ8* out);
void QuantizeActQ8K(const float* x, int64_t C, int64_t t0, int64_t t1, BlockQ8_K* out);

// y (T, N) rows [n0, n1) = x · Wᵀ for the float weight types (F32, F16, BF16),
// x (T, C) in f32.
void MatMulFloatRows(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1);
// The same for the avx512-vnni tier (isa/avx512_float.cc): the same bits as
// MatMulFloatRows at twice the vector width; may run only where
// CpuSupportsIsa(kAvx512Vnni). avx512_emulated: the same source with SIMDe
// emulating AVX-512, for cpu_isa_test only (isa/emulated_float.cc).
#define FORMIGA_CPU_FLOAT512_ENTRY_POINTS \
  void MatMulFloatRows(const WeightView& w, const float* x, int64_t T, float* y, int64_t n0, int64_t n1);
// AttentionItems (below) for the avx512-vnni tier: cpu_attention.cc built
// again as isa/avx512_attention.cc (avx512_emulated: isa/emulated_attention.cc),
// the same bits, a GQA group's heads up to 4 at a time in 512-bit vectors.
#define FORMIGA_CPU_ATTN512_ENTRY_POINTS                                                                        \
  void AttentionItems(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p, \
                      float* out, int64_t i0, int64_t i1, float* scratch);
namespace avx512 {
FORMIGA_CPU_FLOAT512_ENTRY_POINTS
FORMIGA_CPU_ATTN512_ENTRY_POINTS
}  // namespace avx512
namespace avx512_emulated {
FORMIGA_CPU_FLOAT512_ENTRY_POINTS
FORMIGA_CPU_ATTN512_ENTRY_POINTS
}  // namespace avx512_emulated
// The integer MatMuls, one build per ISA tier (cpu_isa.h, isa/tier.h); every
// tier gives the same bits, and a tier's functions may run only where
// CpuSupportsIsa says so.
//  - MatMulQ8Rows: y (T, N) rows [n0, n1) = x · Wᵀ for Q4_0, Q4_1, Q5_0,
//    Q5_1, Q8_0 against ActQ8 activations (T, C/32) (cpu_matmul_q8.cc);
//    Q4_0, Q5_0 and Q8_0 go to MatMulQ8Rows8 (cpu_matmul_q4x8.cc, rows in
//    lanes), which returns false (nothing done) for the other types.
//  - MatMulQ8KRows: the same for Q2_K..Q6_K against Q8_K activations
//    (T, C/256) (cpu_matmul_k.cc); Q4_K, Q5_K and Q6_K go to MatMulQ8KRows8
//    (cpu_matmul_k8.cc), false for the others.
#define FORMIGA_CPU_TIER_ENTRY_POINTS                                                                           \
  bool MatMulQ8Rows8(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1);        \
  bool MatMulQ8KRows8(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1);   \
  void MatMulQ8Rows(const WeightView& w, const ActQ8* xq, int64_t T, float* y, int64_t n0, int64_t n1);         \
  void MatMulQ8KRows(const WeightView& w, const BlockQ8_K* xq, int64_t T, float* y, int64_t n0, int64_t n1);
namespace avx2 {
FORMIGA_CPU_TIER_ENTRY_POINTS
}  // namespace avx2
namespace avx_vnni {
FORMIGA_CPU_TIER_ENTRY_POINTS
}  // namespace avx_vnni
namespace avx512_vnni {
FORMIGA_CPU_TIER_ENTRY_POINTS
}  // namespace avx512_vnni

// Row-wise ops over rows [t0, t1) of (T, C) arrays.
void RmsNormRows(const float* x, const float* weight, float* y, int64_t t0, int64_t t1, int64_t C, float eps);
void LayerNormRows(const float* x, const float* weight, const float* bias, float* y, int64_t t0, int64_t t1,
                   int64_t C, float eps);
// inv_freq: n_rot / 2 frequencies (freq_factors and freq_scale folded in).
void RopeRows(float* x, const int32_t* positions, int64_t t0, int64_t t1, int64_t n_heads, int64_t D,
              RopeStyle style, int64_t n_rot, const double* inv_freq);

// Elementwise ops over [i0, i1).
void SiluMulRange(const float* gate, const float* up, float* y, int64_t i0, int64_t i1);
void GeluMulRange(const float* gate, const float* up, float* y, int64_t i0, int64_t i1);
void GeluRange(const float* x, float* y, int64_t i0, int64_t i1, bool tanh_approx);
void AddRange(const float* a, const float* b, float* y, int64_t i0, int64_t i1);
void AddBiasRows(const float* x, const float* bias, float* y, int64_t t0, int64_t t1, int64_t C);
void ScaleRange(float* x, float s, int64_t i0, int64_t i1);
void SoftCapRange(const float* x, float* y, int64_t i0, int64_t i1, float cap);

// K/V rows of tokens [t0, t1) into the cache (f32 or f16).
void StoreKvRows(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv, int64_t t0,
                 int64_t t1);

// out (T, H, D) for the (token, head) items [i0, i1) (item = t * H + h).
// `scratch` holds AttentionScratchFloats(D) floats for the calling thread.
int64_t AttentionScratchFloats(int64_t head_dim);
void AttentionItems(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                    float* out, int64_t i0, int64_t i1, float* scratch);

}  // namespace formiga::cpu
