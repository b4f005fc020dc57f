// formiga whatsapp: the WhatsApp channel's commands, and the functions
// `formiga serve --whatsapp` calls (cli/serve_channel.h).
//
//   formiga whatsapp emulate   a local stand-in of the Graph API + a chat page
//   formiga whatsapp serve     only the webhook (+ /health, /metrics) on a model
//
// Configuration: a JSON file (--config / --whatsapp-config) and the
// FORMIGA_WHATSAPP_* environment variables; secrets never on the command line.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>

#include "channels/whatsapp/channel.h"
#include "channels/whatsapp/emulator.h"
#include "cli/commands.h"
#include "cli/model_session.h"
#include "cli/serve_channel.h"
#include "cli/whatsapp_generator.h"
#include "runtime/engine_service.h"

namespace formiga::cli {
namespace {

using whatsapp::LogLevel;

void LogLine(LogLevel level, const std::string& msg) {
  static std::mutex mu;
  const std::time_t now = std::time(nullptr);
  char ts[32];
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char* lvl = level == LogLevel::kError ? "error" : level == LogLevel::kWarning ? "warning" : "info";
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%s whatsapp %s: %s\n", ts, lvl, msg.c_str());
  std::fflush(stderr);
}

std::atomic<bool> g_stop{false};
extern "C" void OnStopSignal(int) { g_stop = true; }

void InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

// The channel as `formiga serve` sees it; owns the generator and the channel.
class WhatsappServeChannel final : public ServeChannel {
 public:
  WhatsappServeChannel(std::unique_ptr<EngineReplyGenerator> gen, std::unique_ptr<whatsapp::WhatsappChannel> ch)
      : generator_(std::move(gen)), channel_(std::move(ch)) {}
  ~WhatsappServeChannel() override { Shutdown(); }
  std::string name() const override { return "whatsapp"; }
  nlohmann::json Health() const override { return channel_->Health(); }
  std::string Metrics() const override { return channel_->Metrics(); }
  std::vector<std::string> self_authenticated_paths() const override { return {channel_->config().webhook_path}; }
  void Shutdown() override { channel_->Shutdown(); }

 private:
  std::unique_ptr<EngineReplyGenerator> generator_;  // outlives channel_ (declared first, destroyed last)
  std::unique_ptr<whatsapp::WhatsappChannel> channel_;
};

struct EmulateArgs {
  std::string host = "127.0.0.1";
  int port = 8091;
  std::string webhook = "http://127.0.0.1:8080/webhook";
  std::string config;
};

int RunEmulate(const EmulateArgs& args) {
  Result<whatsapp::WhatsappConfig> config = whatsapp::LoadConfig(args.config);
  if (!config.ok()) return ReportError(config.status());
  whatsapp::EmulatorOptions eo;
  eo.host = args.host;
  eo.port = args.port;
  eo.webhook_url = args.webhook;
  eo.app_secret = config->app_secret;
  eo.access_token = config->access_token;
  if (!config->phone_number_id.empty()) eo.phone_number_id = config->phone_number_id;
  InstallStopHandlers();
  auto emu = whatsapp::GraphEmulator::Start(eo);
  if (!emu.ok()) return ReportError(emu.status());
  const std::string url = (*emu)->base_url();
  std::fprintf(stderr,
               "formiga whatsapp emulate: a stand-in of Meta's Graph API on %s\n"
               "  chat page:      %s/   (write as a WhatsApp user)\n"
               "  bot's webhook:  %s\n"
               "  webhooks are %s; sends must carry %s\n"
               "Point the bot at it: FORMIGA_WHATSAPP_GRAPH_URL=%s (with the same app secret, access token and\n"
               "phone-number id %s), then start `formiga whatsapp serve` or `formiga serve --whatsapp`.\n"
               "Ctrl-C stops.\n",
               url.c_str(), url.c_str(), args.webhook.c_str(),
               eo.app_secret.empty() ? "UNSIGNED (no app secret set: the bot needs --insecure-dev)" : "signed with the app secret",
               eo.access_token.empty() ? "any token" : "the configured access token", url.c_str(),
               eo.phone_number_id.c_str());
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  (*emu)->Stop();
  return 0;
}

struct StandaloneArgs {
  ModelArgs model;
  std::string host = "127.0.0.1";
  int port = 8080;
  WhatsappServeFlags flags;
};

int RunStandalone(StandaloneArgs& args) {
  InstallStopHandlers();
  // Configuration errors before the (slower) model load.
  Result<whatsapp::WhatsappConfig> config = whatsapp::LoadConfig(args.flags.config_path);
  if (!config.ok()) return ReportError(config.status());
  config->insecure_dev |= args.flags.insecure_dev;
  if (Status st = config->Validate(); !st.ok()) return ReportError(st);

  auto session = OpenModelSession(args.model, EngineOptions{});
  if (!session.ok()) return ReportError(session.status());
  std::unique_ptr<EngineService> service = EngineService::Start(*(*session)->engine);
  httplib::Server http;
  args.flags.enabled = true;
  auto channel = StartWhatsappChannel(args.flags, http, *service, **session);
  if (!channel.ok()) return ReportError(channel.status());
  ServeChannel& ch = **channel;
  http.Get("/health", [&](const httplib::Request&, httplib::Response& res) {
    nlohmann::json h = {{"status", "ok"}, {"model", (*session)->path}, {ch.name(), ch.Health()}};
    if (!h[ch.name()].value("ok", false)) h["status"] = "degraded";
    res.status = h["status"] == "ok" ? 200 : 503;
    res.set_content(h.dump(), "application/json");
  });
  http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    EngineSnapshot s = service->Snapshot();
    std::string out = ch.Metrics();
    out += "formiga_engine_running " + std::to_string(s.running) + "\nformiga_engine_waiting " +
           std::to_string(s.waiting) + "\n";
    res.set_content(out, "text/plain; version=0.0.4");
  });
  if (!http.bind_to_port(args.host, args.port)) {
    ch.Shutdown();
    return ReportError(Status::IOError("cannot listen on " + args.host + ":" + std::to_string(args.port) +
                                       ": is the port in use? pick another with --port"));
  }
  std::fprintf(stderr, "formiga whatsapp serve: %s on http://%s:%d (webhook, /health, /metrics)\n",
               (*session)->path.c_str(), args.host.c_str(), args.port);
  std::thread watcher([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    http.stop();
  });
  http.listen_after_bind();
  g_stop = true;
  watcher.join();
  ch.Shutdown();
  service->Shutdown(/*cancel_in_flight=*/true);
  channel->reset();
  return 0;
}

}  // namespace

