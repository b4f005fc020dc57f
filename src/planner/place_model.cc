#include "planner/place_model.h"

#include <algorithm>
#include <optional>

#include "planner/units.h"

namespace formiga::planner {
namespace {

bool IsStrategy(const DeviceMap& m) { return !m.strategy.empty(); }

// "123MiB": a size the flags read back, rounded up.
std::string FlagBytes(uint64_t bytes) { return std::to_string((bytes + kMiB - 1) / kMiB) + "MiB"; }

using Budgets = std::vector<std::pair<std::string, uint64_t>>;

// Whether every device with a known budget holds its share.
bool FitsBudgets(const PlacementMemory& m, const std::map<std::string, uint64_t>& budgets, uint64_t host_budget) {
  for (const DeviceShare& s : m.devices) {
    if (s.host) {
      if (host_budget > 0 && s.total() > host_budget) return false;
      continue;
    }
    const auto b = budgets.find(s.device);
    if (b != budgets.end() && s.total() > b->second) return false;
  }
  return true;
}

// The layers [L - k, L) over `order` (k = min(n, L); the output head too when
// n > L), packed as `strategy` says with the per-device costs `cost`
// estimates; nullopt when they do not fit.
struct Costs {
  std::vector<uint64_t> layer;  // weights + KV of each layer
  uint64_t stage = 0;           // a device's scratch and metadata
  uint64_t output = 0;          // the output head's weights and logits
};

std::optional<ModuleDevices> Pack(int64_t L, int64_t n, const std::string& strategy, const Budgets& order,
                                  const Costs& cost) {
  ModuleDevices d;
  d.layers.assign(static_cast<size_t>(L), "cpu");
  const int64_t k = std::min(n, L);
  const bool output = n > L;
  const size_t G = order.size();
  std::vector<uint64_t> used(G, 0);
  std::vector<int64_t> count(G, 0);
  size_t last = 0;
  if (strategy == "balanced") {
    int64_t il = L - k;
    for (size_t g = 0; g < G; ++g) {
      const int64_t share = k / static_cast<int64_t>(G) + (static_cast<int64_t>(g) < k % static_cast<int64_t>(G) ? 1 : 0);
      for (int64_t i = 0; i < share; ++i, ++il) {
        used[g] += cost.layer[static_cast<size_t>(il)] + (count[g] == 0 ? cost.stage : 0);
        ++count[g];
        d.layers[static_cast<size_t>(il)] = order[g].first;
        last = g;
      }
      if (used[g] > order[g].second) return std::nullopt;
    }
  } else {
    size_t g = 0;
    for (int64_t il = L - k; il < L; ++il) {
      for (;; ++g) {
        if (g == G) return std::nullopt;
        const uint64_t c = cost.layer[static_cast<size_t>(il)] + (count[g] == 0 ? cost.stage : 0);
        if (used[g] + c <= order[g].second) {
          used[g] += c;
          break;
        }
      }
      ++count[g];
      d.layers[static_cast<size_t>(il)] = order[g].first;
      last = g;
    }
  }
  if (output) {
    if (k == 0 || used[last] + cost.output > order[last].second) return std::nullopt;
    d.output = order[last].first;
  }
  return d;
}

std::string LayersOn(const ModuleDevices& d) {
  std::map<std::string, int> n;
  for (const std::string& dev : d.layers) ++n[dev];
  std::string s;
  for (const auto& [dev, k] : n) s += (s.empty() ? "" : ", ") + std::to_string(k) + " layers on " + dev;
  return s + ", output head on " + d.output + ", embedding on " + d.embed;
}

// What would fit instead, computed with the same prediction: the placement
// the auto strategy finds for these GPUs, a q8_0 KV cache, a shorter context.
std::string Advice(const ModelConfig& c, const ModelWeights& w, const EngineShape& shape, uint64_t meta,
                   const ModuleDevices& devices, const std::map<std::string, uint64_t>& budgets,
                   uint64_t host_budget, const std::string& failing) {
  std::vector<std::string> would;
  Budgets gpus;
  for (const std::string& dev : devices.Devices()) {
    if (dev == "cpu") continue;
    if (auto b = budgets.find(dev); b != budgets.end()) gpus.push_back(*b);
  }
  if (!gpus.empty()) {
    const ModuleDevices fit = StrategyLayout(c, w, shape, meta, "auto", gpus);
    const PlacementMemory m = PredictPlacement(c, w, shape, fit, meta);
    if (FitsBudgets(m, budgets, host_budget)) {
      int64_t n = 0;
      for (const std::string& dev : fit.layers) n += dev != "cpu";
      if (fit.output != "cpu") ++n;
      if (gpus.size() == 1 && gpus[0].first == "cuda:0") {
        would.push_back("--gpu-layers " + std::to_string(n) + " (" + LayersOn(fit) + ")");
      } else {
        would.push_back("--device-map auto (" + LayersOn(fit) + ")");
      }
    }
  }
  if (failing != "cpu") {
    const PlacementMemory here = PredictPlacement(c, w, shape, devices, meta);  // owns what Find points into
    const DeviceShare* s = here.Find(failing);
    if (s != nullptr) {
      would.push_back("this placement where " + failing + " has " + FlagBytes(s->total()) + " usable");
    }
  }
  auto fits_with = [&](const EngineShape& e) {
    return FitsBudgets(PredictPlacement(c, w, e, devices, meta), budgets, host_budget);
  };
  if (shape.kv_type == DType::kF16 && c.head_dim % 32 == 0) {
    EngineShape e = shape;
    e.kv_type = DType::kQ8_0;
    if (fits_with(e)) would.push_back("--kv-type q8_0");
  }
  if (const int64_t ctx = LongestFittingContext(shape, fits_with); ctx > 0) {
    would.push_back("--ctx " + std::to_string(ctx));
  }
  std::string msg = "; what would fit: ";
  if (would.empty()) {
    return msg + "nothing at this size: use a smaller quantization (formiga quantize, or formiga plan --quant auto), "
                 "or a machine with more memory";
  }
  for (size_t i = 0; i < would.size(); ++i) msg += (i ? ", or " : "") + would[i];
  return msg + " (formiga plan -m MODEL shows the whole table)";
}

}  // namespace

Result<PlacementRequest> RequestFromFlags(const PlacementFlags& f, int64_t n_layers) {
  PlacementRequest r;
  if (!f.device_map.empty() && f.gpu_layers >= 0) {
    return Status::InvalidArgument("give either --device-map or --gpu-layers, not both");
  }
  if (f.gpu_layers < -1) return Status::InvalidArgument("--gpu-layers must be 0 or more");
  std::optional<PlanFile> plan;
  if (!f.plan.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(plan, ReadPlanFile(f.plan));
    r.max_memory = plan->max_memory;
  }
  if (!f.max_memory.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(r.max_memory, ParseMaxMemory(f.max_memory));
  }
  bool names_gpu = false;
  for (const auto& [dev, bytes] : r.max_memory) names_gpu |= dev != "cpu";
  if (!f.device_map.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(r.map, ParseDeviceMap(f.device_map));
    r.where = "--device-map";
  } else if (f.gpu_layers >= 0) {
    r.map = GpuLayersMap(f.gpu_layers, n_layers);
    r.where = "--gpu-layers " + std::to_string(f.gpu_layers);
  } else if (plan && (!plan->device_map.entries.empty() || !plan->device_map.strategy.empty())) {
    r.map = plan->device_map;
    r.where = "--plan " + f.plan;
  } else if (names_gpu) {
    r.map.strategy = "auto";
    r.where = f.max_memory.empty() ? "--plan " + f.plan : "--max-memory " + f.max_memory;
  } else {
    r.map.entries.push_back({"", "cpu"});
    r.where = "the default placement";
  }
  return r;
}

ModuleDevices StrategyLayout(const ModelConfig& c, const ModelWeights& w, const EngineShape& shape, uint64_t meta,
                             const std::string& strategy, const Budgets& gpu_budgets) {
  const int64_t L = c.n_layers;
  ModuleDevices cpu;
  cpu.layers.assign(static_cast<size_t>(L), "cpu");
  if (gpu_budgets.empty() || L <= 0) return cpu;
  Budgets order = gpu_budgets;
  if (strategy == "balanced_low_0" && order.size() > 1) std::rotate(order.begin(), order.begin() + 1, order.end());
  // Per-part costs for the packing, read off the prediction itself: the last
  // layer alone on the first GPU, then with the output head.
  const std::string& g0 = order[0].first;
  ModuleDevices probe = cpu;
  probe.layers.back() = g0;
  const uint64_t one = PredictPlacement(c, w, shape, probe, meta).Find(g0)->total();
  probe.output = g0;
  const uint64_t with_output = PredictPlacement(c, w, shape, probe, meta).Find(g0)->total();
  Costs cost;
  const uint64_t kv_layer = PredictPlacement(c, w, shape, probe, meta).Find(g0)->kv_cache;
  for (int64_t il = 0; il < L; ++il) cost.layer.push_back(w.layer_bytes[static_cast<size_t>(il)] + kv_layer);
  cost.stage = one - std::min(one, cost.layer.back());
  cost.output = with_output - one;
  std::map<std::string, uint64_t> budgets(gpu_budgets.begin(), gpu_budgets.end());
  for (int64_t n = L + 1; n > 0; --n) {
    std::optional<ModuleDevices> d = Pack(L, n, strategy, order, cost);
    if (d && FitsBudgets(PredictPlacement(c, w, shape, *d, meta), budgets, 0)) return *d;
  }
  return cpu;
}

Result<PlacementDecision> DecidePlacement(const ModelConfig& c, const ModelWeights& w, const EngineShape& shape,
                                          uint64_t meta, const PlacementRequest& req, Backend& host,
                                          const DeviceFactory& factory) {
  PlacementDecision d;
  std::map<std::string, Backend*> backends = {{"cpu", &host}};
  // A device's budget: min(--max-memory, free - reserve); unknown when neither can be had.
  auto budget_of = [&](const std::string& dev, Backend& be) {
    std::optional<uint64_t> b;
    if (auto cap = req.max_memory.find(dev); cap != req.max_memory.end()) b = cap->second;
    Result<DeviceMemory> info = be.MemoryInfo();
    if (info.ok()) {
      const uint64_t usable = info->free_bytes > req.device_reserve ? info->free_bytes - req.device_reserve : 0;
      d.notes.push_back(dev + ": " + FormatBytes(info->free_bytes) + " free of " + FormatBytes(info->total_bytes) +
                        ", " + FormatBytes(req.device_reserve) + " kept free");
      b = b ? std::min(*b, usable) : usable;
    } else if (!b) {
      d.notes.push_back(dev + ": free memory unknown (" + info.status().message() + "): not checked");
    }
    if (b) d.budgets[dev] = *b;
  };

  if (IsStrategy(req.map)) {
    std::vector<std::string> names;
    for (const auto& [dev, bytes] : req.max_memory) {
      if (dev != "cpu") names.push_back(dev);
    }
    const bool probe = names.empty();
    if (probe) {
      for (int i = 0; i < 16; ++i) names.push_back("cuda:" + std::to_string(i));
    }
    Budgets gpus;
    for (const std::string& dev : names) {
      Result<Backend*> be = factory(dev);
      if (!be.ok()) {
        if (gpus.empty() && (probe || dev == names.front())) {
          d.notes.push_back(req.where + " (" + req.map.strategy + "): no GPU can be used (" + dev + ": " +
                            be.status().message() + "): everything runs on the cpu");
        }
        if (probe) break;
        continue;
      }
      backends[dev] = *be;
      budget_of(dev, **be);
      if (auto b = d.budgets.find(dev); b != d.budgets.end()) gpus.push_back(*b);
    }
    d.devices = StrategyLayout(c, w, shape, meta, req.map.strategy, gpus);
    if (!gpus.empty()) d.notes.push_back(req.where + " (" + req.map.strategy + "): " + LayersOn(d.devices));
  } else {
    FORMIGA_ASSIGN_OR_RETURN(d.devices, ResolveDeviceMap(req.map, c.n_layers, req.where));
    for (const std::string& dev : d.devices.Devices()) {
      if (backends.count(dev) != 0) continue;
      Result<Backend*> be = factory(dev);
      if (!be.ok()) {
        FORMIGA_RETURN_IF_ERROR(CheckPlacementSupported(req.map, req.where, be.status().message()));
        return be.status().WithContext(req.where + " places layers on " + dev);
      }
      backends[dev] = *be;
      budget_of(dev, **be);
    }
  }

  // The check, before anything is allocated.
  d.memory = PredictPlacement(c, w, shape, d.devices, meta);
  for (const DeviceShare& s : d.memory.devices) {
    if (s.host) continue;
    const auto b = d.budgets.find(s.device);
    if (b == d.budgets.end() || s.total() <= b->second) continue;
    return Status::ResourceExhausted(
        req.where + " puts " + std::to_string(s.layers.size()) + " layers" + (s.output ? " and the output head" : "") +
        " on " + s.device + ", which needs " + FormatBytes(s.total()) + " there (" + s.Breakdown() + ") but " +
        s.device + " has " + FormatBytes(b->second) + " usable" +
        Advice(c, w, shape, meta, d.devices, d.budgets, req.host_budget, s.device));
  }
  const DeviceShare& h = d.memory.devices.front();
  if (req.host_budget > 0 && h.total() > req.host_budget) {
    return Status::ResourceExhausted(
        "the model and context do not fit in memory: formiga needs about " + FormatBytes(h.total()) +
        " of host memory (" + h.Breakdown() + "; KV cache for " + std::to_string(shape.max_seqs) + " x " +
        std::to_string(shape.n_ctx) + " tokens in " + DTypeName(shape.kv_type) + ") but " +
        FormatBytes(req.host_budget) + " is available (" + req.host_budget_source + ")" +
        Advice(c, w, shape, meta, d.devices, d.budgets, req.host_budget, "cpu"));
  }

  auto part = [&](const std::string& dev) { return ModelPlacement::Part{backends.at(dev), dev}; };
  d.placement.embed = part(d.devices.embed);
  for (const std::string& dev : d.devices.layers) d.placement.layers.push_back(part(dev));
  d.placement.output = part(d.devices.output);
  return d;
}

}  // namespace formiga::planner
