// What `run`, `chat`, `perplexity` (and later `serve`) share: the model
// flags, and opening a model with its tokenizer, chat template, backend and
// engine.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/model_fit.h"
#include "core/status.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "kernels/profiling_backend.h"
#include "model/model.h"
#include "runtime/engine.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace formiga::cli {

struct ModelArgs {
  std::string model;        // empty: DefaultModelPath()
  std::string backend = "cpu";
  int threads = 0;          // 0: all cores
  int64_t ctx = 0;          // 0: min(model's trained context, 4096)
  std::string kv_type = "f16";
  bool verbose = false;
  bool profile = false;     // time every op of the host backend (bench --profile)
  PlacementArgs placement;  // --plan, --device-map, --max-memory (cli/model_fit.h)
};

// Adds -m/--model, --backend, -t/--threads, -c/--ctx, --kv-type, --verbose,
// --plan, --device-map, --gpu-layers, --max-memory.
void AddModelOptions(CLI::App* cmd, ModelArgs& args);

struct ModelSession {
  std::string path;
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Backend> backend;               // the host backend (--backend)
  std::unique_ptr<ProfilingBackend> profiler;     // wraps `backend` for the model when args.profile
  std::vector<std::unique_ptr<Backend>> devices;  // one per GPU the placement uses
  ModelPlacement placement;                       // which of them runs each part
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;  // the model's, or nullopt if it ships none
  std::unique_ptr<Engine> engine;
  double load_seconds = 0;

  // Renders a conversation with the model's template (ChatML when it has
  // none) and tokenizes it, BOS added once per the model's metadata.
  Result<std::vector<int32_t>> EncodeChat(const nlohmann::json& messages, bool add_generation_prompt) const;
  // Tokenizes plain text, BOS per metadata.
  Result<std::vector<int32_t>> EncodeText(const std::string& text) const;
};

// Opens the model; `engine` options get n_ctx from args. Verbose: prints
// load time, memory and sizes to stderr.
Result<std::unique_ptr<ModelSession>> OpenModelSession(const ModelArgs& args, EngineOptions engine_options);

// Makes the backend named by --backend ("cpu" or "ref").
Result<std::unique_ptr<Backend>> MakeBackend(const std::string& name, int threads);

// Ctrl-C handling for generation loops: the first SIGINT sets the flag (the
// loop stops cleanly), a second one exits at once.
void InstallInterruptHandler();
bool Interrupted();
void ClearInterrupted();

}  // namespace formiga::cli
