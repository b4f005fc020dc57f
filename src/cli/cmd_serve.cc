// formiga serve [-m MODEL] [--host H] [--port P] [--api-key K]... [limits]
//
// Puts a model behind HTTP: the OpenAI API (/v1/chat/completions,
// /v1/completions, /v1/models), Hugging Face TGI's (/generate,
// /generate_stream, /info, /health), Prometheus /metrics and a web chat at /.
// TGI's launcher flag names are accepted too (--model-id, --hostname,
// --max-input-length, --revision), so a TGI launch line runs unchanged.
//
// Prints one line on stdout when ready ("formiga: serving MODEL at URL").
// SIGTERM/SIGINT: stop taking requests, let in-flight ones finish (up to
// --shutdown-grace seconds, then cancel them), exit 0; a second signal
// cancels at once.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/model_session.h"
#include "cli/serve_channel.h"
#include "runtime/engine_service.h"
#include "server/http_server.h"

namespace formiga::cli {
namespace {

struct ServeArgs {
  ModelArgs model;
  std::string model_id;  // TGI's name for -m
  std::string revision;  // TGI: hub revision (ignored: formiga serves local files)
  std::string served_model_name;
  server::ServerOptions server;
  std::vector<std::string> api_keys;
  int64_t max_batch_prefill_tokens = 512;
  int64_t max_batch_size = 32;
  int64_t kv_cache_mib = 512;
  double shutdown_grace_s = 30;
  WhatsappServeFlags whatsapp;
};

std::vector<std::string> SplitKeys(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string k = s.substr(start, end - start);
    if (!k.empty()) out.push_back(k);
    start = end + 1;
  }
  return out;
}

// Re-creates the engine with the serve limits: `max_seqs` running sequences
// and as many KV blocks as `kv_mib` holds (at least one full context).
Status ResizeEngine(ModelSession& s, const ServeArgs& a) {
  EngineOptions eo = s.engine->options();
  const uint64_t bytes_per_block = s.engine->kv_bytes() / static_cast<uint64_t>(eo.n_blocks);
  const int64_t per_ctx = (eo.n_ctx + eo.block_size - 1) / eo.block_size;
  const int64_t budget = static_cast<int64_t>((static_cast<uint64_t>(a.kv_cache_mib) << 20) / bytes_per_block);
  eo.max_seqs = a.max_batch_size;
  eo.n_blocks = std::max(per_ctx, std::min(budget, a.max_batch_size * per_ctx));
  s.engine.reset();
  FORMIGA_ASSIGN_OR_RETURN(s.engine, Engine::Create(*s.model, *s.tokenizer, eo));
  return Status::Ok();
}

server::ServerModel MakeServerModel(const ModelSession& s, const std::string& name) {
  server::ServerModel m;
  m.id = name.empty() ? std::filesystem::path(s.path).stem().string() : name;
  m.n_ctx = s.engine->options().n_ctx;
  m.vocab_size = s.model->config().vocab_size;
  m.info = {{"model_dtype", "gguf"},
            {"model_device_type", s.backend->name()},
            {"architecture", ArchName(s.model->config().arch)},
            {"context_length", m.n_ctx},
            {"max_batch_prefill_tokens", s.engine->options().max_batch_tokens},
            {"max_batch_size", s.engine->options().max_seqs},
            {"kv_blocks", s.engine->options().n_blocks},
            {"kv_block_size", s.engine->options().block_size}};
  const ModelSession* sp = &s;
  m.encode_chat = [sp](const nlohmann::json& messages) { return sp->EncodeChat(messages, true); };
  m.encode_text = [sp](const std::string& text) { return sp->EncodeText(text); };
  m.token_text = [sp](int32_t id) {
    if (id < 0 || id >= sp->tokenizer->vocab_size()) return std::string();
    const int32_t ids[1] = {id};
    return sp->tokenizer->Decode(ids, /*skip_special=*/false);
  };
  m.is_special = [sp](int32_t id) { return sp->tokenizer->IsControl(id) || sp->tokenizer->IsEndOfGeneration(id); };
  return m;
}

int RunServe(ServeArgs& a) {
  // NOTE: signals are taken synchronously by sigwait below; block them before
  // any thread (backend pool, engine, HTTP workers) exists so all inherit it.
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  if (!a.model_id.empty()) a.model.model = a.model_id;
  if (!a.revision.empty()) {
    std::fprintf(stderr, "formiga: --revision %s ignored: formiga serves a local GGUF file (-m/--model-id)\n",
                 a.revision.c_str());
  }
  a.server.api_keys = a.api_keys;
  if (const char* env = std::getenv("FORMIGA_API_KEY")) {
    for (std::string& k : SplitKeys(env)) a.server.api_keys.push_back(std::move(k));
  }
  if (a.max_batch_size <= 0) return ReportError(Status::InvalidArgument("--max-batch-size must be positive"));
  if (a.kv_cache_mib <= 0) return ReportError(Status::InvalidArgument("--kv-cache-mib must be positive"));
  if (a.server.max_concurrent_requests <= 0) {
    return ReportError(Status::InvalidArgument("--max-concurrent-requests must be positive"));
  }
  if (a.server.max_input_tokens > 0 && a.server.max_total_tokens > 0 &&
      a.server.max_input_tokens >= a.server.max_total_tokens) {
    return ReportError(Status::InvalidArgument("--max-input-tokens (" + std::to_string(a.server.max_input_tokens) +
                                               ") must be less than --max-total-tokens (" +
                                               std::to_string(a.server.max_total_tokens) + ")"));
  }

  EngineOptions eo;
  eo.max_seqs = 1;  // sized below, once the bytes per KV block are known
  eo.max_batch_tokens = a.max_batch_prefill_tokens;
  if (a.model.ctx == 0 && a.server.max_total_tokens > 0) a.model.ctx = a.server.max_total_tokens;
  auto session = OpenModelSession(a.model, eo);
  if (!session.ok()) return ReportError(session.status());
  ModelSession& s = **session;
  if (Status st = ResizeEngine(s, a); !st.ok()) return ReportError(st);
  if (a.server.max_total_tokens > s.engine->options().n_ctx) {
    return ReportError(Status::InvalidArgument(
        "--max-total-tokens " + std::to_string(a.server.max_total_tokens) + " is more than the context (" +
        std::to_string(s.engine->options().n_ctx) + "): raise --ctx or lower --max-total-tokens"));
  }

  EngineServiceOptions so;
  so.max_queued = a.server.max_concurrent_requests * a.server.max_n;
  std::unique_ptr<EngineService> service = EngineService::Start(*s.engine, so);
  a.server.version = FORMIGA_VERSION;
  server::ServerModel served = MakeServerModel(s, a.served_model_name);
  const std::string served_id = served.id;
  server::ApiServer api(*service, std::move(served), a.server);

  std::shared_ptr<ServeChannel> channel;
  if (a.whatsapp.enabled) {
    auto ch = StartWhatsappChannel(a.whatsapp, api.http(), *service, s);
    if (!ch.ok()) return ReportError(ch.status());
    channel = std::shared_ptr<ServeChannel>(std::move(*ch));
    api.AddHealthSource(channel->name(), [channel] { return channel->Health(); });
    api.AddMetricsSource([channel] { return channel->Metrics(); });
    for (const std::string& path : channel->self_authenticated_paths()) api.AddSelfAuthenticatedPath(path);
  }

  Result<int> port = api.Bind();
  if (!port.ok()) return ReportError(port.status());
  Status listen_status;
  std::thread listener([&] { listen_status = api.Listen(); });
  const std::string host = a.server.host.find(':') != std::string::npos ? "[" + a.server.host + "]" : a.server.host;
  std::printf("formiga: serving %s at http://%s:%d/ (OpenAI /v1, TGI /generate, metrics /metrics, web chat /)\n",
              served_id.c_str(), host.c_str(), *port);
  std::fflush(stdout);
  if (a.model.verbose) {
    const EngineOptions& o = s.engine->options();
    std::fprintf(stderr,
                 "formiga: %lld KV blocks of %lld (%.1f MiB), %lld sequences at once, %lld tokens per step, "
                 "%zu API key(s)%s\n",
                 static_cast<long long>(o.n_blocks), static_cast<long long>(o.block_size),
                 s.engine->kv_bytes() / 1048576.0, static_cast<long long>(o.max_seqs),
                 static_cast<long long>(o.max_batch_tokens), a.server.api_keys.size(),
                 a.server.api_keys.empty() ? " (no authentication)" : "");
  }

  int sig = 0;
  sigwait(&sigs, &sig);
  std::fprintf(stderr, "formiga: %s: finishing in-flight requests (up to %.0f s; again to cancel them)\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", a.shutdown_grace_s);
  api.BeginDrain();
  if (channel) channel->Shutdown();
  auto drained = std::async(std::launch::async, [&] { service->Shutdown(/*cancel_in_flight=*/false); });
  const auto grace_end = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(a.shutdown_grace_s));
  while (drained.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    timespec zero{0, 0};
    const bool again = sigtimedwait(&sigs, nullptr, &zero) > 0;
    if (again || std::chrono::steady_clock::now() >= grace_end) {
      service->Shutdown(/*cancel_in_flight=*/true);
      break;
    }
  }
  drained.wait();
  // Let the HTTP threads write the final events they already have.
  const auto flush_end = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (api.in_flight() > 0 && std::chrono::steady_clock::now() < flush_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  api.Stop();
  listener.join();
  service.reset();
  std::fprintf(stderr, "formiga: stopped\n");
  if (!listen_status.ok()) return ReportError(listen_status);
  return 0;
}

}  // namespace

