// The seam between `formiga serve` and the channels mounted next to its API
// (the WhatsApp webhook today). cmd_serve.cc owns the HTTP server and the
// EngineService; a channel adds its routes before the server listens, and is
// shut down before the engine stops.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace httplib {
class Server;
}

namespace formiga {
class EngineService;
}

namespace formiga::cli {

struct ModelSession;

class ServeChannel {
 public:
  virtual ~ServeChannel() = default;
  virtual std::string name() const = 0;
  // Merged into GET /health under name(); "ok": false makes /health say so.
  virtual nlohmann::json Health() const = 0;
  // Prometheus text exposition lines appended to GET /metrics.
  virtual std::string Metrics() const = 0;
  // Paths the channel authenticates itself (a signed webhook): the server's
  // API key is not asked there, since the caller (Meta) cannot send one.
  virtual std::vector<std::string> self_authenticated_paths() const { return {}; }
  // Stop taking new work; persist or finish what is in flight. Called on
  // SIGTERM/SIGINT before the EngineService shuts down.
  virtual void Shutdown() = 0;
};

// `formiga serve` flags of the WhatsApp channel (--whatsapp, its config file,
// the insecure development switch); defined in cmd_whatsapp.cc.
struct WhatsappServeFlags {
  bool enabled = false;
  std::string config_path;
  bool insecure_dev = false;
};
void AddWhatsappServeOptions(CLI::App* serve_cmd, WhatsappServeFlags& flags);

// Mounts the webhook on `http` and starts the channel's worker and sender.
// Called only when flags.enabled.
Result<std::unique_ptr<ServeChannel>> StartWhatsappChannel(const WhatsappServeFlags& flags, httplib::Server& http,
                                                           EngineService& service, const ModelSession& session);

}  // namespace formiga::cli
