// cpu_matmul_k.cc for the avx-vnni tier (cpu_isa.h; see tier.h): the VEX
// encoding of the same instructions (Alder Lake and later, Zen 5).
// Compiled with -mavxvnni on top of the AVX2 flags (src/kernels/CMakeLists.txt).
#define FORMIGA_CPU_TIER avx_vnni
#define FORMIGA_CPU_DPBUSD _mm256_dpbusd_avx_epi32
#define FORMIGA_CPU_DPWSSD _mm256_dpwssd_avx_epi32
#include "kernels/cpu_matmul_k.cc"
