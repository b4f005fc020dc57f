// The planner's side of opening a model: --plan, --device-map and
// --max-memory (HF accelerate's meaning) are parsed and obeyed, and a model
// or context that will not fit in RAM is refused with the planner's
// explanation before the engine allocates (instead of the OOM killer).
#pragma once

#include <string>

#include "core/status.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "runtime/engine.h"

namespace formiga::cli {

struct PlacementArgs {
  std::string plan;        // --plan plan.json
  std::string device_map;  // --device-map
  std::string max_memory;  // --max-memory cpu=…,cuda:0=…
};

// Applies a plan's context / KV type where the user gave none (`ctx_given`,
// `kv_given`), refuses CUDA placements (CPU-only build) and checks the fit.
Status ApplyPlacementAndCheckFits(const PlacementArgs& args, const GgufFile& file, const ModelConfig& config,
                                  bool ctx_given, bool kv_given, EngineOptions* engine_options);

}  // namespace formiga::cli
