// SIMDe's whole AVX-512 (Debian's libsimde-dev) for the emulated 512-bit
// builds of cpu_isa_test (isa/emulated_float.cc, isa/emulated_attention.cc):
// after this header the 512-bit intrinsics are SIMDe's portable functions,
// in files compiled with the AVX2 flags alone. The *_NO_NATIVE defines keep
// them emulations even in a build whose flags enable AVX-512.
#pragma once

#define SIMDE_NO_INLINE  // as simde_shim.h: compile time
#define SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512F_NO_NATIVE
#define SIMDE_X86_AVX512VL_NO_NATIVE
#define SIMDE_X86_AVX512BW_NO_NATIVE
#define SIMDE_X86_AVX512DQ_NO_NATIVE
#include <simde/x86/avx512.h>
