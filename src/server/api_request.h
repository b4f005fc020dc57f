// Parsing and validation of the HTTP API's request bodies (OpenAI chat and
// completions, TGI generate) into one transport-free record. No sockets here:
// the parsers are unit-tested and fuzzed on byte strings
// (fuzz/serve_request_fuzz.cc).
//
// Every rejection is an ApiError with the HTTP status and a message that
// names the field, what was wrong and what is accepted.
//
// Thread safety: free functions, no shared state.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runtime/sampler.h"

namespace formiga::server {

// An API error: HTTP status, OpenAI's error `type` ("invalid_request_error",
// "authentication_error", "rate_limit_error", "server_error", ...), the
// message, the offending field (empty if none) and a short code.
struct ApiError {
  int http_status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;
  std::string code;
};

ApiError BadRequest(std::string message, std::string param = "");

enum class ApiKind { kChat, kCompletion, kTgi };

// One prompt of a request: text (to tokenize) or token ids given directly.
struct PromptInput {
  std::string text;
  std::vector<int32_t> tokens;
  bool is_tokens = false;
};

// What the server needs to run a request, whatever API it came through.
struct ParsedRequest {
  ApiKind kind = ApiKind::kChat;
  std::string model;                 // as the client named it (informational)
  nlohmann::json messages;           // chat: the validated messages array
  std::vector<PromptInput> prompts;  // completions / TGI: one or more prompts
  bool stream = false;
  bool include_usage = false;        // stream_options.include_usage
  int n = 1;                         // choices per prompt
  std::optional<int64_t> max_tokens; // unset: up to the context (TGI: its default)
  SamplingParams sampling;
  bool seed_given = false;           // false: the server draws one per request
  std::vector<std::string> stop;
  bool logprobs = false;             // report per-token log-probabilities
  int top_logprobs = 0;
  bool echo = false;                 // completions: prepend the prompt
  std::string user;                  // OpenAI `user` (informational)
  // TGI
  bool details = false;
  bool return_full_text = false;
};

struct RequestLimits {
  int64_t vocab_size = 0;        // for logit_bias ids
  int64_t max_total_tokens = 0;  // prompt + generated; bounds max_tokens
  int max_n = 16;                // choices per request
  int max_stop = 16;             // stop strings per request
  size_t max_stop_bytes = 256;   // bytes per stop string
};

using ParseResult = std::variant<ParsedRequest, ApiError>;

// POST /v1/chat/completions
ParseResult ParseChatRequest(std::string_view body, const RequestLimits& limits);
// POST /v1/completions
ParseResult ParseCompletionRequest(std::string_view body, const RequestLimits& limits);
// POST /generate and /generate_stream (`stream` is set by the route).
ParseResult ParseTgiRequest(std::string_view body, const RequestLimits& limits, bool stream);

}  // namespace formiga::server
