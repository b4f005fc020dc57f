// formiga info (placeholder until its implementation lands).
#include "cli/commands.h"

namespace formiga::cli {

void RegisterInfo(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("info", "(not yet implemented)");
  cmd->allow_extras();
  cmd->callback([&ctx] { ctx.exit_code = ReportError(Status::Unsupported("'info' is not implemented yet")); });
}

}  // namespace formiga::cli
