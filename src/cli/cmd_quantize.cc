// formiga quantize IN.gguf OUT.gguf --type q4_k_m [--threads N] [--json]
//
// Runs model/quantize (the library does the work and the type mix); this file
// only parses flags, draws the progress bar on stderr and prints the result
// (human-readable, or one JSON object on stdout with --json).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "cli/terminal.h"
#include "model/quantize.h"

namespace formiga::cli {
namespace {

struct QuantizeArgs {
  std::string input;
  std::string output;
  std::string type;
  int threads = 0;
  bool json = false;
};

int RunQuantize(const QuantizeArgs& args) {
  QuantizeOptions options;
  options.preset = args.type;
  options.threads = args.threads;
  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("quantize");
  auto on_progress = [&](const QuantizeProgress& p) {
    bar.Update(p.bytes_done, p.bytes_total, p.tensor ? p.tensor->name : "");
  };
  Result<QuantizeReport> r = QuantizeModel(args.input, args.output, options, on_progress);
  bar.Finish();
  if (!r.ok()) return ReportError(r.status());
  const QuantizeReport& rep = *r;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (args.json) {
    nlohmann::json j;
    j["input"] = args.input;
    j["output"] = args.output;
    j["type"] = args.type;
    j["file_bytes"] = rep.output_file_bytes;
    j["tensor_bytes"] = rep.output_tensor_bytes;
    j["input_tensor_bytes"] = rep.input_tensor_bytes;
    j["n_elements"] = rep.n_elements;
    j["bits_per_weight"] = rep.bits_per_weight();
    j["n_fallback"] = rep.n_fallback;
    j["n_requantized"] = rep.n_requantized;
    j["seconds"] = seconds;
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [type, n] : rep.type_counts) counts[DTypeName(type)] = n;
    j["tensor_types"] = counts;
    nlohmann::json tensors = nlohmann::json::array();
    for (const TensorQuantPlan& t : rep.tensors) {
      tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"from", DTypeName(t.from)},
                         {"to", DTypeName(t.to)}, {"fallback", t.fallback}});
    }
    j["tensors"] = tensors;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("wrote %s: %s (tensor data %s -> %s), %.3f bits per weight, %.1f s\n", args.output.c_str(),
              HumanBytes(rep.output_file_bytes).c_str(), HumanBytes(rep.input_tensor_bytes).c_str(),
              HumanBytes(rep.output_tensor_bytes).c_str(), rep.bits_per_weight(), seconds);
  std::string types;
  for (const auto& [type, n] : rep.type_counts) {
    types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + DTypeName(type);
  }
  std::printf("tensors: %s\n", types.c_str());
  if (rep.n_fallback > 0) {
    std::printf("note: %zu tensors used a fallback type (row length not a multiple of 256)\n", rep.n_fallback);
  }
  if (rep.n_requantized > 0) {
    std::printf("note: %zu tensors were re-quantized from an already quantized input; quality is "
                "better when quantizing from f16/bf16/f32\n",
                rep.n_requantized);
  }
  return 0;
}

}  // namespace

void RegisterQuantize(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<QuantizeArgs>();
  std::string types;
  for (const QuantizePreset& p : QuantizePresets()) types += (types.empty() ? "" : ", ") + p.name;
  CLI::App* cmd = app.add_subcommand("quantize", "Convert a GGUF model to another quantization type");
  cmd->add_option("input", args->input, "input GGUF file")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", args->output, "output GGUF file (written atomically)")->required();
  cmd->add_option("-t,--type", args->type, "target type: " + types)->required();
  cmd->add_option("--threads", args->threads, "worker threads (default: all hardware threads)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "print the result as JSON on stdout");
  cmd->callback([&ctx, args] { ctx.exit_code = RunQuantize(*args); });
}

}  // namespace formiga::cli
