// ApiServer: the HTTP transport of `formiga serve` (cpp-httplib). Routes:
//   OpenAI  GET /v1/models, POST /v1/completions, POST /v1/chat/completions
//   TGI     POST /generate, POST /generate_stream, GET /info, GET /health
//   GET /metrics (Prometheus), GET / (the web chat, embedded at build time)
// Request parsing/validation lives in api_request.h and response bodies in
// api_response.h; this file only moves bytes, checks keys, limits and CORS,
// and turns engine events into (streamed) responses.
//
// Threads: cpp-httplib runs each connection on a worker of its pool (sized
// from max_concurrent_requests); a generation's HTTP thread waits on its own
// event queue (GenerationRun) while the EngineService thread computes.
//
// Thread safety: Bind/Listen/Stop from the owner thread; handlers run on
// httplib's workers; everything they share is synchronized.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/engine_service.h"
#include "server/metrics.h"

namespace httplib {
class Server;
}

namespace formiga::server {

// What the server needs from the model, without knowing how it was opened.
struct ServerModel {
  std::string id;          // served name (/v1/models, "model" in responses)
  int64_t n_ctx = 0;       // tokens per sequence (prompt + generated)
  int64_t vocab_size = 0;
  nlohmann::json info;     // extra fields for /info (architecture, dtype, ...)
  std::function<Result<std::vector<int32_t>>(const nlohmann::json& messages)> encode_chat;
  std::function<Result<std::vector<int32_t>>(const std::string& text)> encode_text;
  std::function<std::string(int32_t id)> token_text;  // one token, decoded
  std::function<bool(int32_t id)> is_special;         // control / end tokens
};

struct ServerOptions {
  std::string host = "127.0.0.1";   // loopback unless told otherwise
  int port = 8080;                  // 0: any free port
  std::vector<std::string> api_keys;  // empty: no authentication
  std::string cors_allow_origin;    // empty: no CORS headers
  int64_t max_input_tokens = 0;     // 0: n_ctx - 1
  int64_t max_total_tokens = 0;     // 0: n_ctx
  int64_t max_concurrent_requests = 128;  // generation requests at once; over it 429
  int max_n = 16;                   // choices per request
  double request_timeout_s = 600;   // per generation request; 0 = none
  size_t max_body_bytes = 4u << 20; // larger bodies get 413
  int read_timeout_s = 10;          // per read: bounds slow (slowloris) clients
  std::string version = "0";
};

class ApiServer {
 public:
  ApiServer(EngineService& service, ServerModel model, ServerOptions options);
  ~ApiServer();

  // The underlying server, for channels that mount their own routes (before
  // Bind: the web page's catch-all GET route is added there, after theirs).
  httplib::Server& http();
  // Extra /health entries and /metrics lines (the WhatsApp channel's).
  void AddHealthSource(std::string name, std::function<nlohmann::json()> source);
  void AddMetricsSource(std::function<std::string()> source);
  // A path whose handler authenticates the caller itself (a signed webhook):
  // the API key is not asked for it.
  void AddSelfAuthenticatedPath(std::string path);

  // Binds the socket; returns the port (useful with port 0).
  Result<int> Bind();
  // Serves until Stop(); returns when every connection closed.
  Status Listen();
  // Refuses new generations (503) from now on; in-flight ones continue.
  void BeginDrain();
  // Closes the listening socket; Listen() returns once handlers finished.
  void Stop();

  // Generation requests being served now.
  int64_t in_flight() const;
  const ServerOptions& options() const { return options_; }
  ServerMetrics& metrics() { return metrics_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  ServerOptions options_;
  ServerMetrics metrics_;
};

}  // namespace formiga::server
