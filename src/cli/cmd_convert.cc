// formiga convert HF_DIR OUT.gguf [--type f16] [--threads N] [--name NAME] [--json]
//
// Runs model/convert_hf (the library maps, transforms, quantizes and writes);
// this file parses flags, draws the progress bar on stderr, warns when the
// folder had no tokenizer.json, and prints the result (a summary with size and
// bits per weight, or one JSON object on stdout with --json).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/terminal.h"
#include "model/convert_hf.h"

namespace formiga::cli {
namespace {

struct ConvertArgs {
  std::string input;
  std::string output;
  std::string type = "f16";
  std::string name;
  int threads = 0;
  bool json = false;
};

int RunConvert(const ConvertArgs& args) {
  ConvertOptions options;
  options.type = args.type;
  options.threads = args.threads;
  options.name = args.name;
  const auto start = std::chrono::steady_clock::now();
  ProgressBar bar("convert");
  auto on_progress = [&](const ConvertProgress& p) { bar.Update(p.bytes_done, p.bytes_total, p.tensor); };
  Result<ConvertReport> r = ConvertHfCheckpoint(args.input, args.output, options, on_progress);
  bar.Finish();
  if (!r.ok()) return ReportError(r.status());
  const ConvertReport& rep = *r;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (rep.tokenizer.placeholder) {
    std::fprintf(stderr,
                 "formiga: warning: %s has no tokenizer.json: wrote a placeholder vocabulary of %lld tokens "
                 "(<formiga_tok_N> and byte tokens) so the file loads; it is not the model's tokenizer\n",
                 args.input.c_str(), static_cast<long long>(rep.tokenizer.n_tokens));
  }
  if (args.json) {
    nlohmann::json j;
    j["input"] = args.input;
    j["output"] = args.output;
    j["type"] = args.type;
    j["architecture"] = ArchName(rep.config.arch);
    j["file_bytes"] = rep.output_file_bytes;
    j["tensor_bytes"] = rep.output_tensor_bytes;
    j["input_tensor_bytes"] = rep.input_tensor_bytes;
    j["n_elements"] = rep.n_elements;
    j["bits_per_weight"] = rep.bits_per_weight();
    j["n_fallback"] = rep.n_fallback;
    j["seconds"] = seconds;
    j["skipped"] = rep.skipped;
    j["tokenizer"] = {{"placeholder", rep.tokenizer.placeholder}, {"model", rep.tokenizer.model},
                      {"pre", rep.tokenizer.pre},                 {"n_tokens", rep.tokenizer.n_tokens},
                      {"n_padding", rep.tokenizer.n_padding},     {"n_merges", rep.tokenizer.n_merges},
                      {"chat_template", rep.tokenizer.chat_template}};
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
  std::printf("wrote %s: %s %s, %lld tensors, %.3f M parameters, %s of tensor data (from %s), %.3f bits per "
              "weight, %.1f s\n",
              args.output.c_str(), ArchName(rep.config.arch), HumanBytes(rep.output_file_bytes).c_str(),
              static_cast<long long>(rep.tensors.size()), static_cast<double>(rep.n_elements) / 1e6,
              HumanBytes(rep.output_tensor_bytes).c_str(), HumanBytes(rep.input_tensor_bytes).c_str(),
              rep.bits_per_weight(), seconds);
  std::string types;
  for (const auto& [type, n] : rep.type_counts) {
    types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + DTypeName(type);
  }
  std::printf("tensors: %s\n", types.c_str());
  if (!rep.tokenizer.placeholder) {
    std::printf("tokenizer: %s%s%s, %lld tokens, %lld merges%s\n", rep.tokenizer.model.c_str(),
                rep.tokenizer.pre.empty() ? "" : " / ", rep.tokenizer.pre.c_str(),
                static_cast<long long>(rep.tokenizer.n_tokens), static_cast<long long>(rep.tokenizer.n_merges),
                rep.tokenizer.chat_template ? ", chat template" : "");
  }
  if (rep.n_fallback > 0) {
    std::printf("note: %zu tensors used a fallback type (row length not a multiple of the type's block)\n",
                rep.n_fallback);
  }
  return 0;
}

}  // namespace

void RegisterConvert(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<ConvertArgs>();
  std::string types;
  for (const QuantizePreset& p : QuantizePresets()) types += (types.empty() ? "" : ", ") + p.name;
  CLI::App* cmd = app.add_subcommand("convert", "Convert a Hugging Face safetensors checkpoint folder to GGUF");
  cmd->add_option("input", args->input, "checkpoint folder (config.json, *.safetensors, tokenizer.json)")
      ->required();
  cmd->add_option("output", args->output, "output GGUF file (written atomically)")->required();
  cmd->add_option("-t,--type", args->type, "output type (default f16): " + types);
  cmd->add_option("--threads", args->threads, "worker threads (default: all hardware threads)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--name", args->name, "general.name (default: the folder's name)");
  cmd->add_flag("--json", args->json, "print the result as JSON on stdout");
  cmd->callback([&ctx, args] { ctx.exit_code = RunConvert(*args); });
}

}  // namespace formiga::cli
