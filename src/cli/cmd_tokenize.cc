// formiga tokenize (placeholder until its implementation lands).
#include "cli/commands.h"

namespace formiga::cli {

void RegisterTokenize(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("tokenize", "(not yet implemented)");
  cmd->allow_extras();
  cmd->callback([&ctx] { ctx.exit_code = ReportError(Status::Unsupported("'tokenize' is not implemented yet")); });
}

}  // namespace formiga::cli
