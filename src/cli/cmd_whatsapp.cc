// formiga whatsapp: placeholder registration; the channel is being built.
#include "cli/commands.h"
#include "cli/serve_channel.h"

namespace formiga::cli {

void RegisterWhatsapp(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("whatsapp", "WhatsApp channel tools (not built yet)");
  cmd->callback([&ctx] {
    ctx.exit_code = ReportError(Status::Unsupported("'formiga whatsapp' is not built yet"));
  });
}

void AddWhatsappServeOptions(CLI::App* serve_cmd, WhatsappServeFlags& flags) {
  serve_cmd->add_flag("--whatsapp", flags.enabled, "mount the WhatsApp webhook (not built yet)");
}

Result<std::unique_ptr<ServeChannel>> StartWhatsappChannel(const WhatsappServeFlags&, httplib::Server&,
                                                           EngineService&, const ModelSession&) {
  return Status::Unsupported("the WhatsApp channel is not built yet");
}

}  // namespace formiga::cli
