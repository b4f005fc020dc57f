// What the runtime obeys: --max-memory (cpu=…,cuda:0=…), --device-map
// (auto | sequential | balanced | cpu | cuda:N | a JSON object of module ->
// device) with HF accelerate's meaning, plans written by `formiga plan
// --out`, and the fit check `formiga run` makes before it allocates.
//
// Thread safety: pure functions (CpuMemoryBudget reads /proc).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"
#include "planner/memory.h"
#include "planner/weights.h"

namespace formiga::planner {

// "cpu=30GiB,cuda:0=10GiB" (also "0=10GiB" for cuda:0, and "cpu:30GiB").
// Keys normalized to "cpu" / "cuda:N".
Result<std::map<std::string, uint64_t>> ParseMaxMemory(const std::string& text);

// A device map: module -> device. Keys "token_embd", "blk.N", "output" or
// accelerate's names ("model.embed_tokens", "model.layers.N", "lm_head",
// "model.norm"), "" for the whole model; values "cpu", "cuda:N" (or "N"),
// "disk" is refused.
struct DeviceMap {
  std::string strategy;  // "auto", "sequential", "balanced", "balanced_low_0" or "" (explicit)
  std::vector<std::pair<std::string, std::string>> entries;
  // Devices named anywhere in the map.
  std::vector<std::string> Devices() const;
};
// `text`: a strategy, a single device, a JSON object, or a path to a JSON file.
Result<DeviceMap> ParseDeviceMap(const std::string& text);

// What `formiga run/serve --plan plan.json` takes from a plan.
struct PlanFile {
  std::string model;
  int64_t parameters = 0;
  int64_t n_ctx = 0;
  int64_t seqs = 0;
  std::string kv_type;
  DeviceMap device_map;
  std::map<std::string, uint64_t> max_memory;
};
Result<PlanFile> ReadPlanFile(const std::string& path);

// A map that places anything on cuda:N where CUDA cannot be used is refused
// with a message saying so and why (never silently run on the CPU).
// `cuda_unavailable` is the reason (e.g. MakeCudaBackend's message); empty
// means CUDA is usable and the map is accepted.
Status CheckPlacementSupported(const DeviceMap& map, const std::string& where,
                               const std::string& cuda_unavailable = "this build of formiga is CPU only");

// The device ("cpu" or "cuda:N") of every part of a model, as a map places it.
struct ModuleDevices {
  std::string embed = "cpu";        // token_embd
  std::vector<std::string> layers;  // blk.N
  std::string output = "cpu";       // output_norm + output
  // Distinct devices, in order of first use.
  std::vector<std::string> Devices() const;
};

// Resolves `map` for a model of n_layers: "" (the whole model), "token_embd",
// "blk.N", "output" and "output_norm" (one part: they must agree); modules
// the map does not name go where "" says, else to the cpu. Strategies (auto,
// sequential, balanced) are resolved by planner/place_model.h against the
// devices' budgets; here they place everything on the cpu. `where` names
// the map's source in errors (unknown module, a layer the model lacks).
Result<ModuleDevices> ResolveDeviceMap(const DeviceMap& map, int64_t n_layers, const std::string& where);

// --gpu-layers N, as llama.cpp's -ngl: the last N layers on cuda:0, the
// output head too when N > n_layers (so -ngl 99 offloads everything), the
// embedding on the cpu.
DeviceMap GpuLayersMap(int64_t n_gpu_layers, int64_t n_layers);

// Memory formiga may use on this machine: `cap` when > 0 (--max-memory
// cpu=…), else $FORMIGA_MAX_MEMORY, else MemAvailable plus what this process
// already has resident. `source` says which.
uint64_t CpuMemoryBudget(uint64_t cap, std::string* source);

// The longest context (n_ctx, a multiple of 256, at most shape.n_ctx - 1)
// for which `fits` holds, the rest of `shape` kept (n_blocks re-derived);
// 0 when none of 256 or more does. `fits` must be monotone in n_ctx.
int64_t LongestFittingContext(const EngineShape& shape, const std::function<bool(const EngineShape&)>& fits);

// OK when formiga's CPU engine for this model and shape (PredictCpuRun) fits
// in `budget` bytes (every part on the host; the runtime's check, device by
// device, is planner/place_model.h DecidePlacement); else ResourceExhausted with the breakdown and what would
// fit (the longest context, a q8_0 KV cache, a smaller type).
Status CheckFits(const ModelConfig& config, const ModelWeights& weights, const EngineShape& shape,
                 uint64_t metadata_bytes, uint64_t budget, const std::string& budget_source);

}  // namespace formiga::planner
