// formiga serve: placeholder registration; the command is being built.
#include "cli/commands.h"

namespace formiga::cli {

void RegisterServe(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("serve", "serve a model over HTTP (not built yet)");
  cmd->callback([&ctx] {
    ctx.exit_code = ReportError(Status::Unsupported("'formiga serve' is not built yet"));
  });
}

}  // namespace formiga::cli
