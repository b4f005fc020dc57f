#include "server/http_server.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <mutex>
#include <random>
#include <variant>

#include "server/api_request.h"
#include "server/api_response.h"
#include "server/auth.h"
#include "server/generation.h"
#include "server/peer_socket.h"
#include "server/web_assets.h"

namespace formiga::server {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

ApiError MakeError(int status, std::string type, std::string message, std::string code = "") {
  ApiError e;
  e.http_status = status;
  e.type = std::move(type);
  e.message = std::move(message);
  e.code = std::move(code);
  return e;
}

ApiError FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kResourceExhausted:
      return MakeError(429, "rate_limit_error", s.message(), "queue_full");
    case StatusCode::kCancelled:
      return MakeError(503, "server_error", s.message(), "shutting_down");
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
      return MakeError(400, "invalid_request_error", s.message());
    default:
      return MakeError(500, "server_error", s.message());
  }
}

std::string RandomHex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += digits[rng() & 15];
  return s;
}

uint64_t RandomSeed() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

std::string Sse(const json& j) { return "data: " + Dump(j) + "\n\n"; }

const char* RouteName(ApiKind kind, bool stream) {
  switch (kind) {
    case ApiKind::kChat: return "/v1/chat/completions";
    case ApiKind::kCompletion: return "/v1/completions";
    case ApiKind::kTgi: return stream ? "/generate_stream" : "/generate";
  }
  return "?";
}

// Per-choice state while events arrive.
struct ChoiceState {
  ChoiceResult result;
  std::vector<TokenInfo> pending;  // tokens not yet sent (streaming)
  Clock::time_point last_token{};
  bool started = false;
  bool done = false;
  FinishReason finish = FinishReason::kNone;
  Status error;
  int32_t last_token_id = -1;
};

}  // namespace

struct ApiServer::Impl {
  Impl(ApiServer& owner, EngineService& service, ServerModel model)
      : owner(owner), service(service), model(std::move(model)) {}

  ApiServer& owner;
  EngineService& service;
  ServerModel model;
  httplib::Server http;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> in_flight{0};
  RequestLimits limits;
  int64_t max_input = 0;
  int64_t max_total = 0;
  std::mutex sources_mu;
  std::vector<std::pair<std::string, std::function<json()>>> health_sources;
  std::vector<std::function<std::string()>> metrics_sources;
  std::vector<std::string> self_authenticated_paths;  // guarded by sources_mu
  std::string fingerprint = "formiga";
  bool static_mounted = false;

  const ServerOptions& opts() const { return owner.options_; }
  ServerMetrics& metrics() { return owner.metrics_; }

  void WriteError(httplib::Response& res, ApiKind kind, ApiError e, const char* route) {
    // NOTE: TGI answers validation errors with 422; OpenAI with 400.
    if (kind == ApiKind::kTgi && e.http_status == 400) e.http_status = 422;
    res.status = e.http_status;
    if (e.http_status == 429 || e.http_status == 503) res.set_header("Retry-After", "1");
    const json body = kind == ApiKind::kTgi ? TgiErrorBody(e) : OpenAiErrorBody(e);
    res.set_content(Dump(body), "application/json");
    metrics().CountRequest(route, e.http_status);
  }

  TokenInfo MakeTokenInfo(const TokenEvent& ev, int top_n) const {
    TokenInfo t;
    t.id = ev.token;
    t.text = model.token_text(ev.token);
    t.logprob = ev.model_logprob;
    t.special = model.is_special(ev.token);
    for (size_t i = 0; i < ev.top_logprobs.size() && static_cast<int>(i) < top_n; ++i) {
      t.top.push_back({ev.top_logprobs[i].first, model.token_text(ev.top_logprobs[i].first), ev.top_logprobs[i].second});
    }
    return t;
  }

