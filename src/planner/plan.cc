#include "planner/plan.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "formats/gguf.h"
#include "planner/units.h"

namespace formiga::planner {
namespace {

// The OS's share of host RAM: the catalog's reserve, at most 1/8 of the RAM
// (a "cpu=1GiB" setup is not left with nothing).
uint64_t CpuReserve(const DeviceSpec& s) { return std::min(s.reserved_bytes, s.memory_bytes / 8); }

// NOTE: on accelerators the driver's share (CUDA context, the OS of a
// unified box) is shown as the device's "overhead" and counts against its
// memory; host RAM's reserve is simply not offered (the OS keeps it).
uint64_t Budget(const DeviceSlot& slot, const PlanOptions& o) {
  const bool cpu = slot.spec.kind == DeviceKind::kCpu;
  uint64_t cap = cpu ? slot.spec.memory_bytes - CpuReserve(slot.spec) : slot.spec.memory_bytes;
  auto it = o.max_memory.find(slot.label);
  // accelerate: max_memory is what the model may use, the context aside.
  if (it != o.max_memory.end()) return it->second + (cpu ? 0 : slot.spec.reserved_bytes);
  return static_cast<uint64_t>(static_cast<double>(cap) * (1.0 - o.headroom));
}

DeviceUsage NewUsage(const DeviceSlot& slot, const PlanOptions& o) {
  DeviceUsage u;
  u.label = slot.label;
  u.device = slot.spec.id;
  u.kind = slot.spec.kind;
  const bool cpu = slot.spec.kind == DeviceKind::kCpu;
  u.capacity = cpu ? slot.spec.memory_bytes - CpuReserve(slot.spec) : slot.spec.memory_bytes;
  u.overhead = cpu ? 0 : slot.spec.reserved_bytes;
  u.budget = Budget(slot, o);
  return u;
}

std::string ComputeType(const ModelWeights& w, DeviceKind k) {
  if (k == DeviceKind::kCpu) return "f32";
  return w.type == "f32" ? "f32" : "bf16";
}

// Seconds per decode step and per prefill token on each device, from the
// bytes it reads and the FLOPs it does (2 per weight per token).
void Speeds(const ModelSource& src, const ModelWeights& w, const HardwareSetup& hw, const InferenceShape& shape,
            const EfficiencyTable& eff, Plan* plan) {
  const ModelConfig& c = src.config;
  double decode_s = 0, prefill_s = 0;
  bool known = true;
  for (DeviceUsage& u : plan->devices) {
    const DeviceSpec* spec = u.label == "cpu" ? &hw.cpu.spec : nullptr;
    for (const DeviceSlot& s : hw.accelerators) {
      if (s.label == u.label) spec = &s.spec;
    }
    if (spec == nullptr || (u.weights == 0 && u.kv_cache == 0)) continue;
    const Efficiency& e = eff.For(u.kind);
    // Weight bytes read per step (token_embd is read by rows: ~0 unless tied).
    double bytes = static_cast<double>(u.weights);
    if (u.embedding && !w.tied_embeddings) bytes -= static_cast<double>(w.embedding_bytes);
    // KV read: on average half the context per sequence.
    bytes += static_cast<double>(u.kv_cache) / 2.0;
    if (spec->bandwidth_gbs > 0) {
      u.seconds_per_token_decode = bytes / (spec->bandwidth_gbs * 1e9 * e.decode_bandwidth);
    } else {
      known = false;
    }
    // Params on this device ~ weight bytes share of the model's.
    const double share = w.total_bytes ? static_cast<double>(u.weights) / static_cast<double>(w.total_bytes) : 0;
    const double flops = 2.0 * static_cast<double>(w.parameters) * share;
    const double tf = spec->Tflops(ComputeType(w, u.kind));
    if (tf > 0) u.seconds_per_token_prefill = flops / (tf * 1e12 * e.prefill_flops);
    decode_s += u.seconds_per_token_decode;
    prefill_s += u.seconds_per_token_prefill;
  }
  (void)c;
  // NOTE: layers on different devices run one after the other (pipeline),
  // so a step's time is the sum; a batch of `seqs` decodes shares one
  // weight read.
  plan->decode_tps = known && decode_s > 0 ? static_cast<double>(shape.seqs) / decode_s : 0;
  plan->prefill_tps = prefill_s > 0 ? 1.0 / prefill_s : 0;
}

std::string Gib(uint64_t b) { return FormatBytes(b); }

}  // namespace

Result<ModelSource> OpenModelSource(const std::string& what) {
  namespace fs = std::filesystem;
  ModelSource src;
  src.label = what;
  std::error_code ec;
  if (fs::is_directory(what, ec)) {
    FORMIGA_ASSIGN_OR_RETURN(src.config, ConfigFromHfDir(what));
    if (src.config.name.empty()) src.config.name = fs::path(what).filename().string();
    return src;
  }
  if (fs::is_regular_file(what, ec)) {
    if (fs::path(what).filename() == "config.json") {
      FORMIGA_ASSIGN_OR_RETURN(src.config, ConfigFromHfDir(fs::path(what).parent_path().string()));
      return src;
    }
    FORMIGA_ASSIGN_OR_RETURN(GgufFile f, GgufFile::Open(what));
    auto file = std::make_shared<GgufFile>(std::move(f));
    FORMIGA_ASSIGN_OR_RETURN(src.config, ConfigFromGguf(*file));
    src.file = std::move(file);
    return src;
  }
  auto preset = FindPreset(what);
  if (!preset.ok()) {
    return Status::NotFound("'" + what + "' is not a GGUF file, a Hugging Face folder or a preset: " +
                            preset.status().message());
  }
  src.config = *preset;
  return src;
}

Result<ModelWeights> SourceWeights(const ModelSource& source, const std::string& type) {
  if (source.file) return WeightsFromGguf(*source.file, source.config, type);
  if (type == "file" || type.empty()) return WeightsForConfig(source.config, "f16");
  return WeightsForConfig(source.config, type);
}

EfficiencyTable ParseEfficiency(const nlohmann::json& j) {
  EfficiencyTable t;
  if (!j.is_object() || !j.contains("efficiency") || !j["efficiency"].is_object()) return t;
  const nlohmann::json& e = j["efficiency"];
  auto read = [&](const char* key, Efficiency* out) {
    if (!e.contains(key) || !e[key].is_object()) return;
    out->decode_bandwidth = e[key].value("decode_bandwidth", out->decode_bandwidth);
    out->prefill_flops = e[key].value("prefill_flops", out->prefill_flops);
  };
  read("cpu", &t.cpu);
  read("gpu", &t.gpu);
  read("unified", &t.unified);
  t.source = e.value("source", "catalog");
  return t;
}

namespace {
Result<Plan> MakePlanImpl(const ModelSource& source, const ModelWeights& w, const HardwareSetup& hw,
                          const InferenceShape& shape, const PlanOptions& options, const EfficiencyTable& eff,
                          const PriceTable& prices, bool suggest) {
  const ModelConfig& c = source.config;
  Plan plan;
  plan.model = source.config.name.empty() ? source.label : source.config.name;
  plan.parameters = w.parameters;
  plan.weight_type = w.type;
  plan.bits_per_weight = w.bits_per_weight();
  plan.weight_bytes = w.total_bytes;
  plan.hardware = hw.description;
  plan.inference = shape;
  plan.cost = CostOf(hw, prices);

  if (options.training) {
    // ---- training: data parallel, every GPU holds its share of the step.
    const TrainingShape& t = *options.training;
    plan.mode = "training";
    plan.training = t;
    std::vector<DeviceSlot> gpus = hw.accelerators;
    if (gpus.empty()) gpus.push_back(hw.cpu);  // CPU training: RAM is the device
    TrainingShape ts = t;
    if (ts.data_parallel <= 1 && ts.zero_stage > 0) ts.data_parallel = static_cast<int64_t>(gpus.size());
    const uint64_t overhead = gpus[0].spec.kind == DeviceKind::kCpu ? 0 : 0;  // reserved already excluded
    TrainingMemory m = PredictTraining(c, w, ts, overhead);
    plan.training = ts;
    plan.training_memory = m;
    plan.fits = true;
    const size_t n_used = static_cast<size_t>(std::min<int64_t>(std::max<int64_t>(ts.data_parallel, 1),
                                                                 static_cast<int64_t>(gpus.size())));
    for (size_t i = 0; i < n_used; ++i) {
      DeviceUsage u = NewUsage(gpus[i], options);
      u.weights = m.weights + m.master_weights;
      u.gradients = m.gradients;
      u.optimizer = m.optimizer;
      u.activations = m.activations + m.logits;
      u.overhead += m.runtime;
      for (int64_t il = 0; il < c.n_layers; ++il) u.layers.push_back(il);
      u.embedding = u.output = true;
      plan.fits = plan.fits && u.total() <= u.budget;
      plan.needed_bytes += u.total();
      plan.budget_bytes += u.budget;
      plan.devices.push_back(std::move(u));
    }
    if (m.offloaded > 0) {
      DeviceUsage u = NewUsage(hw.cpu, options);
      u.optimizer = m.offloaded * n_used;  // every rank's states in host RAM
      plan.fits = plan.fits && hw.has_cpu && u.total() <= u.budget;
      plan.needed_bytes += u.total();
      plan.budget_bytes += u.budget;
      plan.devices.push_back(std::move(u));
    }
    plan.fits_on_accelerators = plan.fits && m.offloaded == 0 && !hw.accelerators.empty();
    plan.device_map.push_back({"*", n_used > 1 ? "every GPU (data parallel)" : plan.devices[0].label});
    const DeviceUsage& d0 = plan.devices[0];
    plan.verdict = std::string(plan.fits ? "fits" : "does not fit") + ": " + Gib(d0.total()) + " per device of " +
                   Gib(d0.budget) + " usable";
    if (!plan.fits && suggest) {
      const uint64_t need = d0.total();
      if (!t.checkpointing) plan.suggestions.push_back("turn on activation checkpointing (--checkpointing)");
      if (t.method == TrainMethod::kFull) {
        plan.suggestions.push_back("train LoRA adapters (--train lora) or QLoRA (--train qlora): the base is frozen");
      }
      if (t.micro_batch > 1) plan.suggestions.push_back("lower --micro-batch and raise --grad-accum (same effective batch)");
      if (!t.offload_optimizer && m.optimizer > 0) {
        plan.suggestions.push_back("offload optimizer states to CPU RAM (--offload-optimizer): saves " +
                                   Gib(m.optimizer + m.master_weights) + " per GPU");
      }
      if (t.zero_stage < 3 && t.method == TrainMethod::kFull) {
        // ZeRO-3: states / N + activations <= budget.
        const uint64_t states = static_cast<uint64_t>(m.parameters) * 16;
        const uint64_t act = m.activations + m.logits + m.runtime;
        if (d0.budget > act) {
          const uint64_t n = (states + (d0.budget - act) - 1) / (d0.budget - act);
          plan.suggestions.push_back("shard with ZeRO-3/FSDP: --zero 3 --gpu " + d0.device + ":" + std::to_string(n) +
                                     " (" + Gib(states / n + act) + " per GPU)");
        }
      }
      if (need > d0.budget) plan.suggestions.push_back("or a device with at least " + Gib(need) + " usable");
    }
    return plan;
  }

  // ---- inference: fill accelerators in order with layers (their weights
  // and KV), then CPU RAM; embeddings on the first device, the output
  // projection with the last layer (accelerate's "sequential" map).
  std::vector<DeviceSlot> slots = hw.accelerators;
  const bool cpu_only = hw.accelerators.empty();
  if (hw.has_cpu && (cpu_only || options.allow_cpu_offload)) slots.push_back(hw.cpu);
  if (slots.empty()) return Status::InvalidArgument("the hardware has no device with memory");

  std::vector<DeviceUsage> use;
  for (const DeviceSlot& s : slots) use.push_back(NewUsage(s, options));

  const int64_t tokens = shape.n_ctx * shape.seqs;
  if (cpu_only && options.formiga_cpu_engine) {
    // The engine's real allocation (full KV in every layer, scratch, logits,
    // tokenizer, runtime): what `formiga run` will have resident.
    EngineShape es;
    es.n_ctx = shape.n_ctx;
    es.max_seqs = shape.seqs;
    es.kv_type = shape.kv_type;
    es.max_batch_tokens = shape.max_batch_tokens;
    es.prompt_tokens = shape.prompt_tokens;
    const uint64_t meta = source.file ? source.file->data_offset() : 0;
    CpuRunMemory m = PredictCpuRun(c, w, es, meta);
    plan.cpu_run = m;
    DeviceUsage& u = use[0];
    u.weights = m.weights;
    u.kv_cache = m.kv_cache;
    u.activations = m.scratch + m.logits;
    u.overhead = m.runtime + m.tokenizer + m.file_header;
    for (int64_t il = 0; il < c.n_layers; ++il) u.layers.push_back(il);
    u.embedding = u.output = true;
    plan.device_map.push_back({"*", u.label});
  } else {
    // Fixed costs: scratch/logits on the first device, runtime on each GPU.
    const uint64_t scratch = CpuScratchBytes(c, std::min(shape.max_batch_tokens, shape.n_ctx), shape.seqs) +
                             static_cast<uint64_t>(shape.seqs * c.vocab_size) * 4;
    size_t d = 0;
    use[0].activations = scratch;
    use[0].weights += w.embedding_bytes;
    use[0].embedding = true;
    plan.device_map.push_back({"token_embd", use[0].label});
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const uint64_t lw = w.layer_bytes[static_cast<size_t>(il)];
      const uint64_t lk = KvBytesLayer(c, il, shape.kv_type, tokens, shape.seqs, /*cap_sliding=*/true);
      while (d + 1 < use.size() && use[d].total() + lw + lk > use[d].budget) ++d;
      use[d].weights += lw;
      use[d].kv_cache += lk;
      use[d].layers.push_back(il);
      plan.device_map.push_back({"blk." + std::to_string(il), use[d].label});
    }
    while (d + 1 < use.size() && use[d].total() + w.output_bytes > use[d].budget) ++d;
    use[d].weights += w.output_bytes;
    use[d].output = true;
    plan.device_map.push_back({"output", use[d].label});
  }
  plan.fits = true;
  plan.fits_on_accelerators = !cpu_only;
  for (DeviceUsage& u : use) {
    if (u.total() == u.overhead && u.layers.empty() && !u.embedding && !u.output) continue;  // unused
    plan.fits = plan.fits && u.total() <= u.budget;
    if (u.kind == DeviceKind::kCpu && !cpu_only) plan.fits_on_accelerators = false;
    plan.needed_bytes += u.total();
    plan.budget_bytes += u.budget;
    plan.devices.push_back(std::move(u));
  }
  // Budgets of devices left empty still count as capacity.
  for (const DeviceUsage& u : use) (void)u;
  plan.fits_on_accelerators = plan.fits_on_accelerators && plan.fits;
  Speeds(source, w, hw, shape, eff, &plan);
  if (plan.cost.known && plan.decode_tps > 0) {
    plan.usd_per_mtok = plan.cost.usd_per_hour / (plan.decode_tps * 3600.0) * 1e6;
  }
  uint64_t total_budget = 0;
  for (const DeviceSlot& s : slots) total_budget += Budget(s, options);
  if (plan.fits) {
    std::string where;
    for (const DeviceUsage& u : plan.devices) {
      where += (where.empty() ? "" : ", ") + u.label + " " + std::to_string(u.layers.size()) + " layers";
    }
    plan.verdict = "fits: " + Gib(plan.needed_bytes) + " of " + Gib(total_budget) + " usable (" + where + ")";
  } else {
    plan.verdict = "does not fit: needs " + Gib(plan.needed_bytes) + ", " + Gib(total_budget) +
                   " usable; short by " + Gib(plan.needed_bytes > total_budget ? plan.needed_bytes - total_budget : 0);
    const uint64_t short_by = plan.needed_bytes > total_budget ? plan.needed_bytes - total_budget : 0;
    if (!suggest) return plan;
    if (short_by > 0) plan.suggestions.push_back("more memory: at least " + Gib(short_by) + " more usable");
    // Longest context that fits with this weight type.
    if (shape.n_ctx > 256) {
      int64_t lo = 0, hi = shape.n_ctx;
      while (hi - lo > 16) {
        const int64_t mid = (lo + hi) / 2;
        InferenceShape s2 = shape;
        s2.n_ctx = mid;
        PlanOptions o2 = options;
        auto p2 = MakePlanImpl(source, w, hw, s2, o2, eff, prices, false);
        if (p2.ok() && p2->fits) lo = mid; else hi = mid;
      }
      if (lo >= 256) {
        plan.suggestions.push_back("a shorter context: --ctx " + std::to_string(lo / 256 * 256) + " fits");
      }
    }
    if (shape.kv_type == DType::kF16) {
      plan.suggestions.push_back("a q8_0 KV cache (--kv-type q8_0) halves the KV (" +
                                 Gib(KvBytes(c, shape.kv_type, tokens, shape.seqs, !cpu_only) / 2) + " saved)");
    }
    if (!cpu_only && (!hw.has_cpu || hw.cpu.spec.memory_bytes == 0)) {
      // What offloading the rest to host RAM would give.
      HardwareSetup with_cpu = hw;
      with_cpu.has_cpu = true;
      const uint64_t ram = (short_by + 4 * kGiB + kGiB - 1) / kGiB * kGiB;
      with_cpu.cpu.spec.memory_bytes = ram;
      PlanOptions o2 = options;
      o2.allow_cpu_offload = true;
      auto p2 = MakePlanImpl(source, w, with_cpu, shape, o2, eff, prices, false);
      if (p2.ok() && p2->fits && !p2->devices.empty() && p2->devices.back().label == "cpu") {
        plan.suggestions.push_back("CPU offload: with --cpu-ram " + std::to_string(ram / kGiB) + "GiB, " +
                                   std::to_string(p2->devices.back().layers.size()) +
                                   " layers run on the CPU, decode ~" + std::to_string(p2->decode_tps).substr(0, 4) +
                                   " tok/s");
      }
    }
  }
  return plan;
}

}  // namespace

