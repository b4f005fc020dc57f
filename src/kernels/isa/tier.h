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
