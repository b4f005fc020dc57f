// CPU feature detection for the cpu backend's ISA tiers (cpu_isa.h).
// Compiled for the baseline ISA, like cpu_backend.cc.
#include "kernels/cpu_isa.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdint>
#include <string>

namespace formiga {
namespace {

struct CpuFeatures {
  bool avx2_fma_f16c = false;  // with the OS saving XMM/YMM state
  bool avx_vnni = false;
  bool avx512_vnni = false;  // F, BW, VL and VNNI, with the OS saving opmask/ZMM state
};

// NOTE: asks CPUID directly (clang 14's __builtin_cpu_supports does not know
// "f16c" nor "avxvnni"), and checks XCR0 (XGETBV): a CPU can have the
// instructions while the OS does not save their registers (then they fault).
CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return f;
  unsigned xcr0_lo = 0, xcr0_hi = 0;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0x6) != 0x6) return f;  // XMM and YMM state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2_fma_f16c = b & (1u << 5);
  if (!f.avx2_fma_f16c) return f;
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const bool avx512vnni = c & (1u << 11);
  const bool zmm_state = (xcr0_lo & 0xe0) == 0xe0;  // opmask, ZMM0-15 upper halves, ZMM16-31
  f.avx512_vnni = avx512f && avx512bw && avx512vl && avx512vnni && zmm_state;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = a & (1u << 4);
#endif
  return f;
}

std::string Missing(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx2: return "AVX2, FMA or F16C";
    case CpuIsa::kAvxVnni: return "AVX-VNNI";
    case CpuIsa::kAvx512Vnni: return "AVX512F/BW/VL + AVX512_VNNI (or the OS's AVX-512 state)";
  }
  return "?";
}

}  // namespace

const char* CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx2: return "avx2";
    case CpuIsa::kAvxVnni: return "avx-vnni";
    case CpuIsa::kAvx512Vnni: return "avx512-vnni";
  }
  return "?";
}

bool CpuSupportsIsa(CpuIsa isa) {
  const CpuFeatures f = Detect();
  switch (isa) {
    case CpuIsa::kAvx2: return f.avx2_fma_f16c;
    case CpuIsa::kAvxVnni: return f.avx2_fma_f16c && f.avx_vnni;
    case CpuIsa::kAvx512Vnni: return f.avx2_fma_f16c && f.avx512_vnni;
  }
  return false;
}

Result<CpuIsa> DetectCpuIsa() {
  // NOTE: AVX-512 VNNI first: on CPUs with both (Sapphire Rapids, Zen 5) its
  // EVEX encoding also gives the compiler 32 vector registers.
  for (CpuIsa isa : {CpuIsa::kAvx512Vnni, CpuIsa::kAvxVnni, CpuIsa::kAvx2}) {
    if (CpuSupportsIsa(isa)) return isa;
  }
  return Status::Unsupported(
      "cpu backend: this CPU lacks AVX2, FMA or F16C, which the cpu kernels need; use the ref backend "
      "(slow) on this machine");
}

Result<CpuIsa> ChooseCpuIsa(std::string_view request) {
  if (request.empty() || request == "auto") return DetectCpuIsa();
  for (CpuIsa isa : {CpuIsa::kAvx2, CpuIsa::kAvxVnni, CpuIsa::kAvx512Vnni}) {
    if (request != CpuIsaName(isa)) continue;
    if (CpuSupportsIsa(isa)) return isa;
    Result<CpuIsa> best = DetectCpuIsa();
    return Status::Unsupported("cpu backend: ISA tier '" + std::string(request) + "' needs " + Missing(isa) +
                               ", which this CPU lacks; the best it runs is " +
                               (best.ok() ? std::string(CpuIsaName(*best)) : std::string("none (no AVX2)")) +
                               ": unset FORMIGA_CPU_ISA or ask for a lower tier");
  }
  return Status::InvalidArgument("cpu backend: unknown ISA tier '" + std::string(request) +
                                 "' (FORMIGA_CPU_ISA): choose auto, avx2, avx-vnni or avx512-vnni");
}

}  // namespace formiga