void RegisterServe(CLI::App& app, CommandContext& ctx) {
  auto a = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "serve a model over HTTP: OpenAI and TGI APIs, Prometheus metrics, web chat");
  AddModelOptions(cmd, a->model);
  server::ServerOptions& o = a->server;
  cmd->add_option("--model-id", a->model_id, "same as -m (TGI's flag name): the GGUF file to serve");
  cmd->add_option("--revision", a->revision, "accepted for TGI launch lines and ignored (formiga serves local files)");
  cmd->add_option("--served-model-name", a->served_model_name, "model name in the API (default: the file's name)");
  cmd->add_option("--host,--hostname", o.host, "address to listen on (0.0.0.0: every interface)")->capture_default_str();
  cmd->add_option("--port", o.port, "TCP port (0: pick a free one; the ready line says which)")->capture_default_str();
  cmd->add_option("--api-key", a->api_keys,
                  "accept this key as 'Authorization: Bearer KEY' (repeatable; prefer $FORMIGA_API_KEY, comma-separated: "
                  "the command line is visible to other users)");
  cmd->add_option("--max-input-tokens,--max-input-length", o.max_input_tokens,
                  "longest prompt in tokens (0: context - 1)")->capture_default_str();
  cmd->add_option("--max-total-tokens", o.max_total_tokens,
                  "prompt + generated tokens per request (0: the context)")->capture_default_str();
  cmd->add_option("--max-batch-prefill-tokens", a->max_batch_prefill_tokens,
                  "token budget of one engine step (prompt chunks + decode tokens)")->capture_default_str();
  cmd->add_option("--max-batch-size", a->max_batch_size, "sequences computed together at most")->capture_default_str();
  cmd->add_option("--max-concurrent-requests", o.max_concurrent_requests,
                  "generation requests at once; more get 429 with Retry-After")->capture_default_str();
  cmd->add_option("--kv-cache-mib", a->kv_cache_mib,
                  "memory for the paged KV cache (at least one full context is kept)")->capture_default_str();
  cmd->add_option("--cors-allow-origin", o.cors_allow_origin,
                  "send CORS headers allowing this origin ('*' for any; default: no CORS)");
  cmd->add_option("--request-timeout", o.request_timeout_s, "seconds a generation may take (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "largest request body (bigger ones get 413)")
      ->capture_default_str();
  cmd->add_option("--shutdown-grace", a->shutdown_grace_s,
                  "seconds in-flight requests may finish after SIGTERM/SIGINT before they are cancelled")
      ->capture_default_str();
  AddWhatsappServeOptions(cmd, a->whatsapp);
  cmd->callback([a, &ctx] { ctx.exit_code = RunServe(*a); });
}

}  // namespace formiga::cli