  // Applies one event to its choice; observes latency metrics.
  void Apply(ChoiceState& c, const TokenEvent& ev, const ParsedRequest& r, Clock::time_point arrival) {
    const auto now = Clock::now();
    if (ev.token >= 0) {
      if (!c.started) {
        metrics().ObserveTimeToFirstToken(std::chrono::duration<double>(now - arrival).count());
        c.started = true;
      } else {
        metrics().ObserveInterTokenLatency(std::chrono::duration<double>(now - c.last_token).count());
      }
      c.last_token = now;
      c.last_token_id = ev.token;
      if (r.logprobs || r.kind == ApiKind::kTgi) c.pending.push_back(MakeTokenInfo(ev, r.top_logprobs));
      if (r.logprobs || r.details) c.result.tokens.push_back(c.pending.empty() ? MakeTokenInfo(ev, r.top_logprobs) : c.pending.back());
    }
    c.result.text += ev.text;
    if (ev.done) {
      c.done = true;
      c.finish = ev.finish;
      c.error = ev.error;
      c.result.finish_reason = ev.finish == FinishReason::kLength ? "length" : "stop";
      c.result.eos = ev.finish == FinishReason::kStop && c.last_token_id >= 0 && model.is_special(c.last_token_id);
      c.result.prompt_tokens = ev.stats.prompt_tokens;
      c.result.cached_prompt_tokens = ev.stats.cached_prompt_tokens;
      c.result.generated_tokens = ev.stats.generated_tokens;
      metrics().AddTokens(ev.stats.prompt_tokens, ev.stats.generated_tokens, ev.stats.cached_prompt_tokens);
      if (ev.finish == FinishReason::kCancelled) metrics().CountCancelled();
    } else if (ev.token >= 0) {
      ++c.result.generated_tokens;
    }
  }

  static Usage SumUsage(const std::vector<ChoiceState>& cs, const std::vector<size_t>& prompt_of) {
    Usage u;
    std::vector<bool> counted;
    for (size_t i = 0; i < cs.size(); ++i) {
      // Prompt tokens once per distinct prompt (n choices share one prompt).
      const size_t p = prompt_of[i];
      if (counted.size() <= p) counted.resize(p + 1, false);
      if (!counted[p]) {
        u.prompt_tokens += cs[i].result.prompt_tokens;
        u.cached_tokens += cs[i].result.cached_prompt_tokens;
        counted[p] = true;
      }
      u.completion_tokens += cs[i].result.generated_tokens;
    }
    return u;
  }

  void HandleGeneration(const httplib::Request& req, httplib::Response& res, ApiKind kind, bool stream_route);
  void HandleStatic(const httplib::Request& req, httplib::Response& res);
  bool SelfAuthenticated(const std::string& path) {
    std::lock_guard<std::mutex> lock(sources_mu);
    for (const std::string& p : self_authenticated_paths) {
      if (p == path) return true;
    }
    return false;
  }
  void Install();
};

// Everything a streamed response needs after the handler returned.
struct StreamState {
  std::shared_ptr<GenerationRun> run;
  ParsedRequest r;
  std::vector<ChoiceState> choices;
  std::vector<size_t> prompt_of;
  ResponseMeta meta;
  Clock::time_point arrival;
  Clock::time_point deadline;
  bool started = false;
  bool finished = false;
  bool abandoned = false;
  Clock::time_point last_write = Clock::now();
  const char* route = "";
};

