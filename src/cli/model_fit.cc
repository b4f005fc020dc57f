#include "cli/model_fit.h"

#include "planner/weights.h"

namespace formiga::cli {

Result<planner::PlacementDecision> PlaceModel(const PlacementArgs& args, const GgufFile& file,
                                              const ModelConfig& config, bool ctx_given, bool kv_given,
                                              EngineOptions* eo, Backend& host,
                                              std::vector<std::unique_ptr<Backend>>* devices) {
  using namespace planner;
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
  }
  FORMIGA_ASSIGN_OR_RETURN(PlacementRequest req, RequestFromFlags(args, config.n_layers));
  const auto cpu = req.max_memory.find("cpu");
  req.host_budget = CpuMemoryBudget(cpu == req.max_memory.end() ? 0 : cpu->second, &req.host_budget_source);
  EngineShape shape;
  shape.n_ctx = eo->n_ctx;
  shape.max_seqs = eo->max_seqs;
  shape.block_size = eo->block_size;
  shape.n_blocks = eo->n_blocks;
  shape.max_batch_tokens = eo->max_batch_tokens;
  shape.kv_type = eo->kv_type;
  // Each GPU the placement asks for is made once; the strategies probe
  // cuda:0, cuda:1, ... until one cannot be had.
  const DeviceFactory factory = [devices](const std::string& dev) -> Result<Backend*> {
    if (dev.rfind("cuda:", 0) != 0) return Status::InvalidArgument("unknown device " + dev);
    FORMIGA_ASSIGN_OR_RETURN(std::unique_ptr<Backend> be, MakeCudaBackend(std::stoi(dev.substr(5))));
    devices->push_back(std::move(be));
    return devices->back().get();
  };
  return DecidePlacement(config, weights, shape, file.data_offset(), req, host, factory);
}

}  // namespace formiga::cli
