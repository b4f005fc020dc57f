// formiga bench: placeholder registration; the command is being built.
#include "cli/commands.h"

namespace formiga::cli {

void RegisterBench(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("bench", "measure prompt/generation speed (not built yet)");
  cmd->callback([&ctx] {
    ctx.exit_code = ReportError(Status::Unsupported("'formiga bench' is not built yet"));
  });
}

}  // namespace formiga::cli
