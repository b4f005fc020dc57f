// isa/avx512_float.cc with its 512-bit instructions emulated by SIMDe:
// test-only (cpu_isa_test), compiled with the AVX2 flags alone, so the
// avx512-vnni tier's float MatMuls are checked against the AVX2 ones on any
// AVX2 machine.
#include "kernels/isa/simde_avx512.h"
#define FORMIGA_FLOAT512_NS avx512_emulated
#define FORMIGA_FLOAT512_EMULATED 1
#include "kernels/isa/avx512_float.cc"
