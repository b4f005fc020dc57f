// isa/avx512_attention.cc with its 512-bit instructions emulated by SIMDe:
// test-only (cpu_isa_test), compiled with the AVX2 flags alone, so the
// avx512-vnni tier's attention is checked against the AVX2 one on any AVX2
// machine (the *_NO_NATIVE defines keep it an emulation in any build).
#define SIMDE_NO_INLINE  // as simde_shim.h: compile time
#define SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512F_NO_NATIVE
#define SIMDE_X86_AVX512VL_NO_NATIVE
#define SIMDE_X86_AVX512BW_NO_NATIVE
#define SIMDE_X86_AVX512DQ_NO_NATIVE
#include <simde/x86/avx512.h>
#define FORMIGA_CPU_ZMM 1
#define FORMIGA_CPU_ZMM_EMULATED 1
#define FORMIGA_ATTN_NS avx512_emulated
#include "kernels/cpu_attention.cc"
