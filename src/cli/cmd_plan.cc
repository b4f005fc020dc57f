// formiga plan: placeholder registration; the command is being built.
#include "cli/commands.h"

namespace formiga::cli {

void RegisterPlan(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("plan", "size a model: memory, speed, cost (not built yet)");
  cmd->callback([&ctx] {
    ctx.exit_code = ReportError(Status::Unsupported("'formiga plan' is not built yet"));
  });
}

}  // namespace formiga::cli
