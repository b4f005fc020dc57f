// formiga quantize (placeholder until its implementation lands).
#include "cli/commands.h"

namespace formiga::cli {

void RegisterQuantize(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("quantize", "(not yet implemented)");
  cmd->allow_extras();
  cmd->callback([&ctx] { ctx.exit_code = ReportError(Status::Unsupported("'quantize' is not implemented yet")); });
}

}  // namespace formiga::cli
