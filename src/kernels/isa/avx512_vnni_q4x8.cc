// cpu_matmul_q4x8.cc for the avx512-vnni tier (cpu_isa.h; see tier.h).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni on top of the
// AVX2 flags (src/kernels/CMakeLists.txt); run only where DetectCpuIsa says so.
#define FORMIGA_CPU_TIER avx512_vnni
#define FORMIGA_CPU_DPBUSD _mm256_dpbusd_epi32
#define FORMIGA_CPU_DPWSSD _mm256_dpwssd_epi32
#define FORMIGA_CPU_ZMM 1
#include "kernels/cpu_matmul_q4x8.cc"
