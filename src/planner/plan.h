// The plan: where every layer goes, what each device holds (weights, KV,
// activations, gradients, optimizer states, overhead) against its capacity,
// the speed that memory bandwidth and FLOP/s allow, and the cost — for
// inference or training. `formiga plan` prints it; `formiga run --plan`
// reads its JSON back.
//
// Thread safety: pure functions over plain values.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"
#include "planner/hardware.h"
#include "planner/memory.h"
#include "planner/prices.h"
#include "planner/weights.h"

namespace formiga {
class GgufFile;
}

namespace formiga::planner {

// The model to size: a preset, an HF folder or a GGUF file.
struct ModelSource {
  std::string label;              // preset name or path
  ModelConfig config;
  std::shared_ptr<const GgufFile> file;  // when sized from a GGUF
};
// "llama-7b" (preset), a directory with config.json, or a .gguf file.
Result<ModelSource> OpenModelSource(const std::string& what);

struct InferenceShape {
  int64_t n_ctx = 4096;
  int64_t seqs = 1;
  DType kv_type = DType::kF16;
  int64_t max_batch_tokens = 512;
  int64_t prompt_tokens = 0;  // 0: worst case (a prompt filling a whole engine step)
};

// Speed model: roofline x efficiency (docs/planner.md#calibration).
struct Efficiency {
  double decode_bandwidth = 0.6;  // achieved / peak memory bandwidth when decoding
  double prefill_flops = 0.4;     // achieved / peak FLOP/s when prefilling
};
struct EfficiencyTable {
  Efficiency cpu{0.6, 0.15}, gpu{0.7, 0.5}, unified{0.7, 0.5};
  std::string source = "built-in defaults";
  const Efficiency& For(DeviceKind k) const {
    return k == DeviceKind::kCpu ? cpu : k == DeviceKind::kGpu ? gpu : unified;
  }
};
// Reads "efficiency" from a catalog JSON (keys cpu/gpu/unified with
// decode_bandwidth and prefill_flops); defaults for what is missing.
EfficiencyTable ParseEfficiency(const nlohmann::json& catalog_json);

struct PlanOptions {
  double headroom = 0.05;                     // fraction of every device's usable memory kept free
  std::map<std::string, uint64_t> max_memory; // label ("cpu", "cuda:0") -> cap, as accelerate's max_memory
  bool allow_cpu_offload = true;              // layers may go to CPU RAM when accelerators are full
  bool formiga_cpu_engine = true;             // CPU-only: size formiga's own engine exactly (tokenizer, runtime)
  std::optional<TrainingShape> training;      // set: plan a training step instead of inference
};

struct DeviceUsage {
  std::string label;       // "cuda:0", "cpu"
  std::string device;      // catalog id
  DeviceKind kind = DeviceKind::kGpu;
  uint64_t capacity = 0;   // memory - reserved
  uint64_t budget = 0;     // capacity (or max_memory) less headroom
  uint64_t weights = 0, kv_cache = 0, activations = 0, gradients = 0, optimizer = 0, overhead = 0;
  std::vector<int64_t> layers;
  bool embedding = false, output = false;
  double seconds_per_token_decode = 0;   // this device's share of one decode step
  double seconds_per_token_prefill = 0;
  uint64_t total() const { return weights + kv_cache + activations + gradients + optimizer + overhead; }
};

struct QuantOption {
  std::string type;
  uint64_t weight_bytes = 0;
  double bits_per_weight = 0;
  uint64_t total_bytes = 0;
  bool fits = false;
  bool fits_on_accelerators = false;
  double decode_tps = 0;
  double usd_per_mtok = 0;
};

struct Plan {
  std::string model;
  int64_t parameters = 0;
  std::string weight_type;
  double bits_per_weight = 0;
  uint64_t weight_bytes = 0;
  std::string mode = "inference";  // or "training"
  std::string hardware;
  InferenceShape inference;
  std::optional<TrainingShape> training;
  std::optional<TrainingMemory> training_memory;
  std::optional<CpuRunMemory> cpu_run;   // CPU-only inference on formiga's engine
  std::vector<DeviceUsage> devices;
  std::vector<std::pair<std::string, std::string>> device_map;  // "token_embd"/"blk.N"/"output" -> label
  bool fits = false;
  bool fits_on_accelerators = false;
  uint64_t needed_bytes = 0;   // sum over devices
  uint64_t budget_bytes = 0;   // sum of budgets
  std::string verdict;         // one line
  double decode_tps = 0, prefill_tps = 0;
  Cost cost;
  double usd_per_mtok = 0;
  std::vector<std::string> suggestions;  // when it does not fit (or barely)
  std::vector<QuantOption> alternatives; // --quant auto / lists
};

// Plans `weights` (one storage type) of `source` on `hw`.
Result<Plan> MakePlan(const ModelSource& source, const ModelWeights& weights, const HardwareSetup& hw,
                      const InferenceShape& shape, const PlanOptions& options, const EfficiencyTable& eff,
                      const PriceTable& prices);

// Weights of `source` as `type` ("file" = as stored in the GGUF).
Result<ModelWeights> SourceWeights(const ModelSource& source, const std::string& type);

// Plans every type of `types` and returns the best quality that fits (on the
// accelerators alone when there are any, else anywhere) with the others
// ranked in `alternatives`; suggestions filled when none fits.
Result<Plan> PlanBestType(const ModelSource& source, const std::vector<std::string>& types, const HardwareSetup& hw,
                          const InferenceShape& shape, const PlanOptions& options, const EfficiencyTable& eff,
                          const PriceTable& prices);

// JSON of a plan (what --json prints and --out writes; read back by ReadPlanFile).
nlohmann::json PlanToJson(const Plan& plan);

}  // namespace formiga::planner
