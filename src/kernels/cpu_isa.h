// Instruction-set tiers of the cpu backend: which build of its integer
// MatMul kernels runs, chosen once when the backend is made.
//
// Every integer MatMul kernel (cpu_matmul_q4x8.cc: Q4_0, Q5_0, Q8_0;
// cpu_matmul_q8.cc: Q4_1, Q5_1; cpu_matmul_k8.cc: Q4_K, Q5_K, Q6_K;
// cpu_matmul_k.cc: Q2_K, Q3_K) is one source compiled once per tier
// (src/kernels/isa/): the tiers differ only in the int8 dot-product step
// (AVX2: vpmaddubsw + vpmaddwd; the VNNI tiers: vpdpbusd / vpdpwssd, 256
// bits wide). The integer sums are exact in every tier, so every tier gives
// the same bits (proven on any AVX2 machine by cpu_isa_test, which runs the
// VNNI build through SIMDe's emulation of vpdpbusd; see docs/kernels.md).
//
// NOTE: this header and cpu_isa.cc are baseline x86-64 (no -mavx2): the
// detection must run before any tier's instruction can.
//
// Thread safety: every function here is thread-safe (no state).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "kernels/backend.h"

namespace formiga {

// In increasing order; each tier needs everything the lower ones need.
enum class CpuIsa {
  kAvx2 = 0,        // AVX2 + FMA + F16C (every x86-64 since ~2013): the baseline
  kAvxVnni = 1,     // + AVX-VNNI (VEX vpdpbusd: Alder Lake and later, Zen 5)
  kAvx512Vnni = 2,  // + AVX512F/BW/VL + AVX512_VNNI (Ice Lake and later Xeons, Zen 4+)
};

// "avx2", "avx-vnni", "avx512-vnni": the names FORMIGA_CPU_ISA accepts.
const char* CpuIsaName(CpuIsa isa);

// The best tier this CPU and OS support (the OS must save the AVX / AVX-512
// register state: XGETBV), or Unsupported when not even AVX2/FMA/F16C.
Result<CpuIsa> DetectCpuIsa();

// Whether this CPU and OS can run `isa`'s kernels.
bool CpuSupportsIsa(CpuIsa isa);

// The tier to run for a request: "" or "auto" = DetectCpuIsa(); a tier name
// = that tier, InvalidArgument for an unknown name, Unsupported (saying what
// the CPU lacks and what it has) for a tier this CPU cannot run.
Result<CpuIsa> ChooseCpuIsa(std::string_view request);

// MakeCpuBackend(n_threads) (backend.h) runs ChooseCpuIsa(getenv
// FORMIGA_CPU_ISA): the best tier unless that variable forces one (for A/B
// runs on one machine). This one takes the tier explicitly (from
// ChooseCpuIsa; Unsupported if this CPU cannot run it).
Result<std::unique_ptr<Backend>> MakeCpuBackend(int n_threads, CpuIsa isa);

// The tier a backend made by MakeCpuBackend runs; nullopt for any other backend.
std::optional<CpuIsa> CpuBackendIsa(const Backend& backend);

}  // namespace formiga
