// isa/avx512_attention.cc with its 512-bit instructions emulated by SIMDe:
// test-only (cpu_isa_test), compiled with the AVX2 flags alone, so the
// avx512-vnni tier's attention is checked against the AVX2 one on any AVX2
// machine.
#include "kernels/isa/simde_avx512.h"
#define FORMIGA_CPU_ZMM 1
#define FORMIGA_CPU_ZMM_EMULATED 1
#define FORMIGA_ATTN_NS avx512_emulated
#include "kernels/cpu_attention.cc"
