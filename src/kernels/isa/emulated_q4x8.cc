// cpu_matmul_q4x8.cc for the VNNI tiers, with the VNNI instructions emulated
// by SIMDe (simde_shim.h): test-only (cpu_isa_test), compiled with the AVX2
// flags alone, so the avx512-vnni kernels run on any AVX2 machine. The same
// defines as avx512_vnni_q4x8.cc but the namespace.
#include "kernels/isa/simde_shim.h"
#define FORMIGA_CPU_TIER vnni_emulated
#define FORMIGA_CPU_DPBUSD _mm256_dpbusd_epi32
#define FORMIGA_CPU_DPWSSD _mm256_dpwssd_epi32
#include "kernels/cpu_matmul_q4x8.cc"
