// Response bodies of the HTTP API (OpenAI chat/completions objects and
// stream chunks, TGI generate/stream events, both error shapes), built from
// plain records so that they are unit-testable without sockets.
//
// Thread safety: free functions, no shared state.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "server/api_request.h"

namespace formiga::server {

struct TopToken {
  int32_t id = -1;
  std::string text;
  float logprob = 0.0f;
};

// One generated token as the API reports it.
struct TokenInfo {
  int32_t id = -1;
  std::string text;       // the token alone, decoded (may be part of a UTF-8 character)
  float logprob = 0.0f;
  bool special = false;
  std::vector<TopToken> top;  // most likely alternatives, best first
};

// The finished (or, while streaming, growing) result of one choice.
struct ChoiceResult {
  int index = 0;
  std::string text;
  std::string finish_reason;  // "stop", "length", or empty while running
  bool eos = false;           // TGI: stopped by an end token (vs a stop sequence)
  std::vector<TokenInfo> tokens;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
  int64_t generated_tokens = 0;
  uint64_t seed = 0;
  std::string prompt_text;    // for echo / return_full_text
};

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;
};

struct ResponseMeta {
  std::string id;       // "chatcmpl-…" / "cmpl-…"
  int64_t created = 0;  // unix seconds
  std::string model;
  std::string fingerprint;  // system_fingerprint
};

// JSON text of a value, invalid UTF-8 replaced (a token may end mid-character).
std::string Dump(const nlohmann::json& j);

nlohmann::json OpenAiErrorBody(const ApiError& e);   // {"error": {message, type, param, code}}
nlohmann::json TgiErrorBody(const ApiError& e);      // {"error": message, "error_type": …}

nlohmann::json UsageJson(const Usage& u);

nlohmann::json ChatCompletionBody(const ResponseMeta& m, const std::vector<ChoiceResult>& choices, const Usage& u,
                                  bool logprobs);
// One chat.completion.chunk: a role announcement (role non-empty), a text
// delta, or the finish (finish_reason non-empty).
nlohmann::json ChatChunkBody(const ResponseMeta& m, int index, const std::string& role, const std::string& delta,
                             const std::vector<TokenInfo>* logprobs, const std::string& finish_reason);
// The last chunk of a stream with stream_options.include_usage: no choices.
nlohmann::json UsageChunkBody(const ResponseMeta& m, const char* object, const Usage& u);

nlohmann::json CompletionBody(const ResponseMeta& m, const std::vector<ChoiceResult>& choices, const Usage& u,
                              bool logprobs, bool echo);
nlohmann::json CompletionChunkBody(const ResponseMeta& m, int index, const std::string& text,
                                   const std::vector<TokenInfo>* logprobs, const std::string& finish_reason);

// TGI: finish_reason names ("length", "eos_token", "stop_sequence").
std::string TgiFinishReason(const ChoiceResult& c);
nlohmann::json TgiGenerateBody(const ChoiceResult& c, bool details, bool return_full_text);
// One /generate_stream event; the last one (`last`) carries generated_text
// and, with `details`, the finish reason.
nlohmann::json TgiStreamEvent(const TokenInfo& token, const ChoiceResult& c, bool last, bool details,
                              bool return_full_text);

}  // namespace formiga::server
