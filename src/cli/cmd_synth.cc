// formiga synth: writes a random-weight GGUF of a real architecture (a preset
// or a Hugging Face config.json) for speed and memory tests.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "cli/terminal.h"
#include "model/config.h"
#include "model/synth.h"

namespace formiga::cli {
namespace {

struct SynthArgs {
  std::string arch;
  std::string preset;
  std::string config_path;
  std::string type = "f16";
  std::string out;
  std::string tokenizer_from;
  uint64_t seed = 42;
  int64_t layers = 0;
  int threads = 0;
};

// Donor tokenizer: the Gemma-3 test model for gemma3, SmolLM2 otherwise,
// looked up next to the default model.
std::string DefaultDonor(Arch arch) {
  const std::string smol = DefaultModelPath();
  if (arch != Arch::kGemma3) return smol;
  if (smol.empty()) return "";
  std::filesystem::path p = std::filesystem::path(smol).parent_path() / "gemma-3-270m-q4_k_m.gguf";
  return std::filesystem::exists(p) ? p.string() : "";
}

Status RunSynth(const SynthArgs& a) {
  Result<ModelConfig> config = Status::InvalidArgument("synth: give --preset NAME or --config FILE.json");
  if (!a.preset.empty() && !a.config_path.empty()) {
    return Status::InvalidArgument("synth: give --preset or --config, not both");
  }
  if (!a.preset.empty()) config = FindPreset(a.preset);
  if (!a.config_path.empty()) {
    std::filesystem::path p(a.config_path);
    config = ConfigFromHfDir(std::filesystem::is_directory(p) ? p.string() : p.parent_path().string());
    if (config.ok() && !std::filesystem::is_directory(p) && p.filename() != "config.json") {
      return Status::InvalidArgument("synth: --config must be a config.json or a folder holding one");
    }
  }
  if (!config.ok()) return config.status();
  ModelConfig c = std::move(config).value();
  if (!a.arch.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(Arch want, ParseArch(a.arch));
    if (want != c.arch) {
      return Status::InvalidArgument("synth: --arch " + a.arch + " but the model is " + ArchName(c.arch));
    }
  }
  if (a.layers > 0) c.n_layers = a.layers;
  if (c.name.empty()) c.name = "formiga-synth";

  SynthOptions o;
  o.type = a.type;
  o.seed = a.seed;
  o.threads = a.threads;
  o.tokenizer_from = a.tokenizer_from.empty() ? DefaultDonor(c.arch) : a.tokenizer_from;
  if (o.tokenizer_from.empty()) {
    return Status::NotFound("synth: no tokenizer donor found; pass --tokenizer-from MODEL.gguf (or run scripts/setup)");
  }
  std::fprintf(stderr, "synth: %s (%s), %lld layers, %.3f B params, type %s, tokenizer from %s\n", c.name.c_str(),
               ArchName(c.arch), static_cast<long long>(c.n_layers), CountParameters(c) / 1e9, o.type.c_str(),
               o.tokenizer_from.c_str());
  const auto t0 = std::chrono::steady_clock::now();
  ProgressBar bar("synth");
  auto progress = [&](const SynthProgress& p) { bar.Update(p.bytes_done, p.bytes_total, p.tensor); };
  Result<SynthReport> result = SynthesizeModel(c, o, a.out, progress);
  bar.Finish();
  FORMIGA_ASSIGN_OR_RETURN(SynthReport r, std::move(result));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s: %s, %lld params, %.3f bits per weight, %.1f s\n", a.out.c_str(),
              HumanBytes(r.file_bytes).c_str(), static_cast<long long>(r.n_params), r.bits_per_weight(), secs);
  return Status::Ok();
}

}  // namespace

void RegisterSynth(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<SynthArgs>();
  CLI::App* cmd = app.add_subcommand("synth", "write a random-weight GGUF of a real architecture (speed/memory tests)");
  cmd->add_option("--arch", args->arch, "check the architecture: llama, qwen2, gemma3, falcon, gpt2");
  std::string presets;
  for (const std::string& n : PresetNames()) presets += (presets.empty() ? "" : ", ") + n;
  cmd->add_option("--preset", args->preset, "model shape: " + presets);
  cmd->add_option("--config", args->config_path, "Hugging Face config.json (or its folder) instead of a preset");
  cmd->add_option("--type", args->type, "tensor type, as formiga quantize: f32, f16, bf16, q8_0, q4_0, q4_k_m, ...")
      ->capture_default_str();
  cmd->add_option("-o,--output", args->out, "output GGUF path")->required();
  cmd->add_option("--seed", args->seed, "PRNG seed")->capture_default_str();
  cmd->add_option("--layers", args->layers, "override the number of layers (small test files)");
  cmd->add_option("--tokenizer-from", args->tokenizer_from,
                  "GGUF whose tokenizer to copy (default: the SmolLM2 test model; Gemma-3 for gemma3)");
  cmd->add_option("-t,--threads", args->threads, "worker threads (0 = all)")->capture_default_str();
  cmd->callback([args, &ctx] {
    Status s = RunSynth(*args);
    if (!s.ok()) ctx.exit_code = ReportError(s);
  });
}

}  // namespace formiga::cli
