// formiga synth (placeholder until its implementation lands).
#include "cli/commands.h"

namespace formiga::cli {

void RegisterSynth(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("synth", "(not yet implemented)");
  cmd->allow_extras();
  cmd->callback([&ctx] { ctx.exit_code = ReportError(Status::Unsupported("'synth' is not implemented yet")); });
}

}  // namespace formiga::cli