Result<Plan> MakePlan(const ModelSource& source, const ModelWeights& w, const HardwareSetup& hw,
                      const InferenceShape& shape, const PlanOptions& options, const EfficiencyTable& eff,
                      const PriceTable& prices) {
  return MakePlanImpl(source, w, hw, shape, options, eff, prices, true);
}

Result<Plan> PlanBestType(const ModelSource& source, const std::vector<std::string>& types, const HardwareSetup& hw,
                          const InferenceShape& shape, const PlanOptions& options, const EfficiencyTable& eff,
                          const PriceTable& prices) {
  if (types.empty()) return Status::InvalidArgument("no weight type to plan");
  std::vector<Plan> plans;
  for (const std::string& t : types) {
    FORMIGA_ASSIGN_OR_RETURN(ModelWeights w, SourceWeights(source, t));
    FORMIGA_ASSIGN_OR_RETURN(Plan p, MakePlan(source, w, hw, shape, options, eff, prices));
    plans.push_back(std::move(p));
  }
  // Best quality first (the order given); on accelerators alone beats offload.
  const bool want_accel = !hw.accelerators.empty();
  int best = -1;
  for (size_t i = 0; i < plans.size() && best < 0; ++i) {
    if (plans[i].fits && (!want_accel || plans[i].fits_on_accelerators)) best = static_cast<int>(i);
  }
  for (size_t i = 0; i < plans.size() && best < 0; ++i) {
    if (plans[i].fits) best = static_cast<int>(i);
  }
  Plan out = plans[best >= 0 ? static_cast<size_t>(best) : 0];
  for (const Plan& p : plans) {
    QuantOption q;
    q.type = p.weight_type;
    q.weight_bytes = p.weight_bytes;
    q.bits_per_weight = p.bits_per_weight;
    q.total_bytes = p.needed_bytes;
    q.fits = p.fits;
    q.fits_on_accelerators = p.fits_on_accelerators;
    q.decode_tps = p.decode_tps;
    q.usd_per_mtok = p.usd_per_mtok;
    out.alternatives.push_back(q);
  }
  if (best < 0 && types.size() == 1 && !options.training) {
    // One type asked for and it does not fit: would a lower one?
    const std::vector<std::string> all = AutoQuantCandidates();
    auto it = std::find(all.begin(), all.end(), types[0]);
    const size_t from = it == all.end() ? 0 : static_cast<size_t>(it - all.begin()) + 1;
    for (size_t i = from; i < all.size(); ++i) {
      auto w = SourceWeights(source, all[i]);
      if (!w.ok()) continue;
      auto p = MakePlanImpl(source, *w, hw, shape, options, eff, prices, false);
      if (p.ok() && p->fits) {
        out.suggestions.insert(out.suggestions.begin(),
                               "a lower weight type: --quant " + all[i] + " fits (" + FormatBytes(p->needed_bytes) +
                                   ", ~" + std::to_string(static_cast<int>(p->decode_tps + 0.5)) + " tok/s)");
        break;
      }
    }
  } else if (best < 0 && types.size() > 1) {
    out.suggestions.insert(out.suggestions.begin(), "none of the weight types tried fits: see the suggestions for " +
                                                        out.weight_type);
  }
  return out;
}

