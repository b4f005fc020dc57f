#include "cli/model_fit.h"

#include "planner/weights.h"

namespace formiga::cli {

Result<ResolvedPlacement> ResolvePlacement(const PlacementArgs& args, int64_t n_layers) {
  using namespace planner;
  ResolvedPlacement r;
  if (!args.device_map.empty() && args.gpu_layers >= 0) {
    return Status::InvalidArgument("give either --device-map or --gpu-layers, not both");
  }
  if (args.gpu_layers < -1) return Status::InvalidArgument("--gpu-layers must be 0 or more");
  if (!args.device_map.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(r.map, ParseDeviceMap(args.device_map));
    r.where = "--device-map";
  } else if (args.gpu_layers >= 0) {
    r.map = GpuLayersMap(args.gpu_layers, n_layers);
    r.where = "--gpu-layers " + std::to_string(args.gpu_layers);
  } else if (!args.plan.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(PlanFile plan, ReadPlanFile(args.plan));
    r.map = plan.device_map;
    r.where = "--plan " + args.plan;
  } else {
    r.map.entries.push_back({"", "cpu"});
    r.where = "the default placement";
  }
  FORMIGA_ASSIGN_OR_RETURN(r.devices, ResolveDeviceMap(r.map, n_layers, r.where));
  return r;
}

Status ApplyPlacementAndCheckFits(const PlacementArgs& args, const GgufFile& file, const ModelConfig& config,
                                  bool ctx_given, bool kv_given, EngineOptions* eo) {
  using namespace planner;
  std::map<std::string, uint64_t> max_memory;
  FORMIGA_ASSIGN_OR_RETURN(ModelWeights weights, WeightsFromGguf(file, config, "file"));
  if (!args.plan.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(PlanFile plan, ReadPlanFile(args.plan));
    if (plan.parameters != 0 && plan.parameters != weights.parameters) {
      return Status::InvalidArgument("--plan " + args.plan + " was made for " + plan.model + " (" +
                                     std::to_string(plan.parameters) + " parameters), not this model (" +
                                     std::to_string(weights.parameters) + "): re-run formiga plan -m " + file.path() +
                                     " --out " + args.plan);
    }
    if (!ctx_given && plan.n_ctx > 0) eo->n_ctx = plan.n_ctx;
    if (!kv_given && !plan.kv_type.empty()) {
      if (auto t = ParseDType(plan.kv_type)) eo->kv_type = *t;
    }
    max_memory = plan.max_memory;
  }
  if (!args.max_memory.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(max_memory, ParseMaxMemory(args.max_memory));
  }
  std::string source;
  const auto cpu = max_memory.find("cpu");
  const uint64_t budget = CpuMemoryBudget(cpu == max_memory.end() ? 0 : cpu->second, &source);
  EngineShape shape;
  shape.n_ctx = eo->n_ctx;
  shape.max_seqs = eo->max_seqs;
  shape.block_size = eo->block_size;
  shape.n_blocks = eo->n_blocks;
  shape.max_batch_tokens = eo->max_batch_tokens;
  shape.kv_type = eo->kv_type;
  return CheckFits(config, weights, shape, file.data_offset(), budget, source);
}

}  // namespace formiga::cli
