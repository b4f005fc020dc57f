// cpu_matmul_q4x8.cc for the VNNI tiers, with the VNNI instructions emulated
// by SIMDe (simde_shim.h): test-only (cpu_isa_test), compiled with the AVX2
// flags alone, so the avx512-vnni kernels run on any AVX2 machine. The same
// defines as avx512_vnni_q4x8.cc but the namespace, the 512-bit batched decode
// included (the rest of SIMDe's AVX-512).
#include "kernels/isa/simde_shim.h"
#define SIMDE_X86_AVX512DQ_NO_NATIVE
#include <simde/x86/avx512.h>
#define FORMIGA_CPU_TIER vnni_emulated
#define FORMIGA_CPU_DPBUSD _mm256_dpbusd_epi32
#define FORMIGA_CPU_DPWSSD _mm256_dpwssd_epi32
#define FORMIGA_CPU_ZMM 1
#define FORMIGA_CPU_ZMM_EMULATED 1
#include "kernels/cpu_matmul_q4x8.cc"
