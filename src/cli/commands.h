// The `formiga` subcommands. Each lives in its own cmd_<name>.cc and registers
// itself on the CLI11 app; main.cc only wires them together.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "core/status.h"

namespace formiga::cli {

// Shared state of one invocation: the exit code a subcommand leaves.
struct CommandContext {
  int exit_code = 0;
};

// Prints "formiga: error: <status>" to stderr and returns the exit code for it
// (1 for user errors, 2 for internal ones).
int ReportError(const Status& status);

// Default model when -m is omitted: $FORMIGA_MODEL, else the SmolLM2 file the
// setup script fetched (.cache/models next to the binary's source tree or
// ~/.cache/formiga/models). Empty when none is found.
std::string DefaultModelPath();

void RegisterInfo(CLI::App& app, CommandContext& ctx);
void RegisterTokenize(CLI::App& app, CommandContext& ctx);
void RegisterQuantize(CLI::App& app, CommandContext& ctx);
void RegisterSynth(CLI::App& app, CommandContext& ctx);
void RegisterConvert(CLI::App& app, CommandContext& ctx);
void RegisterRun(CLI::App& app, CommandContext& ctx);
void RegisterChat(CLI::App& app, CommandContext& ctx);
void RegisterPerplexity(CLI::App& app, CommandContext& ctx);
void RegisterBench(CLI::App& app, CommandContext& ctx);
void RegisterPlan(CLI::App& app, CommandContext& ctx);
void RegisterServe(CLI::App& app, CommandContext& ctx);
void RegisterWhatsapp(CLI::App& app, CommandContext& ctx);

}  // namespace formiga::cli
