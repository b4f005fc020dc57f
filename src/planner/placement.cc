#include "planner/placement.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/process_memory.h"
#include "planner/hardware.h"
#include "planner/units.h"

namespace formiga::planner {
namespace {

std::string Trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// "0" -> "cuda:0", "cuda" -> "cuda:0", "cpu" -> "cpu".
Result<std::string> NormalizeDevice(std::string d) {
  d = Trim(d);
  for (char& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (d == "cpu") return d;
  if (d == "cuda" || d == "gpu") return std::string("cuda:0");
  if (!d.empty() && std::isdigit(static_cast<unsigned char>(d[0]))) d = "cuda:" + d;
  if (d.rfind("cuda:", 0) == 0 && d.size() > 5) {
    for (size_t i = 5; i < d.size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>(d[i]))) break;
      if (i + 1 == d.size()) return d;
    }
  }
  if (d == "disk" || d == "meta") {
    return Status::Unsupported("device '" + d + "': formiga does not offload to disk; use cpu (weights are memory-mapped)");
  }
  return Status::InvalidArgument("unknown device '" + d + "' (use cpu, cuda:N or N)");
}

// accelerate module names -> GGUF names.
std::string NormalizeModule(const std::string& m) {
  if (m == "model.embed_tokens" || m == "transformer.wte" || m == "transformer.word_embeddings") return "token_embd";
  if (m == "lm_head") return "output";
  if (m == "model.norm" || m == "transformer.ln_f") return "output_norm";
  for (const char* prefix : {"model.layers.", "transformer.h.", "transformer.layers."}) {
    const std::string p = prefix;
    if (m.rfind(p, 0) == 0) return "blk." + m.substr(p.size());
  }
  return m;
}

}  // namespace

Result<std::map<std::string, uint64_t>> ParseMaxMemory(const std::string& text) {
  std::map<std::string, uint64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    item = Trim(item);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos && item.rfind("cpu:", 0) == 0) eq = 3;
    if (eq == std::string::npos) {
      return Status::InvalidArgument("--max-memory entry '" + item + "' must be DEVICE=SIZE (e.g. cpu=30GiB,cuda:0=10GiB)");
    }
    FORMIGA_ASSIGN_OR_RETURN(std::string dev, NormalizeDevice(item.substr(0, eq)));
    FORMIGA_ASSIGN_OR_RETURN(uint64_t bytes, ParseBytes(item.substr(eq + 1)));
    out[dev] = bytes;
  }
  if (out.empty()) return Status::InvalidArgument("--max-memory is empty (write e.g. cpu=30GiB,cuda:0=10GiB)");
  return out;
}

