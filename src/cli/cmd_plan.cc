// formiga plan -m MODEL [--quant T|a,b|auto] [--hardware local|SPEC ...]
//              [--gpu ID[:N] ...] [--cpu-ram SIZE] [--ctx N] [--seqs N]
//              [--train full|lora|qlora ...] [--json] [--out plan.json]
//
// Will it fit, how fast, at what cost: the planner's table per device, the
// device map, rooflines and prices (data/hardware.json, data/prices.json).
// See docs/planner.md.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "planner/hardware.h"
#include "planner/placement.h"
#include "planner/plan.h"
#include "planner/units.h"

namespace formiga::cli {
namespace {

using namespace planner;

struct PlanArgs {
  std::string model;
  std::string quant;
  std::vector<std::string> hardware;
  std::vector<std::string> gpus;
  std::string cpu_ram;
  double cpu_bandwidth = 0;
  std::string catalog, prices;
  int64_t ctx = 0;
  int64_t seqs = 1;
  std::string kv_type = "f16";
  int64_t batch_tokens = 512;
  int64_t prompt_tokens = 0;
  double headroom = 0.05;
  std::string max_memory;
  bool no_offload = false;
  // training
  std::string train;
  int64_t rank = 16;
  std::string optimizer = "adamw";
  std::string precision = "bf16-mixed";
  int64_t micro_batch = 1;
  int64_t seq_len = 2048;
  int64_t grad_accum = 1;
  bool checkpointing = false;
  bool flash_attention = false;
  bool offload_optimizer = false;
  int64_t dp = 1;
  int zero = 0;
  bool json = false;
  std::string out;
};

// --catalog/--prices, else ~/.config/formiga/NAME (the user's edits), else
// data/NAME in the source tree.
std::string FindDataFile(const std::string& given, const char* name) {
  namespace fs = std::filesystem;
  if (!given.empty()) return given;
  std::vector<fs::path> candidates;
  if (const char* home = std::getenv("HOME")) candidates.push_back(fs::path(home) / ".config" / "formiga" / name);
#ifdef FORMIGA_SOURCE_DIR
  candidates.push_back(fs::path(FORMIGA_SOURCE_DIR) / "data" / name);
#endif
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::exists(p, ec)) return p.string();
  }
  return candidates.empty() ? name : candidates.back().string();
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string Cell(uint64_t b) { return b ? FormatBytes(b) : "-"; }

std::string LayerRanges(const DeviceUsage& u) {
  std::string s = u.embedding ? "emb" : "";
  for (size_t i = 0; i < u.layers.size();) {
    size_t j = i;
    while (j + 1 < u.layers.size() && u.layers[j + 1] == u.layers[j] + 1) ++j;
    s += (s.empty() ? "" : ",") + std::to_string(u.layers[i]) +
         (j > i ? "-" + std::to_string(u.layers[j]) : std::string());
    i = j + 1;
  }
  if (u.output) s += (s.empty() ? "" : ",") + std::string("out");
  return s.empty() ? "-" : s;
}

std::string Tps(double t) {
  if (t <= 0) return "?";
  return t >= 100 ? Fmt("%.0f", t) : t >= 10 ? Fmt("%.1f", t) : Fmt("%.2f", t);
}

std::string Usd(double v) { return v >= 100 ? Fmt("$%.0f", v) : v >= 1 ? Fmt("$%.2f", v) : Fmt("$%.3f", v); }

void PrintPlan(const Plan& p, const PriceTable& prices, double headroom, bool capped) {
  std::printf("formiga plan: %s (%.2f B parameters) on %s\n", p.model.c_str(), p.parameters / 1e9, p.hardware.c_str());
  if (p.training) {
    const TrainingShape& t = *p.training;
    std::printf("training: %s%s, %s, %s, micro-batch %lld x %lld tokens, grad-accum %lld, checkpointing %s%s%s\n",
                TrainMethodName(t.method),
                t.method == TrainMethod::kFull ? "" : (" r=" + std::to_string(t.lora_rank)).c_str(),
                OptimizerName(t.optimizer), PrecisionName(t.precision), static_cast<long long>(t.micro_batch),
                static_cast<long long>(t.seq_len), static_cast<long long>(t.grad_accum), t.checkpointing ? "on" : "off",
                t.zero_stage ? (", ZeRO-" + std::to_string(t.zero_stage) + " over " + std::to_string(t.data_parallel)).c_str() : "",
                t.offload_optimizer ? ", optimizer offloaded to CPU" : "");
    if (p.training_memory) {
      std::printf("trainable parameters: %.2f M\n", p.training_memory->trainable / 1e6);
    }
  } else {
    std::printf("inference: context %lld x %lld sequence(s), KV cache %s\n", static_cast<long long>(p.inference.n_ctx),
                static_cast<long long>(p.inference.seqs), DTypeName(p.inference.kv_type));
  }
  std::printf("weights %s: %s (%.2f bits/weight)\n\n", p.weight_type.c_str(), FormatBytes(p.weight_bytes).c_str(),
              p.bits_per_weight);
  std::printf("%-10s %-14s %11s %11s %11s %11s %11s %11s %11s %11s %s\n", "device", "layers", "weights", "KV cache",
              "activations", "gradients", "optimizer", "overhead", "total", "usable", "fits");
  for (const DeviceUsage& u : p.devices) {
    std::printf("%-10s %-14s %11s %11s %11s %11s %11s %11s %11s %11s %s\n", u.label.c_str(), LayerRanges(u).c_str(),
                Cell(u.weights).c_str(), Cell(u.kv_cache).c_str(), Cell(u.activations).c_str(),
                Cell(u.gradients).c_str(), Cell(u.optimizer).c_str(), Cell(u.overhead).c_str(),
                FormatBytes(u.total()).c_str(), FormatBytes(u.budget).c_str(), u.total() <= u.budget ? "yes" : "NO");
  }
  std::printf("\n%s\n", p.verdict.c_str());
  if (!capped) std::printf("(usable: each device's memory less %.0f %% headroom; host RAM less the OS's share)\n", headroom * 100);
  if (!p.training) {
    std::printf("speed (roofline x calibrated efficiency): decode ~%s tok/s, prefill ~%s tok/s\n",
                Tps(p.decode_tps).c_str(), Tps(p.prefill_tps).c_str());
  }
  if (p.cost.known) {
    std::string line = "cost: " + Usd(p.cost.usd_per_hour) + "/h";
    if (p.cost.purchase_usd > 0) {
      line += Fmt(" (purchase $%.0f amortized over 3 years)", p.cost.purchase_usd);
    }
    if (p.cost.spot_usd_per_hour_max > 0) {
      line += " on demand, spot " + Usd(p.cost.spot_usd_per_hour_min) + "-" + Usd(p.cost.spot_usd_per_hour_max) + "/h";
    }
    if (prices.brl_per_usd > 0) {
      line += Fmt(" [R$%.2f/h", p.cost.usd_per_hour * prices.brl_per_usd);
      if (p.cost.purchase_usd > 0) line += Fmt(", R$%.0f to buy", p.cost.purchase_usd * prices.brl_per_usd);
      line += "]";
    }
    if (p.usd_per_mtok > 0) line += "; " + Usd(p.usd_per_mtok) + " per million generated tokens";
    std::printf("%s\n", line.c_str());
  }
  if (p.alternatives.size() > 1) {
    std::printf("\nweight types (best quality first):\n%-8s %11s %6s %11s %-22s %9s %12s\n", "type", "weights", "bpw",
                "total", "fits", "decode", "$/M tokens");
    for (const QuantOption& q : p.alternatives) {
      const char* fits = q.fits_on_accelerators ? "yes (on accelerators)" : q.fits ? "yes (with CPU offload)" : "no";
      std::printf("%-8s %11s %6.2f %11s %-22s %9s %12s%s\n", q.type.c_str(), FormatBytes(q.weight_bytes).c_str(),
                  q.bits_per_weight, FormatBytes(q.total_bytes).c_str(), fits,
                  q.fits ? (Tps(q.decode_tps) + " t/s").c_str() : "-",
                  q.fits && q.usd_per_mtok > 0 ? Usd(q.usd_per_mtok).c_str() : "-", q.type == p.weight_type ? "  <- chosen" : "");
    }
  }
  if (!p.suggestions.empty()) {
    std::printf("\nwhat would fit:\n");
    for (const std::string& s : p.suggestions) std::printf("  - %s\n", s.c_str());
  }
}

Result<std::vector<std::string>> QuantList(const PlanArgs& a, const ModelSource& src) {
  std::string q = a.quant;
  if (q.empty()) q = src.file ? "file" : (a.train.empty() ? "auto" : "bf16");
  if (q == "auto") return AutoQuantCandidates();
  std::vector<std::string> out;
  std::stringstream ss(q);
  std::string t;
  while (std::getline(ss, t, ',')) {
    if (t.empty()) continue;
    for (char& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(t);
  }
  if (out.empty()) return Status::InvalidArgument("--quant is empty");
  return out;
}

int RunPlan(const PlanArgs& a) {
  std::string model = a.model;
  if (model.empty()) model = DefaultModelPath();
  if (model.empty()) return ReportError(Status::InvalidArgument("give a model: -m FILE.gguf, an HF folder or a preset"));
  auto src = OpenModelSource(model);
  if (!src.ok()) return ReportError(src.status());

  const std::string catalog_path = FindDataFile(a.catalog, "hardware.json");
  nlohmann::json catalog_json;
  {
    std::ifstream in(catalog_path);
    if (!in) return ReportError(Status::NotFound("cannot open hardware catalog " + catalog_path + " (pass --catalog FILE)"));
    try {
      in >> catalog_json;
    } catch (const std::exception& e) {
      return ReportError(Status::InvalidArgument(catalog_path + ": not valid JSON: " + e.what()));
    }
  }
  auto catalog = HardwareCatalog::Parse(catalog_json, catalog_path);
  if (!catalog.ok()) return ReportError(catalog.status());
  const EfficiencyTable eff = ParseEfficiency(catalog_json);
  auto prices = PriceTable::Load(FindDataFile(a.prices, "prices.json"));
  if (!prices.ok()) return ReportError(prices.status());

  // Hardware setups: each --hardware, or one from --gpu/--cpu-ram, or local.
  std::vector<HardwareSetup> setups;
  for (const std::string& h : a.hardware) {
    auto s = h == "local" ? DetectLocalHardware(*catalog, a.cpu_bandwidth) : ParseHardwareSetup(h, *catalog);
    if (!s.ok()) return ReportError(s.status());
    setups.push_back(std::move(*s));
  }
  if (!a.gpus.empty() || !a.cpu_ram.empty() || setups.empty()) {
    HardwareSetup s;
    if (a.gpus.empty() && a.cpu_ram.empty()) {
      auto local = DetectLocalHardware(*catalog, a.cpu_bandwidth);
      if (!local.ok()) return ReportError(local.status());
      s = std::move(*local);
    } else {
      std::string spec;
      for (const std::string& g : a.gpus) spec += (spec.empty() ? "" : "+") + g;
      if (!a.cpu_ram.empty()) spec += (spec.empty() ? "" : "+") + std::string("cpu=") + a.cpu_ram;
      auto parsed = ParseHardwareSetup(spec, *catalog);
      if (!parsed.ok()) return ReportError(parsed.status());
      s = std::move(*parsed);
      if (a.cpu_bandwidth > 0) s.cpu.spec.bandwidth_gbs = a.cpu_bandwidth;
    }
    setups.push_back(std::move(s));
  }

  InferenceShape shape;
  const int64_t trained = src->config.context_length;
  shape.n_ctx = a.ctx > 0 ? a.ctx : (trained > 0 ? std::min<int64_t>(trained, 4096) : 4096);
  shape.seqs = a.seqs;
  shape.max_batch_tokens = a.batch_tokens;
  shape.prompt_tokens = a.prompt_tokens;
  auto kv = ParseDType(a.kv_type);
  if (!kv || (*kv != DType::kF16 && *kv != DType::kF32 && *kv != DType::kQ8_0 && *kv != DType::kBF16)) {
    return ReportError(Status::InvalidArgument("--kv-type must be f16, bf16, q8_0 or f32, not '" + a.kv_type + "'"));
  }
  shape.kv_type = *kv;
  if (shape.n_ctx < 2 || shape.seqs < 1) return ReportError(Status::InvalidArgument("--ctx must be >= 2 and --seqs >= 1"));

  PlanOptions opts;
  opts.headroom = a.headroom;
  opts.allow_cpu_offload = !a.no_offload;
  if (!a.max_memory.empty()) {
    auto mm = ParseMaxMemory(a.max_memory);
    if (!mm.ok()) return ReportError(mm.status());
    opts.max_memory = *mm;
  }
  if (!a.train.empty()) {
    TrainingShape t;
    auto method = ParseTrainMethod(a.train);
    auto opt = ParseOptimizer(a.optimizer);
    auto prec = ParsePrecision(a.precision);
    if (!method.ok()) return ReportError(method.status());
    if (!opt.ok()) return ReportError(opt.status());
    if (!prec.ok()) return ReportError(prec.status());
    if (a.zero < 0 || a.zero > 3) return ReportError(Status::InvalidArgument("--zero must be 0, 1, 2 or 3"));
    t.method = *method;
    t.optimizer = *opt;
    t.precision = *prec;
    t.lora_rank = a.rank;
    t.micro_batch = a.micro_batch;
    t.seq_len = a.seq_len;
    t.grad_accum = a.grad_accum;
    t.checkpointing = a.checkpointing;
    t.flash_attention = a.flash_attention;
    t.offload_optimizer = a.offload_optimizer;
    t.data_parallel = a.dp;
    t.zero_stage = a.zero;
    opts.training = t;
  }
  auto types = QuantList(a, *src);
  if (!types.ok()) return ReportError(types.status());
  std::vector<std::string> type_list = *types;
  if (opts.training && opts.training->method == TrainMethod::kQlora && a.quant.empty()) type_list = {"nf4"};

  std::vector<Plan> plans;
  for (const HardwareSetup& hw : setups) {
    auto p = PlanBestType(*src, type_list, hw, shape, opts, eff, *prices);
    if (!p.ok()) return ReportError(p.status());
    plans.push_back(std::move(*p));
  }

  if (!a.out.empty()) {
    std::ofstream out(a.out);
    out << PlanToJson(plans[0]).dump(2) << "\n";
    if (!out) return ReportError(Status::IOError("cannot write " + a.out));
  }
  if (a.json) {
    if (plans.size() == 1) {
      std::printf("%s\n", PlanToJson(plans[0]).dump(2).c_str());
    } else {
      nlohmann::json arr = nlohmann::json::array();
      for (const Plan& p : plans) arr.push_back(PlanToJson(p));
      std::printf("%s\n", arr.dump(2).c_str());
    }
    return 0;
  }
  if (plans.size() == 1) {
    PrintPlan(plans[0], *prices, a.headroom, !a.max_memory.empty());
  } else {
    // Comparison across hardware options (seed 003 style).
    std::printf("formiga plan: %s (%.2f B parameters), context %lld, KV %s\n\n", plans[0].model.c_str(),
                plans[0].parameters / 1e9, static_cast<long long>(shape.n_ctx), DTypeName(shape.kv_type));
    std::printf("%-34s %-8s %11s %11s %-6s %10s %12s %14s\n", "hardware", "type", "weights", "total", "fits",
                "decode", "cost/h", "$/M tokens");
    for (size_t i = 0; i < plans.size(); ++i) {
      const Plan& p = plans[i];
      std::string cost = "-";
      if (p.cost.known) {
        cost = p.cost.purchase_usd > 0 ? Fmt("buy $%.0f", p.cost.purchase_usd) : Usd(p.cost.usd_per_hour);
      }
      for (const QuantOption& q : p.alternatives) {
        const double mtok = p.cost.known && q.decode_tps > 0 ? p.cost.usd_per_hour / (q.decode_tps * 3600) * 1e6 : 0;
        std::printf("%-34s %-8s %11s %11s %-6s %10s %12s %14s\n", p.hardware.c_str(), q.type.c_str(),
                    FormatBytes(q.weight_bytes).c_str(), FormatBytes(q.total_bytes).c_str(),
                    q.fits_on_accelerators ? "yes" : q.fits ? "offld" : "no",
                    q.fits ? (Tps(q.decode_tps) + " t/s").c_str() : "-", cost.c_str(),
                    q.fits && mtok > 0 ? Usd(mtok).c_str() : "-");
      }
    }
    std::printf("\nfits: yes = on the accelerators, offld = with layers in CPU RAM; decode for one sequence; per-hour cost of\n"
                "purchased hardware is the price amortized over %.0f years of 24/7 use; prices from %s\n",
                prices->amortize_years, prices->source.c_str());
  }
  return 0;
}

}  // namespace

void RegisterPlan(CLI::App& app, CommandContext& ctx) {
  auto a = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand("plan", "will it fit, how fast, at what cost: memory/speed/cost planner");
  cmd->add_option("-m,--model", a->model, "GGUF file, Hugging Face folder (config.json) or preset (llama-7b, falcon-180b, ...)");
  cmd->add_option("-q,--quant", a->quant,
                  "weight type(s): q4_k_m, a list q8_0,q4_k_m, auto (best that fits), nf4; default: as stored / auto");
  cmd->add_option("--hardware", a->hardware,
                  "local, or devices joined by '+': a100-80g:4+cpu=256GiB, dgx-spark:2, 24GiB/1008 (repeat to compare)");
  cmd->add_option("--gpu", a->gpus, "accelerator from the catalog with a count: a100-80g:4 (repeatable)");
  cmd->add_option("--cpu-ram", a->cpu_ram, "host RAM for offload: 256GiB");
  cmd->add_option("--cpu-bandwidth", a->cpu_bandwidth, "host memory bandwidth in GB/s (default: the catalog's cpu entry)");
  cmd->add_option("--catalog", a->catalog, "hardware catalog JSON (default ~/.config/formiga/hardware.json, else data/)");
  cmd->add_option("--prices", a->prices, "price file JSON (default ~/.config/formiga/prices.json, else data/)");
  cmd->add_option("-c,--ctx", a->ctx, "context length per sequence (default: the model's, at most 4096)");
  cmd->add_option("--seqs", a->seqs, "concurrent sequences")->capture_default_str();
  cmd->add_option("--kv-type", a->kv_type, "KV cache type: f16, q8_0, f32")->capture_default_str();
  cmd->add_option("--batch-tokens", a->batch_tokens, "tokens per engine step (prefill chunk)")->capture_default_str();
  cmd->add_option("--prompt-tokens", a->prompt_tokens,
                  "size the activations for this prompt length (default: a prompt filling a whole step)");
  cmd->add_option("--headroom", a->headroom, "fraction of every device kept free")->capture_default_str();
  cmd->add_option("--max-memory", a->max_memory, "caps as HF accelerate: cpu=30GiB,cuda:0=10GiB");
  cmd->add_flag("--no-offload", a->no_offload, "never place layers in CPU RAM when GPUs are given");
  cmd->add_option("--train", a->train, "plan training instead: full, lora or qlora");
  cmd->add_option("--rank", a->rank, "LoRA rank")->capture_default_str();
  cmd->add_option("--optimizer", a->optimizer, "adamw, adamw-8bit, sgd-momentum, sgd")->capture_default_str();
  cmd->add_option("--precision", a->precision, "fp32, bf16-mixed, fp16-mixed")->capture_default_str();
  cmd->add_option("--micro-batch", a->micro_batch, "sequences per micro-batch")->capture_default_str();
  cmd->add_option("--seq-len", a->seq_len, "training sequence length")->capture_default_str();
  cmd->add_option("--grad-accum", a->grad_accum, "gradient accumulation steps")->capture_default_str();
  cmd->add_flag("--checkpointing", a->checkpointing, "activation checkpointing (recompute in backward)");
  cmd->add_flag("--flash-attention", a->flash_attention, "attention scores not stored (FlashAttention)");
  cmd->add_flag("--offload-optimizer", a->offload_optimizer, "optimizer states and fp32 master in CPU RAM");
  cmd->add_option("--dp", a->dp, "data-parallel GPUs")->capture_default_str();
  cmd->add_option("--zero", a->zero, "ZeRO stage 0-3 over the data-parallel GPUs")->capture_default_str();
  cmd->add_flag("--json", a->json, "print the plan as JSON");
  cmd->add_option("--out", a->out, "write the plan (JSON) for formiga run/serve --plan");
  cmd->callback([a, &ctx] { ctx.exit_code = RunPlan(*a); });
}

}  // namespace formiga::cli
