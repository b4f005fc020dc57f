// The ISA tier a kernel body (cpu_matmul_q4x8.cc, cpu_matmul_k8.cc,
// cpu_matmul_q8.cc, cpu_matmul_k.cc) is being compiled for, the tier's int8
// dot-product instructions, and the tier's entry points (declared here for
// every tier, the test-only emulated one included).
//
// Each body is compiled once per tier (cpu_isa.h): as itself for AVX2 (the
// default below), and by the small files in this folder for the VNNI tiers,
// which define, before including the body:
//   FORMIGA_CPU_TIER    the namespace of the body's entry points (cpu::<tier>)
//   FORMIGA_CPU_DPBUSD  the vpdpbusd intrinsic (u8 x s8, 4 products + int32
//                       accumulator, no saturation)
//   FORMIGA_CPU_DPWSSD  the vpdpwssd intrinsic (s16 x s16, 2 products + int32
//                       accumulator, no saturation)
// (_mm256_dpbusd_epi32 for AVX512_VNNI+VL, _mm256_dpbusd_avx_epi32 for
// AVX-VNNI; the emulated tier of cpu_isa_test maps _mm256_dpbusd_epi32 to
// SIMDe's portable version.) The body then has FORMIGA_CPU_VNNI = 1 and the
// helpers Dpbusd / Dpwssd.
//
// NOTE: include only from kernel bodies, after cpu_simd.h (the same rules:
// everything `static inline`, so no copy compiled for one tier can be linked
// into another's code).
#pragma once

#include <immintrin.h>

#include "kernels/cpu_kernels.h"

#ifndef FORMIGA_CPU_TIER
#define FORMIGA_CPU_TIER avx2
#endif

// The tier's entry points (cpu_kernels.h), so a body calls its own tier's.
namespace formiga::cpu::FORMIGA_CPU_TIER {
FORMIGA_CPU_TIER_ENTRY_POINTS
}  // namespace formiga::cpu::FORMIGA_CPU_TIER

#ifdef FORMIGA_CPU_DPBUSD
#define FORMIGA_CPU_VNNI 1
namespace formiga::cpu {
// acc + Σ_{k<4} u8[4i+k] * s8[4i+k] per 32-bit lane i, exact.
static inline __attribute__((always_inline)) __m256i Dpbusd(__m256i acc, __m256i u8, __m256i s8) {
  return FORMIGA_CPU_DPBUSD(acc, u8, s8);
}
// acc + Σ_{k<2} a16[2i+k] * b16[2i+k] per 32-bit lane i, exact.
static inline __attribute__((always_inline)) __m256i Dpwssd(__m256i acc, __m256i a16, __m256i b16) {
  return FORMIGA_CPU_DPWSSD(acc, a16, b16);
}
}  // namespace formiga::cpu
#else
#define FORMIGA_CPU_VNNI 0
#endif

// FORMIGA_CPU_ZMM (defined 1 by the avx512-vnni tier's files and by the
// emulated ones): the bodies' 512-bit paths (16 lanes, each lane the same
// operations as the 8-lane code), compiled where the tier has AVX-512.
// FORMIGA_CPU_ZMM_EMULATED: through SIMDe (cpu_isa_test).
#ifndef FORMIGA_CPU_ZMM
#define FORMIGA_CPU_ZMM 0
#endif
#ifndef FORMIGA_CPU_ZMM_EMULATED
#define FORMIGA_CPU_ZMM_EMULATED 0
#endif
#if FORMIGA_CPU_ZMM
namespace formiga::cpu {
// The 16 lanes lo | hi.
static inline __attribute__((always_inline)) __m512 Join16(__m256 lo, __m256 hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}
// 16 f16 at h (any alignment) as f32 (SIMDe 0.7, for the emulated build,
// has no 512-bit vcvtph2ps: two 256-bit conversions, the same values).
static inline __attribute__((always_inline)) __m512 F16x16(const uint16_t* h) {
#if FORMIGA_CPU_ZMM_EMULATED
  return Join16(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h))),
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 8))));
#else
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h)));
#endif
}
// int32 -> f32 per lane (SIMDe 0.7, for the emulated build, has no 512-bit
// vcvtdq2ps: two 256-bit conversions give the same values).
static inline __attribute__((always_inline)) __m512 Cvt16(__m512i v) {
#if FORMIGA_CPU_ZMM_EMULATED
  const __m256 lo = _mm256_cvtepi32_ps(_mm512_castsi512_si256(v));
  const __m256 hi = _mm256_cvtepi32_ps(_mm512_extracti64x4_epi64(v, 1));
  return Join16(lo, hi);
#else
  return _mm512_cvtepi32_ps(v);
#endif
}
}  // namespace formiga::cpu
#endif