std::vector<std::string> DeviceMap::Devices() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : entries) {
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

namespace {
Result<DeviceMap> DeviceMapFromJson(const nlohmann::json& j, const std::string& where) {
  DeviceMap m;
  if (j.is_string()) {
    const std::string s = j.get<std::string>();
    if (s == "auto" || s == "sequential" || s == "balanced" || s == "balanced_low_0") {
      m.strategy = s;
      return m;
    }
    FORMIGA_ASSIGN_OR_RETURN(std::string d, NormalizeDevice(s));
    m.entries.push_back({"", d});
    return m;
  }
  if (!j.is_object()) return Status::InvalidArgument(where + ": a device map is a strategy, a device or an object");
  for (auto& [k, v] : j.items()) {
    std::string dev = v.is_number_integer() ? std::to_string(v.get<int64_t>()) : v.is_string() ? v.get<std::string>() : "";
    if (dev.empty()) return Status::InvalidArgument(where + ": device of '" + k + "' must be a string or a GPU number");
    // A plan's "*" entry names every GPU in words; keep the label only.
    if (dev.rfind("every GPU", 0) == 0) dev = "cuda:0";
    FORMIGA_ASSIGN_OR_RETURN(std::string d, NormalizeDevice(dev));
    m.entries.push_back({k == "*" ? "" : NormalizeModule(k), d});
  }
  return m;
}
}  // namespace

Result<DeviceMap> ParseDeviceMap(const std::string& text_in) {
  const std::string text = Trim(text_in);
  if (text.empty()) return Status::InvalidArgument("--device-map is empty");
  if (text[0] == '{') {
    try {
      return DeviceMapFromJson(nlohmann::json::parse(text), "--device-map");
    } catch (const nlohmann::json::exception& e) {
      return Status::InvalidArgument(std::string("--device-map: not valid JSON: ") + e.what());
    }
  }
  std::ifstream in(text);
  if (in && text.find('.') != std::string::npos) {
    try {
      nlohmann::json j;
      in >> j;
      return DeviceMapFromJson(j, text);
    } catch (const nlohmann::json::exception& e) {
      return Status::InvalidArgument(text + ": not valid JSON: " + e.what());
    }
  }
  return DeviceMapFromJson(nlohmann::json(text), "--device-map");
}

Result<PlanFile> ReadPlanFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open plan " + path + " (write one with formiga plan ... --out " + path + ")");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || j.value("format", "") != "formiga plan v1") {
    return Status::InvalidArgument(path + ": not a formiga plan (format \"formiga plan v1\"); make one with formiga plan --out");
  }
  if (j.value("mode", "inference") != "inference") {
    return Status::InvalidArgument(path + ": this is a training plan; run/serve need an inference plan");
  }
  PlanFile p;
  p.model = j.value("model", "");
  p.parameters = j.value("parameters", int64_t{0});
  if (j.contains("inference")) {
    p.n_ctx = j["inference"].value("n_ctx", int64_t{0});
    p.seqs = j["inference"].value("seqs", int64_t{0});
    p.kv_type = j["inference"].value("kv_type", "");
  }
  if (j.contains("device_map")) {
    FORMIGA_ASSIGN_OR_RETURN(p.device_map, DeviceMapFromJson(j["device_map"], path));
  }
  if (j.contains("max_memory") && j["max_memory"].is_object()) {
    for (auto& [k, v] : j["max_memory"].items()) {
      FORMIGA_ASSIGN_OR_RETURN(std::string d, NormalizeDevice(k));
      if (!v.is_number_unsigned()) return Status::InvalidArgument(path + ": max_memory values are byte counts");
      p.max_memory[d] = v.get<uint64_t>();
    }
  }
  return p;
}

Status CheckPlacementSupported(const DeviceMap& map, const std::string& where, const std::string& cuda_unavailable) {
  if (cuda_unavailable.empty()) return Status::Ok();
  for (const auto& [module, dev] : map.entries) {
    if (dev != "cpu") {
      return Status::Unsupported(where + " places " + (module.empty() ? std::string("the model") : module) +
                                 " on " + dev +
                                 ", but CUDA placement is not available in this build of formiga or on this "
                                 "machine (" + cuda_unavailable + "): re-plan for the CPU (formiga plan "
                                 "--hardware local without GPUs, or --device-map cpu)");
    }
  }
  return Status::Ok();  // strategies (auto & co) resolve to the cpu: see ResolveDeviceMap
}

std::vector<std::string> ModuleDevices::Devices() const {
  std::vector<std::string> out;
  auto add = [&](const std::string& d) {
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  };
  add(embed);
  for (const std::string& d : layers) add(d);
  add(output);
  return out;
}

