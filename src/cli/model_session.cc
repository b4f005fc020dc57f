#include "cli/model_session.h"

#include "cli/commands.h"
#include "cli/terminal.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <map>
#include <optional>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/process_memory.h"
#include "kernels/cpu_isa.h"
#include "model/pack_cache.h"
#include "model/placement_buffers.h"

namespace formiga::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void OnSigint(int) {
  if (g_interrupted.exchange(true)) {
    // Second Ctrl-C: the user wants out now.
    _exit(130);
  }
}

double Mib(uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

}  // namespace

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

bool Interrupted() { return g_interrupted.load(); }
void ClearInterrupted() { g_interrupted.store(false); }

void AddModelOptions(CLI::App* cmd, ModelArgs& args) {
  cmd->add_option("-m,--model", args.model, "GGUF model file (default: the SmolLM2 model fetched by scripts/setup)");
  cmd->add_option("--backend", args.backend, "compute backend: cpu (fast) or ref (naive reference, slow)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", args.threads, "threads (0 = all cores)")->capture_default_str();
  cmd->add_option("-c,--ctx", args.ctx, "context length in tokens (0 = the model's, at most 4096)")
      ->capture_default_str();
  cmd->add_option("--kv-type", args.kv_type, "KV cache element type: f16, q8_0 (half the memory) or f32")->capture_default_str();
  cmd->add_flag("-v,--verbose", args.verbose, "print load time, memory and speed to stderr");
  cmd->add_option("--plan", args.placement.plan, "obey a plan written by formiga plan --out (context, KV type, device map)");
  cmd->add_option("--device-map", args.placement.device_map,
                  "layer placement as HF accelerate: auto, cpu, cuda:N or a JSON object/file of module -> device");
  cmd->add_option("--gpu-layers,--n-gpu-layers", args.placement.gpu_layers,
                  "layers on cuda:0 as llama.cpp's -ngl: the last N layers (N > layers: the output head too)");
  cmd->add_option("--max-memory", args.placement.max_memory,
                  "memory caps as HF accelerate: cpu=30GiB,cuda:0=10GiB (refuses to start what will not fit)");
}

Result<std::unique_ptr<Backend>> MakeBackend(const std::string& name, int threads) {
  if (name == "ref") return MakeRefBackend();
  if (name == "cpu") return MakeCpuBackend(threads);
  return Status::InvalidArgument("unknown backend '" + name + "' (choose cpu or ref)");
}

// Whether the kernel gives huge pages to the weights' page cache here:
// transparent huge pages on (always or madvise) and file huge pages in use
// somewhere (FileHugePages in /proc/meminfo: the kernel and a file system
// with large folios create them), unless FORMIGA_HUGEPAGES=0.
static bool FileHugePagesUsable() {
  if (const char* env = std::getenv("FORMIGA_HUGEPAGES"); env != nullptr && std::string(env) == "0") return false;
  char buf[256] = {0};
  if (std::FILE* f = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r")) {
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    std::fclose(f);
  }
  if (std::strstr(buf, "[always]") == nullptr && std::strstr(buf, "[madvise]") == nullptr) return false;
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return false;
  char line[256];
  unsigned long kb = 0;
  bool found = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "FileHugePages: %lu kB", &kb) == 1) {
      found = true;
      break;
    }
  }
  std::fclose(f);
  return found && kb > 0;
}

// True the first time it is asked about this file (device, inode, size,
// mtime) since the machine started: a marker in $XDG_RUNTIME_DIR or /tmp
// (both emptied at boot, as the page cache is), so a file the kernel will
// not cache in huge pages is re-read once, not on every start.
static bool FirstRecacheSinceBoot(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return false;
  const char* dir = std::getenv("XDG_RUNTIME_DIR");
  std::string marker = (dir != nullptr && *dir != '\0') ? dir : "/tmp";
  marker += "/formiga-hugepage-recache-" + std::to_string(getuid()) + "-" + std::to_string(st.st_dev) + "-" +
            std::to_string(st.st_ino) + "-" + std::to_string(st.st_size) + "-" + std::to_string(st.st_mtime);
  const int fd = open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return false;  // there already (or no place to remember: do not risk a re-read per start)
  ::close(fd);
  return true;
}

