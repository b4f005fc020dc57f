// The planner's side of opening a model: --plan, --device-map, --gpu-layers
// and --max-memory (HF accelerate's and llama.cpp's meanings) are parsed and
// obeyed, strategies (auto, balanced, ...) resolved against each device's
// free memory, and a placement that will not fit — on any GPU or in host
// RAM — is refused with the planner's explanation before anything is
// allocated (instead of an out-of-memory error half way, or the OOM killer).
// The decision itself is planner::DecidePlacement (planner/place_model.h),
// tested there with stand-in devices.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "planner/place_model.h"
#include "runtime/engine.h"

namespace formiga::cli {

using PlacementArgs = planner::PlacementFlags;

// Applies a plan's context / KV type where the user gave none (`ctx_given`,
// `kv_given`), decides the placement for the engine `engine_options`
// describe, and checks that every device and the host hold their share.
// GPUs are made with MakeCudaBackend (owned by `devices`); `host` runs the
// cpu parts.
Result<planner::PlacementDecision> PlaceModel(const PlacementArgs& args, const GgufFile& file,
                                              const ModelConfig& config, bool ctx_given, bool kv_given,
                                              EngineOptions* engine_options, Backend& host,
                                              std::vector<std::unique_ptr<Backend>>* devices);

}  // namespace formiga::cli