Result<ModuleDevices> ResolveDeviceMap(const DeviceMap& map, int64_t n_layers, const std::string& where) {
  ModuleDevices out;
  std::string all = "cpu";
  for (const auto& [module, dev] : map.entries) {
    if (module.empty()) all = dev;
  }
  out.embed = out.output = all;
  out.layers.assign(static_cast<size_t>(std::max<int64_t>(n_layers, 0)), all);
  std::string output_norm;
  for (const auto& [module, dev] : map.entries) {
    if (module.empty()) continue;
    if (module == "token_embd") {
      out.embed = dev;
    } else if (module == "output") {
      out.output = dev;
    } else if (module == "output_norm") {
      output_norm = dev;
    } else if (module.rfind("blk.", 0) == 0) {
      const std::string n = module.substr(4);
      const bool digits = !n.empty() && n.size() < 10 &&
                          std::all_of(n.begin(), n.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
      const int64_t il = digits ? std::stoll(n) : -1;
      if (il < 0 || il >= n_layers) {
        return Status::InvalidArgument(where + " places " + module + " but the model has " + std::to_string(n_layers) +
                                       " layers (blk.0 .. blk." + std::to_string(n_layers - 1) + ")");
      }
      out.layers[static_cast<size_t>(il)] = dev;
    } else if (module.size() >= 10 && module.compare(module.size() - 10, 10, "rotary_emb") == 0) {
      // accelerate lists the rotary embedding, which has no weights: nothing to place.
    } else {
      return Status::InvalidArgument(where + ": unknown module '" + module +
                                     "' (use token_embd, blk.N, output, output_norm or accelerate's names)");
    }
  }
  if (!output_norm.empty() && output_norm != out.output) {
    bool output_named = false;
    for (const auto& [module, dev] : map.entries) output_named |= module == "output";
    if (output_named) {
      return Status::InvalidArgument(where + " places output_norm on " + output_norm + " and output on " + out.output +
                                     ": the final norm and the output projection run together; give them one device");
    }
    out.output = output_norm;
  }
  return out;
}

DeviceMap GpuLayersMap(int64_t n_gpu_layers, int64_t n_layers) {
  DeviceMap m;
  m.entries.push_back({"", "cpu"});
  for (int64_t il = std::max<int64_t>(n_layers - n_gpu_layers, 0); il < n_layers; ++il) {
    m.entries.push_back({"blk." + std::to_string(il), "cuda:0"});
  }
  if (n_gpu_layers > n_layers) m.entries.push_back({"output", "cuda:0"});
  return m;
}

uint64_t CpuMemoryBudget(uint64_t cap, std::string* source) {
  if (cap > 0) {
    *source = "--max-memory cpu";
    return cap;
  }
  if (const char* env = std::getenv("FORMIGA_MAX_MEMORY"); env != nullptr && *env != '\0') {
    if (auto b = ParseBytes(env); b.ok()) {
      *source = "FORMIGA_MAX_MEMORY";
      return *b;
    }
  }
  *source = "available memory (MemAvailable + this process)";
  return MemAvailableBytes() + ReadProcessMemory().rss_bytes;
}

int64_t LongestFittingContext(const EngineShape& shape, const std::function<bool(const EngineShape&)>& fits) {
  int64_t lo = 0, hi = shape.n_ctx;  // fits(lo) holds (or lo = 0), fits(hi) does not
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    EngineShape s = shape;
    s.n_ctx = mid;
    s.n_blocks = 0;
    if (fits(s)) lo = mid; else hi = mid;
  }
  return lo >= 256 ? lo / 256 * 256 : 0;
}

Status CheckFits(const ModelConfig& c, const ModelWeights& w, const EngineShape& shape, uint64_t metadata_bytes,
                 uint64_t budget, const std::string& budget_source) {
  const CpuRunMemory m = PredictCpuRun(c, w, shape, metadata_bytes);
  if (budget == 0 || m.total() <= budget) return Status::Ok();
  std::string msg = "the model and context do not fit in memory: formiga needs about " + FormatBytes(m.total()) +
                    " (weights " + FormatBytes(m.weights) + ", KV cache " + FormatBytes(m.kv_cache) + " for " +
                    std::to_string(shape.max_seqs) + " x " + std::to_string(shape.n_ctx) + " tokens in " +
                    DTypeName(shape.kv_type) + ", activations " + FormatBytes(m.scratch + m.logits) +
                    ", tokenizer and runtime " + FormatBytes(m.tokenizer + m.file_header + m.runtime) + ") but " +
                    FormatBytes(budget) + " is available (" + budget_source + ")";
  std::vector<std::string> would;
  const int64_t ctx = LongestFittingContext(
      shape, [&](const EngineShape& s) { return PredictCpuRun(c, w, s, metadata_bytes).total() <= budget; });
  if (ctx > 0) would.push_back("--ctx " + std::to_string(ctx));
  if (shape.kv_type == DType::kF16 && c.head_dim % 32 == 0) {
    EngineShape s = shape;
    s.kv_type = DType::kQ8_0;
    if (PredictCpuRun(c, w, s, metadata_bytes).total() <= budget) would.push_back("--kv-type q8_0");
  }
  msg += "; what would fit: ";
  if (would.empty()) {
    msg += "nothing at this size: the weights alone need " + FormatBytes(m.weights) +
           " - use a smaller quantization (formiga quantize, or formiga plan --quant auto), or a machine with more memory";
  } else {
    for (size_t i = 0; i < would.size(); ++i) msg += (i ? ", or " : "") + would[i];
    msg += " (formiga plan -m MODEL shows the whole table)";
  }
  return Status::ResourceExhausted(msg);
}

}  // namespace formiga::planner