nlohmann::json PlanToJson(const Plan& p) {
  nlohmann::json j;
  j["format"] = "formiga plan v1";
  j["model"] = p.model;
  j["parameters"] = p.parameters;
  j["weight_type"] = p.weight_type;
  j["bits_per_weight"] = p.bits_per_weight;
  j["weight_bytes"] = p.weight_bytes;
  j["mode"] = p.mode;
  j["hardware"] = p.hardware;
  j["inference"] = {{"n_ctx", p.inference.n_ctx}, {"seqs", p.inference.seqs},
                    {"kv_type", DTypeName(p.inference.kv_type)}, {"max_batch_tokens", p.inference.max_batch_tokens}};
  if (p.training) {
    const TrainingShape& t = *p.training;
    j["training"] = {{"method", TrainMethodName(t.method)}, {"lora_rank", t.lora_rank},
                     {"optimizer", OptimizerName(t.optimizer)}, {"precision", PrecisionName(t.precision)},
                     {"micro_batch", t.micro_batch}, {"seq_len", t.seq_len}, {"grad_accum", t.grad_accum},
                     {"checkpointing", t.checkpointing}, {"flash_attention", t.flash_attention},
                     {"offload_optimizer", t.offload_optimizer}, {"data_parallel", t.data_parallel},
                     {"zero_stage", t.zero_stage}};
  }
  if (p.training_memory) {
    const TrainingMemory& m = *p.training_memory;
    j["training_memory"] = {{"trainable_parameters", m.trainable}, {"weights", m.weights},
                            {"master_weights", m.master_weights}, {"gradients", m.gradients},
                            {"optimizer", m.optimizer}, {"activations", m.activations}, {"logits", m.logits},
                            {"runtime", m.runtime}, {"offloaded", m.offloaded}, {"per_gpu", m.per_gpu()}};
  }
  if (p.cpu_run) {
    const CpuRunMemory& m = *p.cpu_run;
    j["cpu_engine"] = {{"weights", m.weights}, {"file_header", m.file_header}, {"tokenizer", m.tokenizer},
                       {"kv_cache", m.kv_cache}, {"scratch", m.scratch}, {"logits", m.logits},
                       {"runtime", m.runtime}, {"total", m.total()}};
  }
  nlohmann::json devs = nlohmann::json::array();
  for (const DeviceUsage& u : p.devices) {
    devs.push_back({{"label", u.label}, {"device", u.device}, {"kind", DeviceKindName(u.kind)},
                    {"capacity", u.capacity}, {"budget", u.budget}, {"weights", u.weights},
                    {"kv_cache", u.kv_cache}, {"activations", u.activations}, {"gradients", u.gradients},
                    {"optimizer", u.optimizer}, {"overhead", u.overhead}, {"total", u.total()},
                    {"fits", u.total() <= u.budget}, {"layers", u.layers}, {"embedding", u.embedding},
                    {"output", u.output}, {"decode_s_per_step", u.seconds_per_token_decode},
                    {"prefill_s_per_token", u.seconds_per_token_prefill}});
  }
  j["devices"] = devs;
  nlohmann::json map = nlohmann::json::object();
  for (const auto& [k, v] : p.device_map) map[k] = v;
  j["device_map"] = map;
  nlohmann::json mm = nlohmann::json::object();
  for (const DeviceUsage& u : p.devices) mm[u.label] = u.budget;
  j["max_memory"] = mm;
  j["fits"] = p.fits;
  j["fits_on_accelerators"] = p.fits_on_accelerators;
  j["needed_bytes"] = p.needed_bytes;
  j["budget_bytes"] = p.budget_bytes;
  j["verdict"] = p.verdict;
  j["speed"] = {{"decode_tokens_per_s", p.decode_tps}, {"prefill_tokens_per_s", p.prefill_tps}};
  j["cost"] = {{"option", p.cost.option}, {"known", p.cost.known}, {"usd_per_hour", p.cost.usd_per_hour},
               {"spot_usd_per_hour_min", p.cost.spot_usd_per_hour_min},
               {"spot_usd_per_hour_max", p.cost.spot_usd_per_hour_max}, {"purchase_usd", p.cost.purchase_usd},
               {"usd_per_million_tokens", p.usd_per_mtok}};
  j["suggestions"] = p.suggestions;
  nlohmann::json alts = nlohmann::json::array();
  for (const QuantOption& q : p.alternatives) {
    alts.push_back({{"type", q.type}, {"weight_bytes", q.weight_bytes}, {"bits_per_weight", q.bits_per_weight},
                    {"total_bytes", q.total_bytes}, {"fits", q.fits}, {"fits_on_accelerators", q.fits_on_accelerators},
                    {"decode_tokens_per_s", q.decode_tps}, {"usd_per_million_tokens", q.usd_per_mtok}});
  }
  j["alternatives"] = alts;
  return j;
}

}  // namespace formiga::planner
