// formiga run -m MODEL -p PROMPT [-n N] [sampling flags] [--chat [--system S]] [--json]
//
// One prompt, one streamed completion: a batch of one through the same engine
// the server uses. Prints only the completion (not the prompt) on stdout;
// --verbose adds load/speed/memory lines on stderr; --json prints one JSON
// object at the end instead of streaming.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_session.h"
#include "cli/sampling_flags.h"
#include "core/process_memory.h"

namespace formiga::cli {
namespace {

struct RunArgs {
  ModelArgs model;
  SamplingFlags sampling;
  std::string prompt;
  bool chat = false;
  std::string system;
  bool json = false;
};

int RunRun(RunArgs& args) {
  InstallInterruptHandler();
  EngineOptions eo;
  eo.max_seqs = 1;
  auto session = OpenModelSession(args.model, eo);
  if (!session.ok()) return ReportError(session.status());
  ModelSession& s = **session;

  Result<std::vector<int32_t>> prompt = [&]() -> Result<std::vector<int32_t>> {
    if (!args.chat) return s.EncodeText(args.prompt);
    nlohmann::json messages = nlohmann::json::array();
    if (!args.system.empty()) messages.push_back({{"role", "system"}, {"content", args.system}});
    messages.push_back({{"role", "user"}, {"content", args.prompt}});
    return s.EncodeChat(messages, /*add_generation_prompt=*/true);
  }();
  if (!prompt.ok()) return ReportError(prompt.status());

  GenerationRequest req;
  req.prompt = *prompt;
  Status st = args.sampling.Apply(req);
  if (!st.ok()) return ReportError(st);

  std::string text;
  TokenEvent last;
  req.on_event = [&](const TokenEvent& ev) {
    text += ev.text;
    if (!args.json && !ev.text.empty()) {
      std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
      std::fflush(stdout);
    }
    if (ev.done) last = ev;
    return !Interrupted();
  };
  Result<int64_t> id = s.engine->Submit(std::move(req));
  if (!id.ok()) return ReportError(id.status());
  st = s.engine->RunUntilIdle();
  if (!st.ok()) return ReportError(st);
  if (last.finish == FinishReason::kError) return ReportError(last.error);

  const GenerationStats& g = last.stats;
  const double decode_s = g.total_s - g.time_to_first_token_s;
  const double pp_tps = g.time_to_first_token_s > 0 ? g.prompt_tokens / g.time_to_first_token_s : 0;
  const double tg_tps = g.generated_tokens > 1 && decode_s > 0 ? (g.generated_tokens - 1) / decode_s : 0;
  const ProcessMemory mem = ReadProcessMemory();
  if (args.json) {
    nlohmann::json j = {
        {"model", s.path},
        {"text", text},
        {"finish_reason", FinishReasonName(last.finish)},
        {"prompt_tokens", g.prompt_tokens},
        {"generated_tokens", g.generated_tokens},
        {"seed", args.sampling.seed_used},
        {"timings",
         {{"load_s", s.load_seconds},
          {"time_to_first_token_s", g.time_to_first_token_s},
          {"total_s", g.total_s},
          {"prompt_tokens_per_s", pp_tps},
          {"generated_tokens_per_s", tg_tps}}},
        {"memory", {{"rss_bytes", mem.rss_bytes}, {"peak_rss_bytes", mem.peak_rss_bytes},
                    {"kv_cache_bytes", s.engine->kv_bytes()}}},
    };
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("\n");
    if (last.finish == FinishReason::kCancelled) std::fprintf(stderr, "formiga: interrupted\n");
    if (args.model.verbose) {
      std::fprintf(stderr,
                   "formiga: prompt %lld tokens (%.1f t/s), generated %lld tokens (%.1f t/s), finish: %s; "
                   "peak resident %.1f MiB\n",
                   static_cast<long long>(g.prompt_tokens), pp_tps, static_cast<long long>(g.generated_tokens),
                   tg_tps, FinishReasonName(last.finish), mem.peak_rss_bytes / (1024.0 * 1024.0));
    }
  }
  return last.finish == FinishReason::kCancelled ? 130 : 0;
}

}  // namespace

void RegisterRun(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "generate a completion for one prompt (streamed)");
  AddModelOptions(cmd, args->model);
  AddSamplingFlags(cmd, args->sampling);
  cmd->add_option("-p,--prompt", args->prompt, "the prompt")->required();
  cmd->add_flag("--chat", args->chat, "wrap the prompt in the model's chat template as a user message");
  cmd->add_option("--system", args->system, "system message (with --chat)");
  cmd->add_flag("--json", args->json, "print one JSON object with the text, timings and memory");
  cmd->callback([args, &ctx] { ctx.exit_code = RunRun(*args); });
}

}  // namespace formiga::cli
