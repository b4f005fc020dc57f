// Deciding where a model runs, before anything is allocated: the device
// map's strategy (auto, sequential, balanced, balanced_low_0) resolved
// against each device's budget, every device's share predicted
// (planner/device_memory.h) and checked against its budget, and the
// ModelPlacement built from backends a factory makes for each device name.
//
// Budgets: a device's is min(--max-memory for it, the free memory its
// backend reports (Backend::MemoryInfo) less `device_reserve`); the host's is
// CpuMemoryBudget (--max-memory cpu, $FORMIGA_MAX_MEMORY, else MemAvailable +
// this process), against which only the host's share is counted.
//
// Strategies (the rule, docs/planner.md#placement): layers go to the GPUs as
// llama.cpp's -ngl puts them, the LAST N layers, plus the output head when
// every layer fits too; N is the largest that fits the budgets.
//   auto, sequential  the GPUs in order (cuda:0 first) each take as many of
//                     those layers as fit, the output head with the last;
//   balanced          the N layers split evenly (contiguous) over the GPUs;
//   balanced_low_0    as sequential, cuda:0 filled last.
// The embedding stays on the cpu (a row lookup). HF accelerate puts the FIRST
// layers on the GPUs instead; formiga puts the last ones there so that the
// output head (the widest matmul) can join them with a single host -> device
// hop per forward. The GPUs a strategy uses: those --max-memory names, else
// every cuda:N the factory can make (cuda:0, cuda:1, ... until one fails).
// Where none can be made, everything stays on the cpu, with a note saying why.
//
// Thread safety: not thread-safe (the factory's backends are used).
// Ownership: the factory's backends must outlive the placement.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/placement.h"
#include "planner/device_memory.h"
#include "planner/memory.h"
#include "planner/placement.h"
#include "planner/weights.h"

namespace formiga::planner {

// A backend for "cuda:N" (the CLI: MakeCudaBackend; tests: TestDeviceBackends).
// The factory owns what it returns; an error means the device cannot be had.
using DeviceFactory = std::function<Result<Backend*>(const std::string& device)>;

// CUDA context, cuBLAS-free kernels and allocator slack kept free on a GPU.
constexpr uint64_t kDefaultDeviceReserve = 256ull << 20;

struct PlacementRequest {
  DeviceMap map;                           // a strategy, or explicit (ResolveDeviceMap)
  std::string where;                       // its source, for messages ("--device-map", "--plan p.json")
  std::map<std::string, uint64_t> max_memory;  // --max-memory (normalized: cpu, cuda:N)
  uint64_t device_reserve = kDefaultDeviceReserve;
  uint64_t host_budget = 0;                // 0: not checked
  std::string host_budget_source;
};

struct PlacementDecision {
  ModuleDevices devices;
  PlacementMemory memory;                  // the prediction the check used
  std::map<std::string, uint64_t> budgets; // device -> bytes (absent: unknown, not checked)
  ModelPlacement placement;
  std::vector<std::string> notes;          // what was decided and why (for --verbose)
};

// The placement flags of run/chat/serve/bench: --plan, --device-map,
// --gpu-layers (llama.cpp's -ngl), --max-memory (accelerate's max_memory).
struct PlacementFlags {
  std::string plan;         // --plan plan.json
  std::string device_map;   // --device-map
  int64_t gpu_layers = -1;  // --gpu-layers N (-1: not given)
  std::string max_memory;   // --max-memory cpu=…,cuda:0=…
};

// The request the flags make for a model of n_layers: --device-map, else
// --gpu-layers, else the plan's map, else --max-memory naming a GPU (auto,
// as accelerate reads it), else everything on the cpu; --max-memory, else
// the plan's. Both --device-map and --gpu-layers is an error. The host budget
// is left for the caller (CpuMemoryBudget).
Result<PlacementRequest> RequestFromFlags(const PlacementFlags& flags, int64_t n_layers);

// Resolves the request for `c` (the engine `shape`), checks that every device
// and the host fit, and builds the placement: `host` runs the cpu parts,
// `factory` makes the others. ResourceExhausted names the device that does
// not fit, its breakdown and budget, and what would fit (the largest
// --gpu-layers, --device-map auto with a --max-memory, --kv-type q8_0, a
// --ctx); Unsupported when a map names a device the factory cannot make.
Result<PlacementDecision> DecidePlacement(const ModelConfig& c, const ModelWeights& w, const EngineShape& shape,
                                          uint64_t metadata_bytes, const PlacementRequest& request, Backend& host,
                                          const DeviceFactory& factory);

// The layout a strategy gives for GPUs with these budgets (in the order
// given: cuda:0, cuda:1, ...): exposed for tests and `formiga plan`.
ModuleDevices StrategyLayout(const ModelConfig& c, const ModelWeights& w, const EngineShape& shape,
                             uint64_t metadata_bytes, const std::string& strategy,
                             const std::vector<std::pair<std::string, uint64_t>>& gpu_budgets);

}  // namespace formiga::planner