void RegisterWhatsapp(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand("whatsapp", "WhatsApp channel: emulator and standalone webhook server");
  cmd->require_subcommand(1);

  static EmulateArgs emulate;
  CLI::App* em = cmd->add_subcommand("emulate",
                                     "local stand-in of Meta's Graph API with a chat page: try the bot with no Meta "
                                     "account (reads the same config/environment as the bot)");
  em->add_option("--host", emulate.host, "address to listen on")->capture_default_str();
  em->add_option("--port", emulate.port, "port to listen on")->capture_default_str();
  em->add_option("--webhook", emulate.webhook, "the bot's webhook URL the emulator posts to")->capture_default_str();
  em->add_option("--config", emulate.config, "WhatsApp config file (JSON; see docs/whatsapp.md)");
  em->callback([&ctx] { ctx.exit_code = RunEmulate(emulate); });

  static StandaloneArgs standalone;
  CLI::App* sv = cmd->add_subcommand(
      "serve", "serve only the WhatsApp webhook (+ /health, /metrics) on a model; `formiga serve --whatsapp` "
               "mounts the same webhook next to the OpenAI API");
  AddModelOptions(sv, standalone.model);
  sv->add_option("--host", standalone.host, "address to listen on (put HTTPS in front: docs/whatsapp.md)")
      ->capture_default_str();
  sv->add_option("--port", standalone.port, "port to listen on")->capture_default_str();
  sv->add_option("--config", standalone.flags.config_path, "WhatsApp config file (JSON; see docs/whatsapp.md)");
  sv->add_flag("--insecure-dev", standalone.flags.insecure_dev,
               "accept webhooks without a signature when no app secret is set (development only)");
  sv->callback([&ctx] { ctx.exit_code = RunStandalone(standalone); });
}

void AddWhatsappServeOptions(CLI::App* serve_cmd, WhatsappServeFlags& flags) {
  serve_cmd->add_flag("--whatsapp", flags.enabled,
                      "mount the WhatsApp Cloud API webhook (secrets from FORMIGA_WHATSAPP_* or the config file)");
  serve_cmd->add_option("--whatsapp-config", flags.config_path,
                        "WhatsApp config file (JSON; a \"whatsapp\" section or the whole file; docs/whatsapp.md)");
  serve_cmd->add_flag("--whatsapp-insecure-dev", flags.insecure_dev,
                      "accept unsigned webhooks when no app secret is set (development only)");
}

Result<std::unique_ptr<ServeChannel>> StartWhatsappChannel(const WhatsappServeFlags& flags, httplib::Server& http,
                                                           EngineService& service, const ModelSession& session) {
  FORMIGA_ASSIGN_OR_RETURN(whatsapp::WhatsappConfig config, whatsapp::LoadConfig(flags.config_path));
  config.insecure_dev |= flags.insecure_dev;
  FORMIGA_RETURN_IF_ERROR(config.Validate());
  if (config.app_secret.empty()) {
    LogLine(LogLevel::kWarning, "INSECURE: no app secret, webhook signatures are NOT verified (development only)");
  }
  FORMIGA_ASSIGN_OR_RETURN(std::unique_ptr<whatsapp::Store> store,
                           whatsapp::OpenSqliteStore(config.db_path, config.sqlite_synchronous));
  auto generator = std::make_unique<EngineReplyGenerator>(service, session);
  FORMIGA_ASSIGN_OR_RETURN(std::unique_ptr<whatsapp::WhatsappChannel> channel,
                           whatsapp::WhatsappChannel::Create(std::move(config), std::move(store), *generator, LogLine));
  channel->Mount(http);
  channel->Start();
  return std::unique_ptr<ServeChannel>(new WhatsappServeChannel(std::move(generator), std::move(channel)));
}

}  // namespace formiga::cli