void ApiServer::Impl::HandleGeneration(const httplib::Request& req, httplib::Response& res, ApiKind kind,
                                       bool stream_route) {
  const auto arrival = Clock::now();
  const bool tgi = kind == ApiKind::kTgi;
  const char* route = RouteName(kind, stream_route);
  if (draining.load()) {
    return WriteError(res, kind,
                      MakeError(503, "server_error", "the server is shutting down; retry on another replica",
                                "shutting_down"),
                      route);
  }
  ParseResult parsed = kind == ApiKind::kChat         ? ParseChatRequest(req.body, limits)
                       : kind == ApiKind::kCompletion ? ParseCompletionRequest(req.body, limits)
                                                      : ParseTgiRequest(req.body, limits, stream_route);
  if (const ApiError* e = std::get_if<ApiError>(&parsed)) return WriteError(res, kind, *e, route);
  ParsedRequest r = std::move(std::get<ParsedRequest>(parsed));

  // Admission: generation requests at once.
  struct Slot {
    std::atomic<int64_t>& n;
    ServerMetrics& m;
    int64_t now;
    Slot(std::atomic<int64_t>& n, ServerMetrics& m) : n(n), m(m), now(++n) { m.AddInFlight(1); }
    ~Slot() {
      --n;
      m.AddInFlight(-1);
    }
  };
  auto slot = std::make_shared<Slot>(in_flight, metrics());
  if (slot->now > opts().max_concurrent_requests) {
    return WriteError(res, kind,
                      MakeError(429, "rate_limit_error",
                                "the server is at its limit of " + std::to_string(opts().max_concurrent_requests) +
                                    " concurrent requests (--max-concurrent-requests); retry shortly",
                                "too_many_requests"),
                      route);
  }

  // Prompts -> token ids.
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> prompt_texts;
  if (kind == ApiKind::kChat) {
    Result<std::vector<int32_t>> ids = model.encode_chat(r.messages);
    if (!ids.ok()) {
      return WriteError(res, kind, BadRequest("the messages could not be rendered with the model's chat template: " +
                                                  ids.status().message(), "messages"), route);
    }
    prompts.push_back(std::move(*ids));
    prompt_texts.emplace_back();
  } else {
    for (const PromptInput& in : r.prompts) {
      if (in.is_tokens) {
        prompts.push_back(in.tokens);
        std::string text;
        for (int32_t t : in.tokens) text += model.token_text(t);
        prompt_texts.push_back(std::move(text));
        continue;
      }
      Result<std::vector<int32_t>> ids = model.encode_text(in.text);
      if (!ids.ok()) return WriteError(res, kind, BadRequest("the prompt could not be tokenized: " + ids.status().message(), "prompt"), route);
      prompts.push_back(std::move(*ids));
      prompt_texts.push_back(in.text);
    }
  }
  std::vector<GenerationRequest> requests;
  std::vector<size_t> prompt_of;
  for (size_t p = 0; p < prompts.size(); ++p) {
    const int64_t n_prompt = static_cast<int64_t>(prompts[p].size());
    if (n_prompt > max_input) {
      ApiError e = BadRequest("the prompt has " + std::to_string(n_prompt) + " tokens but this server accepts at most " +
                                  std::to_string(max_input) +
                                  " input tokens (--max-input-tokens): shorten the prompt or the conversation",
                              kind == ApiKind::kChat ? "messages" : "prompt");
      e.code = "context_length_exceeded";
      return WriteError(res, kind, e, route);
    }
    int64_t max_tokens = r.max_tokens ? *r.max_tokens : max_total - n_prompt;
    if (n_prompt + max_tokens > max_total) {
      ApiError e = BadRequest("the prompt (" + std::to_string(n_prompt) + " tokens) plus max_tokens (" +
                                  std::to_string(max_tokens) + ") is more than the " + std::to_string(max_total) +
                                  " tokens this server allows (--max-total-tokens): lower max_tokens",
                              tgi ? "max_new_tokens" : "max_tokens");
      e.code = "context_length_exceeded";
      return WriteError(res, kind, e, route);
    }
    for (int j = 0; j < r.n; ++j) {
      GenerationRequest g;
      g.prompt = prompts[p];
      g.sampling = r.sampling;
      g.sampling.seed = r.seed_given ? r.sampling.seed + static_cast<uint64_t>(requests.size()) : RandomSeed();
      if (r.logprobs || tgi) g.sampling.top_logprobs = std::max(1, r.top_logprobs);
      g.max_tokens = max_tokens;
      g.stop = r.stop;
      requests.push_back(std::move(g));
      prompt_of.push_back(p);
    }
  }
  std::vector<ChoiceState> choices(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    choices[i].result.index = static_cast<int>(i);
    choices[i].result.seed = requests[i].sampling.seed;
    choices[i].result.prompt_text = prompt_texts[prompt_of[i]];
  }

  Result<std::shared_ptr<GenerationRun>> started = GenerationRun::Start(service, std::move(requests));
  if (!started.ok()) return WriteError(res, kind, FromStatus(started.status()), route);
  std::shared_ptr<GenerationRun> run = *started;

  ResponseMeta meta;
  meta.id = (kind == ApiKind::kChat ? "chatcmpl-" : "cmpl-") + RandomHex(24);
  meta.created = static_cast<int64_t>(std::time(nullptr));
  meta.model = model.id;
  meta.fingerprint = fingerprint;
  const Clock::time_point deadline =
      opts().request_timeout_s > 0
          ? arrival + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts().request_timeout_s))
          : Clock::time_point::max();
  const std::string timeout_msg = "the request did not finish within --request-timeout (" +
                                  std::to_string(static_cast<int64_t>(opts().request_timeout_s)) +
                                  " s): ask for fewer tokens or retry later";

  if (!r.stream) {
    // While waiting, look every kPeerCheck whether the client is still there:
    // a client that left is cancelled (its KV blocks freed) instead of
    // generating for nobody until --request-timeout.
    constexpr auto kPeerCheck = std::chrono::milliseconds(250);
    PeerWatch peer(req.remote_addr, req.remote_port);
    Clock::time_point next_check = Clock::now() + kPeerCheck;
    while (!run->finished()) {
      std::optional<ChoiceEvent> e = run->Next(std::min(deadline, next_check));
      if (!e && Clock::now() >= deadline) {
        run->Abandon();
        metrics().CountCancelled();
        return WriteError(res, kind, MakeError(504, "timeout", timeout_msg, "timeout"), route);
      }
      if (Clock::now() >= next_check) {
        next_check = Clock::now() + kPeerCheck;
        if (peer.PeerClosed()) {
          run->Abandon();
          metrics().CountCancelled();
          res.status = 499;  // nginx's "client closed request": nobody reads it
          metrics().CountRequest(route, 499);
          return;
        }
      }
      if (!e) continue;
      Apply(choices[e->choice], e->event, r, arrival);
    }
    for (const ChoiceState& c : choices) {
      if (c.finish == FinishReason::kError) {
        return WriteError(res, kind, MakeError(500, "server_error", "generation failed: " + c.error.message()), route);
      }
      if (c.finish == FinishReason::kCancelled) {
        return WriteError(res, kind,
                          MakeError(503, "server_error", "the request was cancelled: the server is shutting down",
                                    "shutting_down"),
                          route);
      }
    }
    metrics().ObserveRequestDuration(std::chrono::duration<double>(Clock::now() - arrival).count());
    const Usage u = SumUsage(choices, prompt_of);
    std::vector<ChoiceResult> results;
    for (ChoiceState& c : choices) results.push_back(std::move(c.result));
    json body;
    if (kind == ApiKind::kChat) body = ChatCompletionBody(meta, results, u, r.logprobs);
    else if (kind == ApiKind::kCompletion) body = CompletionBody(meta, results, u, r.logprobs, r.echo);
    else body = TgiGenerateBody(results[0], r.details, r.return_full_text);
    res.status = 200;
    res.set_content(Dump(body), "application/json");
    metrics().CountRequest(route, 200);
    return;
  }

  // Streaming (SSE).
  auto st = std::make_shared<StreamState>();
  st->run = run;
  st->r = std::move(r);
  st->choices = std::move(choices);
  st->prompt_of = std::move(prompt_of);
  st->meta = meta;
  st->arrival = arrival;
  st->deadline = deadline;
  st->route = route;
  metrics().CountRequest(route, 200);
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st, timeout_msg, slot](size_t, httplib::DataSink& sink) -> bool {
        std::string out;
        const ParsedRequest& r = st->r;
        const ResponseMeta& m = st->meta;
        if (!st->started) {
          st->started = true;
          for (ChoiceState& c : st->choices) {
            if (r.kind == ApiKind::kChat) out += Sse(ChatChunkBody(m, c.result.index, "assistant", "", nullptr, ""));
            if (r.kind == ApiKind::kCompletion && r.echo) {
              out += Sse(CompletionChunkBody(m, c.result.index, c.result.prompt_text, nullptr, ""));
            }
          }
        }
        auto finish_stream = [&]() {
          if (r.kind != ApiKind::kTgi) {
            if (r.include_usage) {
              out += Sse(UsageChunkBody(m, r.kind == ApiKind::kChat ? "chat.completion.chunk" : "text_completion",
                                        SumUsage(st->choices, st->prompt_of)));
            }
            out += "data: [DONE]\n\n";
          }
          st->finished = true;
          metrics().ObserveRequestDuration(std::chrono::duration<double>(Clock::now() - st->arrival).count());
        };
        auto error_event = [&](const ApiError& e) {
          out += Sse(r.kind == ApiKind::kTgi ? TgiErrorBody(e) : OpenAiErrorBody(e));
        };
        // Wait up to a slice for events, then drain what is there.
        auto wait_until = std::min(st->deadline, Clock::now() + std::chrono::milliseconds(500));
        while (!st->finished) {
          std::optional<ChoiceEvent> e = st->run->Next(wait_until);
          if (!e) {
            if (Clock::now() >= st->deadline) {
              st->run->Abandon();
              st->abandoned = true;
              metrics().CountCancelled();
              error_event(MakeError(504, "timeout", timeout_msg, "timeout"));
              finish_stream();
            }
            break;
          }
          wait_until = Clock::now();  // drain without waiting
          ChoiceState& c = st->choices[e->choice];
          const TokenEvent& ev = e->event;
          const size_t pending_before = c.pending.size();
          // TGI sends one event per token: hold each token until the next
          // event tells whether it is the last.
          if (r.kind == ApiKind::kTgi) {
            if (ev.token >= 0 && pending_before > 0) {
              out += Sse(TgiStreamEvent(c.pending.back(), c.result, false, r.details, r.return_full_text));
              c.pending.clear();
            }
            Apply(c, ev, r, st->arrival);
            // The token's text is what it made visible (whole characters, stop strings held back).
            if (ev.token >= 0 && !c.pending.empty()) {
              c.pending.back().text = c.pending.back().special ? std::string() : ev.text;
            }
            if (ev.done) {
              if (ev.finish == FinishReason::kError || ev.finish == FinishReason::kCancelled) {
                error_event(MakeError(ev.finish == FinishReason::kError ? 500 : 503, "server_error",
                                      ev.finish == FinishReason::kError ? "generation failed: " + ev.error.message()
                                                                        : "the request was cancelled"));
              } else {
                TokenInfo last = c.pending.empty() ? TokenInfo{} : c.pending.back();
                last.text += ev.text;
                out += Sse(TgiStreamEvent(last, c.result, true, r.details, r.return_full_text));
              }
              c.pending.clear();
            }
          } else {
            Apply(c, ev, r, st->arrival);
            const std::vector<TokenInfo>* lp = r.logprobs ? &c.pending : nullptr;
            const bool flush = !ev.text.empty() || (ev.done && !c.pending.empty());
            if (flush) {
              out += Sse(r.kind == ApiKind::kChat ? ChatChunkBody(m, c.result.index, "", ev.text, lp, "")
                                                  : CompletionChunkBody(m, c.result.index, ev.text, lp, ""));
              c.pending.clear();
            }
            if (ev.done) {
              if (ev.finish == FinishReason::kError || ev.finish == FinishReason::kCancelled) {
                error_event(MakeError(ev.finish == FinishReason::kError ? 500 : 503, "server_error",
                                      ev.finish == FinishReason::kError ? "generation failed: " + ev.error.message()
                                                                        : "the request was cancelled"));
              } else {
                out += Sse(r.kind == ApiKind::kChat
                               ? ChatChunkBody(m, c.result.index, "", "", nullptr, c.result.finish_reason)
                               : CompletionChunkBody(m, c.result.index, "", nullptr, c.result.finish_reason));
              }
            }
          }
          if (st->run->finished()) finish_stream();
        }
        // NOTE: an SSE comment every 2 s while nothing else is sent (queued,
        // long prefill): clients ignore it, and a client that left is noticed
        // by the failing write instead of only at its first token.
        const auto now = Clock::now();
        if (out.empty() && !st->finished && now - st->last_write >= std::chrono::seconds(2)) out = ": keep-alive\n\n";
        if (!out.empty()) st->last_write = now;
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          if (!st->run->finished()) {
            st->run->Abandon();  // the client went away: free its KV now
            st->abandoned = true;
            metrics().CountCancelled();
          }
          return false;
        }
        if (st->finished) sink.done();
        return true;
      },
      [this, st](bool) {
        if (!st->run->finished() && !st->abandoned) {
          st->run->Abandon();
          metrics().CountCancelled();
        }
      });
}

