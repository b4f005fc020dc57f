// The planner's side of opening a model: --plan, --device-map, --gpu-layers
// and --max-memory (HF accelerate's and llama.cpp's meanings) are parsed and
// obeyed, and a model or context that will not fit in RAM is refused with the
// planner's explanation before the engine allocates (instead of the OOM
// killer).
#pragma once

#include <string>

#include "core/status.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "planner/placement.h"
#include "runtime/engine.h"

namespace formiga::cli {

struct PlacementArgs {
  std::string plan;        // --plan plan.json
  std::string device_map;  // --device-map
  int64_t gpu_layers = -1; // --gpu-layers N (-1: not given)
  std::string max_memory;  // --max-memory cpu=…,cuda:0=…
};

// Where each part of the model runs: --device-map, else --gpu-layers, else
// the plan's map, else everything on the cpu. `where` names the source
// (for messages). Both --device-map and --gpu-layers is an error.
struct ResolvedPlacement {
  planner::DeviceMap map;
  planner::ModuleDevices devices;
  std::string where;
};
Result<ResolvedPlacement> ResolvePlacement(const PlacementArgs& args, int64_t n_layers);

// Applies a plan's context / KV type where the user gave none (`ctx_given`,
// `kv_given`) and checks the fit in host memory.
// NOTE: the fit check counts every part in host RAM even when some run on a
// GPU: conservative until the planner predicts the runtime's GPU split.
Status ApplyPlacementAndCheckFits(const PlacementArgs& args, const GgufFile& file, const ModelConfig& config,
                                  bool ctx_given, bool kv_given, EngineOptions* engine_options);

}  // namespace formiga::cli
