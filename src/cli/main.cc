// formiga: one binary, many subcommands.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"

#ifndef FORMIGA_VERSION
#define FORMIGA_VERSION "0.1.0"
#endif

namespace formiga::cli {

int ReportError(const Status& status) {
  std::fprintf(stderr, "formiga: error: %s\n", status.ToString().c_str());
  return status.code() == StatusCode::kInternal ? 2 : 1;
}

std::string DefaultModelPath() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("FORMIGA_MODEL"); env != nullptr && *env != '\0') return env;
  const char* name = "SmolLM2-135M-Instruct.Q4_1.gguf";
  std::vector<fs::path> candidates;
#ifdef FORMIGA_SOURCE_DIR
  candidates.push_back(fs::path(FORMIGA_SOURCE_DIR) / ".cache" / "models" / name);
#endif
  if (const char* home = std::getenv("HOME")) {
    candidates.push_back(fs::path(home) / ".cache" / "formiga" / "models" / name);
  }
  for (const fs::path& p : candidates) {
    std::error_code ec;
    if (fs::exists(p, ec)) return p.string();
  }
  return "";
}

}  // namespace formiga::cli

int main(int argc, char** argv) {
  using namespace formiga::cli;
  CLI::App app{"formiga: run, serve and size large language models on the hardware you have"};
  app.set_version_flag("--version", FORMIGA_VERSION);
  app.require_subcommand(1);
  CommandContext ctx;
  RegisterRun(app, ctx);
  RegisterChat(app, ctx);
  RegisterPerplexity(app, ctx);
  RegisterInfo(app, ctx);
  RegisterTokenize(app, ctx);
  RegisterQuantize(app, ctx);
  RegisterSynth(app, ctx);
  RegisterConvert(app, ctx);
  RegisterBench(app, ctx);
  RegisterPlan(app, ctx);
  RegisterServe(app, ctx);
  RegisterWhatsapp(app, ctx);
  // NOTE: CLI11 reports an unknown subcommand as "a subcommand is required";
  // name the word the user typed and the commands that exist instead.
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->check_name(argv[1]);
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::fprintf(stderr, "formiga: error: unknown command '%s' (commands: %s; see formiga --help)\n",
                   argv[1], names.c_str());
      return 1;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return ctx.exit_code;
}