void ApiServer::Impl::HandleStatic(const httplib::Request& req, httplib::Response& res) {
  const WebAsset* a = FindWebAsset(req.path);
  if (!a) {
    res.status = 404;
    res.set_content(Dump(OpenAiErrorBody(MakeError(404, "not_found", "no route " + req.path, "not_found"))),
                    "application/json");
    return;
  }
  res.set_content(std::string(a->body), std::string(a->content_type));
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Content-Type-Options", "nosniff");
}

void ApiServer::Impl::Install() {
  const ServerOptions& o = opts();
  max_total = o.max_total_tokens > 0 ? std::min(o.max_total_tokens, model.n_ctx) : model.n_ctx;
  max_input = o.max_input_tokens > 0 ? std::min(o.max_input_tokens, max_total - 1) : max_total - 1;
  limits.vocab_size = model.vocab_size;
  limits.max_total_tokens = max_total;
  limits.max_n = o.max_n;

  const size_t threads = static_cast<size_t>(std::clamp<int64_t>(o.max_concurrent_requests + 16, 16, 1024));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(o.max_body_bytes);
  http.set_read_timeout(o.read_timeout_s, 0);
  http.set_write_timeout(10, 0);
  http.set_keep_alive_timeout(5);
  http.set_tcp_nodelay(true);
  // NOTE: cpp-httplib's default also sets SO_REUSEPORT, which lets a second
  // server bind the same port and silently share its traffic. Only
  // SO_REUSEADDR (fast restart after TIME_WAIT).
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void*>(&yes), sizeof(yes));
  });

  http.set_pre_routing_handler([this](const httplib::Request& req,
                                     httplib::Response& res) -> httplib::Server::HandlerResponse {
    const ServerOptions& o = opts();
    if (!o.cors_allow_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", o.cors_allow_origin);
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Max-Age", "600");
      if (o.cors_allow_origin != "*") res.set_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    // Open without a key: the page, health and metrics.
    // NOTE: GET only: POST / is TGI's generate route and needs the key.
    const bool open = req.path == "/health" || req.path == "/metrics" ||
                      ((req.method == "GET" || req.method == "HEAD") && FindWebAsset(req.path) != nullptr);
    if (o.api_keys.empty() || open || SelfAuthenticated(req.path)) return httplib::Server::HandlerResponse::Unhandled;
    std::string presented;
    const std::string auth = req.get_header_value("Authorization");
    if (auth.rfind("Bearer ", 0) == 0) presented = auth.substr(7);
    if (!ApiKeyMatches(presented, o.api_keys)) {
      const bool tgi = req.path.rfind("/v1/", 0) != 0;
      WriteError(res, tgi ? ApiKind::kTgi : ApiKind::kChat,
                 MakeError(401, "invalid_request_error",
                           presented.empty() ? "this server needs an API key: send 'Authorization: Bearer KEY'"
                                             : "the API key is not valid for this server",
                           "invalid_api_key"),
                 "unauthorized");
      res.set_header("WWW-Authenticate", "Bearer");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = "HTTP " + std::to_string(res.status);
    if (res.status == 404) msg = "no route " + req.method + " " + req.path + " (see GET /v1/models, POST /v1/chat/completions)";
    if (res.status == 413) msg = "the request body is too large (--max-body-bytes)";
    if (res.status == 405) msg = "method not allowed on " + req.path;
    ApiError e = MakeError(res.status, res.status >= 500 ? "server_error" : "invalid_request_error", msg);
    res.set_content(Dump(OpenAiErrorBody(e)), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));

  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(Dump(OpenAiErrorBody(MakeError(500, "server_error", "internal error: " + what))),
                    "application/json");
  });

  http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& s) {
    HandleGeneration(q, s, ApiKind::kChat, false);
  });
  http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& s) {
    HandleGeneration(q, s, ApiKind::kCompletion, false);
  });
  http.Post("/generate", [this](const httplib::Request& q, httplib::Response& s) {
    HandleGeneration(q, s, ApiKind::kTgi, false);
  });
  http.Post("/generate_stream", [this](const httplib::Request& q, httplib::Response& s) {
    HandleGeneration(q, s, ApiKind::kTgi, true);
  });
  // TGI's root route: POST / with {"inputs", "parameters", "stream"}.
  http.Post("/", [this](const httplib::Request& q, httplib::Response& s) {
    json body = json::parse(q.body, nullptr, false);
    const bool stream = body.is_object() && body.contains("stream") && body["stream"].is_boolean() &&
                        body["stream"].get<bool>();
    HandleGeneration(q, s, ApiKind::kTgi, stream);
  });

  auto models = [this](const httplib::Request&, httplib::Response& res) {
    json m = {{"id", model.id}, {"object", "model"}, {"created", 0}, {"owned_by", "formiga"},
              {"max_model_len", max_total}};
    res.set_content(Dump({{"object", "list"}, {"data", json::array({m})}}), "application/json");
    metrics().CountRequest("/v1/models", 200);
  };
  http.Get("/v1/models", models);
  http.Get("/v1/models/(.+)", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != model.id) {
      res.status = 404;
      res.set_content(Dump(OpenAiErrorBody(MakeError(404, "invalid_request_error",
                                                      "the model '" + std::string(req.matches[1]) +
                                                          "' does not exist; this server serves '" + model.id + "'",
                                                      "model_not_found"))),
                      "application/json");
      return;
    }
    res.set_content(Dump({{"id", model.id}, {"object", "model"}, {"created", 0}, {"owned_by", "formiga"}}),
                    "application/json");
  });

  http.Get("/info", [this](const httplib::Request&, httplib::Response& res) {
    const ServerOptions& o = opts();
    json info = {{"model_id", model.id},
                 {"model_sha", nullptr},
                 {"model_pipeline_tag", "text-generation"},
                 {"max_concurrent_requests", o.max_concurrent_requests},
                 {"max_best_of", 1},
                 {"max_stop_sequences", limits.max_stop},
                 {"max_input_tokens", max_input},
                 {"max_input_length", max_input},
                 {"max_total_tokens", max_total},
                 {"validation_workers", 1},
                 {"max_client_batch_size", 1},
                 {"router", "formiga"},
                 {"version", o.version},
                 {"sha", nullptr},
                 {"docker_label", nullptr}};
    for (auto it = model.info.begin(); it != model.info.end(); ++it) info[it.key()] = it.value();
    res.set_content(Dump(info), "application/json");
  });

  http.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    json h = {{"status", draining.load() ? "shutting_down" : "ok"}, {"model", model.id}};
    bool ok = !draining.load();
    const EngineSnapshot s = service.Snapshot();
    h["engine"] = {{"running", s.running}, {"waiting", s.waiting}, {"accepting", s.accepting}};
    std::lock_guard<std::mutex> lock(sources_mu);
    for (auto& [name, source] : health_sources) {
      json c = source();
      if (c.is_object() && c.contains("ok") && c["ok"].is_boolean() && !c["ok"].get<bool>()) ok = false;
      h[name] = std::move(c);
    }
    if (!ok && h["status"] == "ok") h["status"] = "degraded";
    res.status = ok ? 200 : 503;
    res.set_content(Dump(h), "application/json");
  });

  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::string text = metrics().Render(service.Snapshot());
    std::lock_guard<std::mutex> lock(sources_mu);
    for (auto& source : metrics_sources) text += source();
    res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
  });

}

