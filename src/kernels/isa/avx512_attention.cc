// cpu_attention.cc's AttentionItems for the avx512-vnni tier: a GQA group's
// heads scored and accumulated together in 512-bit vectors, the same bits
// as the AVX2 build. Compiled with -mavx512f -mavx512bw -mavx512vl on top of
// the AVX2 flags (src/kernels/CMakeLists.txt); run only where DetectCpuIsa
// says the CPU and OS have AVX-512.
#define FORMIGA_CPU_ZMM 1
#define FORMIGA_ATTN_NS avx512
#include "kernels/cpu_attention.cc"