// A large model that is not in the page cache yet is read in sequentially
// first, with a progress bar on a terminal: one long read instead of the
// first forward pass stalling on random page faults. Files larger than half
// the RAM are left alone.
//
// Huge pages (docs/kernels.md "Huge pages"): decode reads every weight once
// per token, and mapped with 4 KB entries the TLB misses cost 5-17 % of its
// speed. The mapping asks for 2 MB pages (MappedFile); pages the faults read
// in then come as 2 MB folios. A file already cached in small folios (just
// written, downloaded, or read in by another program) is dropped from the
// page cache and read once more, the one time its sampled pages are not
// mapped huge.
static void PrefetchWeights(const MappedFile& mapping) {
  constexpr size_t kMinBytes = size_t{64} << 20;
  const uint64_t ram = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (mapping.size() < kMinBytes || mapping.size() > ram / 2) return;
  const bool huge = FileHugePagesUsable();
  if (mapping.ResidentFraction() <= 0.9) {
    ProgressBar bar("loading");
    mapping.Prefetch([&](size_t done, size_t total) { bar.Update(done, total, "reading weights"); }, !huge);
    bar.Finish();
  }
  if (!huge || mapping.HugeMappedFraction() >= 0.5 || !FirstRecacheSinceBoot(mapping.path())) return;
  if (!mapping.DropFromPageCache().ok()) return;
  ProgressBar bar("loading");
  mapping.Prefetch([&](size_t done, size_t total) { bar.Update(done, total, "reading weights into 2 MB pages"); },
                   false);
  bar.Finish();
}