ApiServer::ApiServer(EngineService& service, ServerModel model, ServerOptions options)
    : impl_(std::make_unique<Impl>(*this, service, std::move(model))), options_(std::move(options)) {
  impl_->Install();
}

ApiServer::~ApiServer() = default;

httplib::Server& ApiServer::http() { return impl_->http; }

void ApiServer::AddHealthSource(std::string name, std::function<nlohmann::json()> source) {
  std::lock_guard<std::mutex> lock(impl_->sources_mu);
  impl_->health_sources.emplace_back(std::move(name), std::move(source));
}

void ApiServer::AddSelfAuthenticatedPath(std::string path) {
  std::lock_guard<std::mutex> lock(impl_->sources_mu);
  impl_->self_authenticated_paths.push_back(std::move(path));
}

void ApiServer::AddMetricsSource(std::function<std::string()> source) {
  std::lock_guard<std::mutex> lock(impl_->sources_mu);
  impl_->metrics_sources.push_back(std::move(source));
}

Result<int> ApiServer::Bind() {
  // NOTE: the page's catch-all GET route goes last, after the channels
  // mounted theirs (GET /webhook), or it would shadow them.
  if (!impl_->static_mounted) {
    impl_->static_mounted = true;
    impl_->http.Get("/(.*)", [this](const httplib::Request& req, httplib::Response& res) { impl_->HandleStatic(req, res); });
  }
  int port = options_.port;
  if (port == 0) {
    port = impl_->http.bind_to_any_port(options_.host);
    if (port < 0) return Status::IOError("could not bind " + options_.host + " to any port");
  } else if (!impl_->http.bind_to_port(options_.host, port)) {
    return Status::IOError("could not listen on " + options_.host + ":" + std::to_string(port) +
                               " (in use, or not an address of this machine): pick another --port or --host");
  }
  return port;
}

Status ApiServer::Listen() {
  if (!impl_->http.listen_after_bind()) return Status::Internal("the HTTP server stopped with an error");
  return Status::Ok();
}

int64_t ApiServer::in_flight() const { return impl_->in_flight.load(); }

void ApiServer::BeginDrain() { impl_->draining.store(true); }

void ApiServer::Stop() { impl_->http.stop(); }

}  // namespace formiga::server
