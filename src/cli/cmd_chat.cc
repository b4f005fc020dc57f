// formiga chat [-m MODEL]: interactive multi-turn chat in the terminal.
//
// The whole conversation is re-rendered with the model's chat template every
// turn; the engine's prefix cache finds the blocks of the earlier turns, so
// only the new turn is computed. When the history outgrows the context the
// oldest turns are dropped (the system message stays).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/model_session.h"
#include "cli/sampling_flags.h"

namespace formiga::cli {
namespace {

struct ChatArgs {
  ModelArgs model;
  SamplingFlags sampling;
  std::string system;
};

constexpr const char* kHelp =
    "commands: /reset (forget the conversation), /exit (quit), /help; Ctrl-C stops an answer, "
    "Ctrl-D quits\n";

int RunChat(ChatArgs& args) {
  InstallInterruptHandler();
  EngineOptions eo;
  eo.max_seqs = 1;
  auto session = OpenModelSession(args.model, eo);
  if (!session.ok()) return ReportError(session.status());
  ModelSession& s = **session;
  const int64_t n_ctx = s.engine->options().n_ctx;

  nlohmann::json history = nlohmann::json::array();
  auto reset = [&] {
    history = nlohmann::json::array();
    if (!args.system.empty()) history.push_back({{"role", "system"}, {"content", args.system}});
  };
  reset();
  std::fprintf(stderr, "formiga chat — %s\n%s", s.path.c_str(), kHelp);

  std::string line;
  while (true) {
    std::fputs("\n> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) {
      std::fputs("\n", stdout);
      break;  // Ctrl-D, or Ctrl-C at the prompt
    }
    if (line == "/exit" || line == "/quit") break;
    if (line == "/help") {
      std::fputs(kHelp, stderr);
      continue;
    }
    if (line == "/reset") {
      reset();
      std::fputs("(conversation cleared)\n", stderr);
      continue;
    }
    if (line.empty()) continue;
    history.push_back({{"role", "user"}, {"content", line}});

    // Fit the history into the context, leaving room for an answer.
    Result<std::vector<int32_t>> prompt = s.EncodeChat(history, true);
    const size_t first_turn = args.system.empty() ? 0 : 1;
    while (prompt.ok() && static_cast<int64_t>(prompt->size()) + 16 > n_ctx && history.size() > first_turn + 1) {
      history.erase(history.begin() + static_cast<long>(first_turn));
      prompt = s.EncodeChat(history, true);
    }
    if (!prompt.ok()) {
      ReportError(prompt.status());
      history.erase(history.end() - 1);
      continue;
    }
    if (static_cast<int64_t>(prompt->size()) + 16 > n_ctx) {
      std::fprintf(stderr, "formiga: that message alone (%zu tokens) does not fit the context (%lld): "
                   "shorten it or raise --ctx\n", prompt->size(), static_cast<long long>(n_ctx));
      history.erase(history.end() - 1);
      continue;
    }

    GenerationRequest req;
    req.prompt = *prompt;
    Status st = args.sampling.Apply(req);
    if (!st.ok()) return ReportError(st);
    std::string answer;
    TokenEvent last;
    ClearInterrupted();
    req.on_event = [&](const TokenEvent& ev) {
      answer += ev.text;
      if (!ev.text.empty()) {
        std::fwrite(ev.text.data(), 1, ev.text.size(), stdout);
        std::fflush(stdout);
      }
      if (ev.done) last = ev;
      return !Interrupted();
    };
    Result<int64_t> id = s.engine->Submit(std::move(req));
    if (!id.ok()) {
      ReportError(id.status());
      history.erase(history.end() - 1);
      continue;
    }
    st = s.engine->RunUntilIdle();
    if (!st.ok()) return ReportError(st);
    ClearInterrupted();
    history.push_back({{"role", "assistant"}, {"content", answer}});
    const GenerationStats& g = last.stats;
    const double decode_s = g.total_s - g.time_to_first_token_s;
    std::fprintf(stderr, "\n[%lld tokens, %.1f t/s%s%s]", static_cast<long long>(g.generated_tokens),
                 g.generated_tokens > 1 && decode_s > 0 ? (g.generated_tokens - 1) / decode_s : 0.0,
                 g.cached_prompt_tokens > 0 ? ", prompt cached " : "",
                 g.cached_prompt_tokens > 0 ? std::to_string(g.cached_prompt_tokens).c_str() : "");
    if (last.finish == FinishReason::kCancelled) std::fputs(" (stopped)", stderr);
  }
  return 0;
}

}  // namespace

void RegisterChat(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<ChatArgs>();
  CLI::App* cmd = app.add_subcommand("chat", "interactive multi-turn chat in the terminal");
  AddModelOptions(cmd, args->model);
  AddSamplingFlags(cmd, args->sampling);
  cmd->add_option("--system", args->system, "system message");
  cmd->callback([args, &ctx] { ctx.exit_code = RunChat(*args); });
}

}  // namespace formiga::cli
