#include "server/api_response.h"

namespace formiga::server {
namespace {

using nlohmann::json;

json Bytes(const std::string& s) {
  json b = json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

json ChatLogprobs(const std::vector<TokenInfo>& tokens) {
  json content = json::array();
  for (const TokenInfo& t : tokens) {
    json top = json::array();
    for (const TopToken& a : t.top) top.push_back({{"token", a.text}, {"logprob", a.logprob}, {"bytes", Bytes(a.text)}});
    content.push_back({{"token", t.text}, {"logprob", t.logprob}, {"bytes", Bytes(t.text)}, {"top_logprobs", top}});
  }
  return {{"content", content}, {"refusal", nullptr}};
}

json CompletionLogprobs(const std::vector<TokenInfo>& tokens, size_t text_offset) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const TokenInfo& t : tokens) {
    toks.push_back(t.text);
    lps.push_back(t.logprob);
    json top = json::object();
    for (const TopToken& a : t.top) top[a.text] = a.logprob;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += t.text.size();
  }
  return {{"tokens", toks}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

json TgiToken(const TokenInfo& t) {
  return {{"id", t.id}, {"text", t.text}, {"logprob", t.logprob}, {"special", t.special}};
}

}  // namespace

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json OpenAiErrorBody(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", NullIfEmpty(e.param)},
            {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

json TgiErrorBody(const ApiError& e) {
  std::string type = "validation";
  if (e.http_status == 429 || e.http_status == 503) type = "overloaded";
  else if (e.http_status == 401) type = "authentication";
  else if (e.http_status >= 500) type = "generation";
  return {{"error", e.message}, {"error_type", type}};
}

json UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_tokens}}}};
}

json ChatCompletionBody(const ResponseMeta& m, const std::vector<ChoiceResult>& choices, const Usage& u,
                        bool logprobs) {
  json cs = json::array();
  for (const ChoiceResult& c : choices) {
    cs.push_back({{"index", c.index},
                  {"message", {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}}},
                  {"logprobs", logprobs ? ChatLogprobs(c.tokens) : json(nullptr)},
                  {"finish_reason", c.finish_reason}});
  }
  return {{"id", m.id},           {"object", "chat.completion"}, {"created", m.created},
          {"model", m.model},     {"choices", cs},               {"usage", UsageJson(u)},
          {"system_fingerprint", m.fingerprint}};
}

json ChatChunkBody(const ResponseMeta& m, int index, const std::string& role, const std::string& delta,
                   const std::vector<TokenInfo>* logprobs, const std::string& finish_reason) {
  json d = json::object();
  if (!role.empty()) d["role"] = role;
  if (!role.empty() || !delta.empty() || finish_reason.empty()) d["content"] = delta;
  json choice = {{"index", index},
                 {"delta", d},
                 {"logprobs", logprobs ? ChatLogprobs(*logprobs) : json(nullptr)},
                 {"finish_reason", NullIfEmpty(finish_reason)}};
  return {{"id", m.id},       {"object", "chat.completion.chunk"}, {"created", m.created},
          {"model", m.model}, {"system_fingerprint", m.fingerprint}, {"choices", json::array({choice})}};
}

json UsageChunkBody(const ResponseMeta& m, const char* object, const Usage& u) {
  return {{"id", m.id},       {"object", object},        {"created", m.created},
          {"model", m.model}, {"choices", json::array()}, {"usage", UsageJson(u)},
          {"system_fingerprint", m.fingerprint}};
}

json CompletionBody(const ResponseMeta& m, const std::vector<ChoiceResult>& choices, const Usage& u, bool logprobs,
                    bool echo) {
  json cs = json::array();
  for (const ChoiceResult& c : choices) {
    const std::string prefix = echo ? c.prompt_text : std::string();
    cs.push_back({{"index", c.index},
                  {"text", prefix + c.text},
                  {"logprobs", logprobs ? CompletionLogprobs(c.tokens, prefix.size()) : json(nullptr)},
                  {"finish_reason", c.finish_reason}});
  }
  return {{"id", m.id},       {"object", "text_completion"}, {"created", m.created},
          {"model", m.model}, {"choices", cs},               {"usage", UsageJson(u)},
          {"system_fingerprint", m.fingerprint}};
}

json CompletionChunkBody(const ResponseMeta& m, int index, const std::string& text,
                         const std::vector<TokenInfo>* logprobs, const std::string& finish_reason) {
  json choice = {{"index", index},
                 {"text", text},
                 {"logprobs", logprobs ? CompletionLogprobs(*logprobs, 0) : json(nullptr)},
                 {"finish_reason", NullIfEmpty(finish_reason)}};
  return {{"id", m.id},       {"object", "text_completion"},  {"created", m.created},
          {"model", m.model}, {"system_fingerprint", m.fingerprint}, {"choices", json::array({choice})}};
}

std::string TgiFinishReason(const ChoiceResult& c) {
  if (c.finish_reason == "length") return "length";
  return c.eos ? "eos_token" : "stop_sequence";
}

json TgiGenerateBody(const ChoiceResult& c, bool details, bool return_full_text) {
  json body = {{"generated_text", return_full_text ? c.prompt_text + c.text : c.text}};
  if (details) {
    json tokens = json::array();
    json top_tokens = json::array();
    bool any_top = false;
    for (const TokenInfo& t : c.tokens) {
      tokens.push_back(TgiToken(t));
      json top = json::array();
      for (const TopToken& a : t.top) top.push_back({{"id", a.id}, {"text", a.text}, {"logprob", a.logprob}, {"special", false}});
      any_top = any_top || !t.top.empty();
      top_tokens.push_back(top);
    }
    body["details"] = {{"finish_reason", TgiFinishReason(c)},
                       {"generated_tokens", c.generated_tokens},
                       {"seed", c.seed},
                       {"prefill", json::array()},
                       {"tokens", tokens}};
    if (any_top) body["details"]["top_tokens"] = top_tokens;
  }
  return body;
}

json TgiStreamEvent(const TokenInfo& token, const ChoiceResult& c, bool last, bool details, bool return_full_text) {
  json ev = {{"index", static_cast<int64_t>(c.generated_tokens)},
             {"token", TgiToken(token)},
             {"generated_text", nullptr},
             {"details", nullptr}};
  if (!token.top.empty()) {
    json top = json::array();
    for (const TopToken& a : token.top) top.push_back({{"id", a.id}, {"text", a.text}, {"logprob", a.logprob}, {"special", false}});
    ev["top_tokens"] = top;
  }
  if (last) {
    ev["generated_text"] = return_full_text ? c.prompt_text + c.text : c.text;
    if (details) {
      ev["details"] = {{"finish_reason", TgiFinishReason(c)}, {"generated_tokens", c.generated_tokens},
                       {"seed", c.seed}};
    }
  }
  return ev;
}

}  // namespace formiga::server
