// SIMDe (Debian's libsimde-dev: portable C implementations of the x86
// intrinsics) for the emulated tier of cpu_isa_test: after this header,
// _mm256_dpbusd_epi32 and _mm256_dpwssd_epi32 (AVX512_VNNI + AVX512VL) are
// SIMDe's functions, exact emulations built from plain integer vector
// arithmetic, in a file compiled only for AVX2. Instructions the compiler
// has natively (AVX2, FMA, F16C) stay native.
//
// NOTE: only the VNNI headers: the kernels' tiers differ from AVX2 in those
// instructions alone (256-bit vpdpbusd / vpdpwssd). A 512-bit kernel would
// include <simde/x86/avx512.h> here instead (slower to compile).
// The *_NO_NATIVE defines keep it an emulation even in a build whose flags
// enable AVX-512 (e.g. -march=native on such a machine).
#pragma once

// Every SIMDe function compiled once, out of line: forced inlining of its
// portable 512-bit bodies into the kernels' unrolled loops made one file
// take 8+ minutes to compile (emulated_k8.cc: 40 s without). The emulated
// tier only checks bits; its speed does not matter.
#define SIMDE_NO_INLINE

#define SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512F_NO_NATIVE
#define SIMDE_X86_AVX512VL_NO_NATIVE
#define SIMDE_X86_AVX512BW_NO_NATIVE
#define SIMDE_X86_AVX512VNNI_NO_NATIVE
#include <simde/x86/avx512/dpbusd.h>
#include <simde/x86/avx512/dpwssd.h>