Result<std::unique_ptr<ModelSession>> OpenModelSession(const ModelArgs& args, EngineOptions engine_options) {
  const auto start = std::chrono::steady_clock::now();
  auto s = std::make_unique<ModelSession>();
  s->path = args.model.empty() ? DefaultModelPath() : args.model;
  if (s->path.empty()) {
    return Status::NotFound("no model given and the default model is missing: pass -m MODEL.gguf or run scripts/setup");
  }
  FORMIGA_ASSIGN_OR_RETURN(GgufFile file, GgufFile::Open(s->path));
  s->file = std::make_unique<GgufFile>(std::move(file));
  PrefetchWeights(s->file->mapping());
  FORMIGA_ASSIGN_OR_RETURN(s->backend, MakeBackend(args.backend, args.threads));
  if (args.profile) s->profiler = std::make_unique<ProfilingBackend>(*s->backend);
  Backend& host = s->profiler ? static_cast<Backend&>(*s->profiler) : *s->backend;
  FORMIGA_ASSIGN_OR_RETURN(ModelConfig config, ConfigFromGguf(*s->file));
  const int64_t trained = config.context_length;
  int64_t ctx = args.ctx > 0 ? args.ctx : (trained > 0 ? std::min<int64_t>(trained, 4096) : 4096);
  engine_options.n_ctx = ctx;
  if (args.kv_type == "f16") {
    engine_options.kv_type = DType::kF16;
  } else if (args.kv_type == "q8_0") {
    engine_options.kv_type = DType::kQ8_0;
  } else if (args.kv_type == "f32") {
    engine_options.kv_type = DType::kF32;
  } else {
    return Status::InvalidArgument("--kv-type must be f16, q8_0 or f32, not '" + args.kv_type + "'");
  }
  // Where each part runs, checked against every device's memory and the
  // host's before anything is allocated (cli/model_fit.h).
  FORMIGA_ASSIGN_OR_RETURN(planner::PlacementDecision placed,
                           PlaceModel(args.placement, *s->file, config, args.ctx > 0, args.kv_type != "f16",
                                      &engine_options, host, &s->devices));
  s->placement = placed.placement;
  // Host backends' packed weights are kept between loads (model/pack_cache.h).
  s->placement.pack_cache_dir = PackCache::DefaultDir();
  FORMIGA_ASSIGN_OR_RETURN(s->model, LoadModel(*s->file, s->placement));
  // Device parts' weights now live on their devices: their file pages need not stay resident.
  if (!s->placement.AllHost()) ReleaseUploadedPages(*s->file, s->placement);
  FORMIGA_ASSIGN_OR_RETURN(s->tokenizer, Tokenizer::FromGguf(*s->file));
  if (s->tokenizer->vocab_size() != s->model->config().vocab_size) {
    return Status::Corruption(s->path + ": the tokenizer has " + std::to_string(s->tokenizer->vocab_size()) +
                              " tokens but the embedding has " + std::to_string(s->model->config().vocab_size) +
                              " rows");
  }
  Result<std::string> tmpl = s->file->GetString("tokenizer.chat_template");
  if (tmpl.ok()) {
    FORMIGA_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::Parse(*tmpl));
    s->chat_template = std::move(t);
  }
  FORMIGA_ASSIGN_OR_RETURN(s->engine, Engine::Create(*s->model, *s->tokenizer, engine_options));
  s->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (args.verbose) {
    const ModelConfig& c = s->model->config();
    const ProcessMemory mem = ReadProcessMemory();
    // The cpu backend's ISA tier (avx2, avx-vnni, avx512-vnni) says which kernels run.
    std::string backend = s->backend->name();
    if (const std::optional<CpuIsa> isa = CpuBackendIsa(*s->backend)) {
      backend += std::string(" (") + CpuIsaName(*isa) + " kernels)";
    }
    std::fprintf(stderr,
                 "formiga: %s: %s, %lld layers, hidden %lld, vocab %lld; backend %s; context %lld; "
                 "KV cache %.1f MiB (%s); loaded in %.2f s; resident %.1f MiB\n",
                 s->path.c_str(), ArchName(c.arch), static_cast<long long>(c.n_layers),
                 static_cast<long long>(c.hidden_size), static_cast<long long>(c.vocab_size),
                 backend.c_str(), static_cast<long long>(engine_options.n_ctx), Mib(s->engine->kv_bytes()),
                 args.kv_type.c_str(), s->load_seconds, Mib(mem.rss_bytes));
    for (const std::string& note : placed.notes) std::fprintf(stderr, "formiga: %s\n", note.c_str());
    if (const std::string packed = s->model->packed_weight_note(); !packed.empty()) {
      std::fprintf(stderr, "formiga: %s\n", packed.c_str());
    }
    if (!s->placement.AllHost()) {
      std::map<std::string, int> layers_on;
      for (const ModelPlacement::Part& p : s->placement.layers) ++layers_on[p.device];
      std::string text = "formiga: placement: token_embd on " + s->placement.embed.device;
      for (const auto& [dev, n] : layers_on) text += ", " + std::to_string(n) + " layers on " + dev;
      text += ", output on " + s->placement.output.device;
      std::fprintf(stderr, "%s\n", text.c_str());
      for (const planner::DeviceShare& d : placed.memory.devices) {
        std::fprintf(stderr, "formiga: %s holds about %.1f MiB (%s)\n", d.device.c_str(), Mib(d.total()),
                     d.Breakdown().c_str());
      }
    }
  }
  return s;
}

Result<std::vector<int32_t>> ModelSession::EncodeChat(const nlohmann::json& messages,
                                                      bool add_generation_prompt) const {
  ChatTemplateOptions opts;
  opts.add_generation_prompt = add_generation_prompt;
  if (tokenizer->bos_id() >= 0) opts.bos_token = tokenizer->TokenText(tokenizer->bos_id());
  if (tokenizer->eos_id() >= 0) opts.eos_token = tokenizer->TokenText(tokenizer->eos_id());
  const ChatTemplate fallback = ChatTemplate::ChatMLFallback();
  const ChatTemplate& t = chat_template ? *chat_template : fallback;
  FORMIGA_ASSIGN_OR_RETURN(std::string text, t.Render(messages, opts));
  FORMIGA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer->Encode(text, /*add_special=*/true,
                                                                       /*parse_special=*/true));
  // NOTE: templates that write {{ bos_token }} themselves (Gemma) plus a
  // tokenizer that adds BOS would give two; keep one, as llama.cpp does.
  if (ids.size() >= 2 && ids[0] == tokenizer->bos_id() && ids[1] == tokenizer->bos_id()) ids.erase(ids.begin());
  return ids;
}

Result<std::vector<int32_t>> ModelSession::EncodeText(const std::string& text) const {
  return tokenizer->Encode(text, /*add_special=*/true, /*parse_special=*/false);
}

}  // namespace formiga::cli
