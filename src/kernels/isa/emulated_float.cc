// isa/avx512_float.cc with its 512-bit instructions emulated by SIMDe:
// test-only (cpu_isa_test), compiled with the AVX2 flags alone, so the
// avx512-vnni tier's float MatMuls are checked against the AVX2 ones on any
// AVX2 machine. The *_NO_NATIVE defines keep it an emulation even in a build
// whose flags enable AVX-512.
#define SIMDE_NO_INLINE  // as simde_shim.h: compile time
#define SIMDE_ENABLE_NATIVE_ALIASES
#define SIMDE_X86_AVX512F_NO_NATIVE
#define SIMDE_X86_AVX512VL_NO_NATIVE
#define SIMDE_X86_AVX512BW_NO_NATIVE
#define SIMDE_X86_AVX512DQ_NO_NATIVE
#include <simde/x86/avx512.h>
#define FORMIGA_FLOAT512_NS avx512_emulated
#define FORMIGA_FLOAT512_EMULATED 1
#include "kernels/isa/avx512_float.cc"
