#include "server/api_request.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace formiga::server {
namespace {

using nlohmann::json;

// NOTE: nlohmann's parser recurses per nesting level; a body of 100k '['
// would exhaust the stack. Bodies nested deeper than this are refused first.
constexpr int kMaxDepth = 64;

bool NestingWithin(std::string_view s, int max_depth) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (char c : s) {
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

const char* TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    default: return "an unknown value";
  }
}

ApiError WrongType(const std::string& field, const char* want, const json& got) {
  return BadRequest("'" + field + "' must be " + want + ", not " + TypeName(got), field);
}

// Field readers: absent or null leaves `out` untouched; a wrong type is an error.
std::optional<ApiError> ReadBool(const json& o, const char* key, bool& out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return WrongType(key, "true or false", *it);
  out = it->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> ReadNumber(const json& o, const char* key, std::optional<double>& out, double lo,
                                   double hi) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return WrongType(key, "a number", *it);
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return BadRequest("'" + std::string(key) + "' is " + it->dump() + " but must be in [" + Num(lo) + ", " + Num(hi) +
                          "]",
                      key);
  }
  out = v;
  return std::nullopt;
}

std::optional<ApiError> ReadInt(const json& o, const char* key, std::optional<int64_t>& out, int64_t lo, int64_t hi,
                                const std::string& hint = "") {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    v = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                                         : static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else if (it->is_number_float() && std::isfinite(it->get<double>()) &&
             std::floor(it->get<double>()) == it->get<double>() && std::fabs(it->get<double>()) < 9e15) {
    v = static_cast<int64_t>(it->get<double>());
  } else {
    return WrongType(key, "an integer", *it);
  }
  if (v < lo || v > hi) {
    return BadRequest("'" + std::string(key) + "' is " + it->dump() + " but must be in [" + std::to_string(lo) +
                          ", " + std::to_string(hi) + "]" + hint,
                      key);
  }
  out = v;
  return std::nullopt;
}

std::optional<ApiError> ReadStop(const json& o, const char* key, const RequestLimits& limits,
                                 std::vector<std::string>& out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  std::vector<std::string> stops;
  if (it->is_string()) {
    stops.push_back(it->get<std::string>());
  } else if (it->is_array()) {
    for (const json& s : *it) {
      if (!s.is_string()) return WrongType(std::string(key) + "[]", "a string", s);
      stops.push_back(s.get<std::string>());
    }
  } else {
    return WrongType(key, "a string or an array of strings", *it);
  }
  if (static_cast<int>(stops.size()) > limits.max_stop) {
    return BadRequest("'" + std::string(key) + "' has " + std::to_string(stops.size()) + " strings; at most " +
                          std::to_string(limits.max_stop) + " are allowed",
                      key);
  }
  for (const std::string& s : stops) {
    if (s.empty()) return BadRequest("'" + std::string(key) + "' contains an empty string", key);
    if (s.size() > limits.max_stop_bytes) {
      return BadRequest("a '" + std::string(key) + "' string is " + std::to_string(s.size()) + " bytes; at most " +
                            std::to_string(limits.max_stop_bytes) + " are allowed",
                        key);
    }
  }
  out = std::move(stops);
  return std::nullopt;
}

std::optional<ApiError> ReadSeed(const json& o, ParsedRequest& r) {
  auto it = o.find("seed");
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (it->is_number_unsigned()) {
    r.sampling.seed = it->get<uint64_t>();
  } else if (it->is_number_integer()) {
    r.sampling.seed = static_cast<uint64_t>(it->get<int64_t>());
  } else {
    return WrongType("seed", "an integer", *it);
  }
  r.seed_given = true;
  return std::nullopt;
}

std::optional<ApiError> ReadMaxTokens(const json& o, const char* key, const RequestLimits& limits,
                                      std::optional<int64_t>& out) {
  const int64_t hi = limits.max_total_tokens > 0 ? limits.max_total_tokens : std::numeric_limits<int32_t>::max();
  return ReadInt(o, key, out, 1, hi,
                 " (the server's --max-total-tokens is " + std::to_string(hi) + ", prompt included)");
}

// OpenAI sampling fields shared by chat and completions. OpenAI's defaults:
// temperature 1, top_p 1, no top-k/min-p.
std::optional<ApiError> ReadOpenAiSampling(const json& o, const RequestLimits& limits, ParsedRequest& r) {
  r.sampling = SamplingParams{};
  r.sampling.temperature = 1.0f;
  r.sampling.top_k = 0;
  r.sampling.top_p = 1.0f;
  r.sampling.min_p = 0.0f;
  std::optional<double> d;
  if (auto e = ReadNumber(o, "temperature", d, 0.0, 2.0)) return e;
  if (d) r.sampling.temperature = static_cast<float>(*d);
  d.reset();
  if (auto e = ReadNumber(o, "top_p", d, 0.0, 1.0)) return e;
  if (d) {
    if (*d <= 0.0) return BadRequest("'top_p' must be greater than 0 (1 = off)", "top_p");
    r.sampling.top_p = static_cast<float>(*d);
  }
  d.reset();
  if (auto e = ReadNumber(o, "presence_penalty", d, -2.0, 2.0)) return e;
  if (d) r.sampling.presence_penalty = static_cast<float>(*d);
  d.reset();
  if (auto e = ReadNumber(o, "frequency_penalty", d, -2.0, 2.0)) return e;
  if (d) r.sampling.frequency_penalty = static_cast<float>(*d);
  // Extensions that llama.cpp's and vLLM's servers accept too.
  std::optional<int64_t> k;
  if (auto e = ReadInt(o, "top_k", k, 0, 1 << 20)) return e;
  if (k) r.sampling.top_k = static_cast<int32_t>(*k);
  d.reset();
  if (auto e = ReadNumber(o, "min_p", d, 0.0, 1.0)) return e;
  if (d) r.sampling.min_p = static_cast<float>(*d);
  d.reset();
  if (auto e = ReadNumber(o, "repetition_penalty", d, 0.01, 100.0)) return e;
  if (d) r.sampling.repetition_penalty = static_cast<float>(*d);
  if (auto e = ReadSeed(o, r)) return e;

  auto lb = o.find("logit_bias");
  if (lb != o.end() && !lb->is_null()) {
    if (!lb->is_object()) return WrongType("logit_bias", "an object mapping token ids to numbers", *lb);
    if (lb->size() > 1024) return BadRequest("'logit_bias' has more than 1024 entries", "logit_bias");
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      const std::string& key = it.key();
      int64_t id = -1;
      bool ok = !key.empty() && key.size() <= 10;
      for (char c : key) ok = ok && c >= '0' && c <= '9';
      if (ok) id = std::stoll(key);
      if (!ok || id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size)) {
        return BadRequest("'logit_bias' key '" + key + "' is not a token id in [0, " +
                              std::to_string(limits.vocab_size) + ")",
                          "logit_bias");
      }
      if (!it->is_number()) return WrongType("logit_bias[" + key + "]", "a number", *it);
      const double v = it->get<double>();
      if (!std::isfinite(v) || v < -100.0 || v > 100.0) {
        return BadRequest("'logit_bias' value for token " + key + " must be in [-100, 100]", "logit_bias");
      }
      // NOTE: OpenAI's -100 means "never": make it a ban, not just a nudge.
      const float bias = v <= -100.0 ? -std::numeric_limits<float>::infinity() : static_cast<float>(v);
      r.sampling.logit_bias.emplace_back(static_cast<int32_t>(id), bias);
    }
  }
  return std::nullopt;
}

std::optional<ApiError> ReadCommonOpenAi(const json& o, const RequestLimits& limits, ParsedRequest& r) {
  auto m = o.find("model");
  if (m != o.end() && !m->is_null()) {
    if (!m->is_string()) return WrongType("model", "a string", *m);
    r.model = m->get<std::string>();
  }
  auto u = o.find("user");
  if (u != o.end() && !u->is_null()) {
    if (!u->is_string()) return WrongType("user", "a string", *u);
    r.user = u->get<std::string>();
  }
  if (auto e = ReadBool(o, "stream", r.stream)) return e;
  auto so = o.find("stream_options");
  if (so != o.end() && !so->is_null()) {
    if (!so->is_object()) return WrongType("stream_options", "an object", *so);
    if (!r.stream) return BadRequest("'stream_options' is only allowed when 'stream' is true", "stream_options");
    if (auto e = ReadBool(*so, "include_usage", r.include_usage)) return e;
  }
  std::optional<int64_t> n;
  if (auto e = ReadInt(o, "n", n, 1, limits.max_n)) return e;
  if (n) r.n = static_cast<int>(*n);
  if (auto e = ReadStop(o, "stop", limits, r.stop)) return e;
  if (auto e = ReadOpenAiSampling(o, limits, r)) return e;
  auto best_of = o.find("best_of");
  if (best_of != o.end() && !best_of->is_null() && !(best_of->is_number_integer() && best_of->get<int64_t>() == 1)) {
    return BadRequest("'best_of' other than 1 is not supported; use 'n'", "best_of");
  }
  return std::nullopt;
}

std::optional<ApiError> ParseObject(std::string_view body, json& out) {
  if (body.empty()) return BadRequest("the request body is empty: send a JSON object");
  if (!NestingWithin(body, kMaxDepth)) {
    return BadRequest("the request body nests JSON deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  out = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    return BadRequest("the request body is not valid JSON (UTF-8 text with one object): check quoting and commas");
  }
  if (!out.is_object()) return BadRequest(std::string("the request body must be a JSON object, not ") + TypeName(out));
  return std::nullopt;
}

// A message's content: a string, or an array of {"type": "text", "text": ...}
// parts (joined). Images and audio are refused: the models are text-only.
std::optional<ApiError> ContentText(const json& content, size_t i, std::string& out) {
  const std::string field = "messages[" + std::to_string(i) + "].content";
  if (content.is_string()) {
    out = content.get<std::string>();
    return std::nullopt;
  }
  if (!content.is_array()) return WrongType(field, "a string or an array of text parts", content);
  out.clear();
  for (const json& part : content) {
    if (!part.is_object()) return WrongType(field + "[]", "an object like {\"type\": \"text\", \"text\": \"...\"}", part);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) return BadRequest(field + "[] needs a string 'type'", field);
    if (*type != "text") {
      return BadRequest(field + " has a part of type '" + type->get<std::string>() +
                            "': this server's models take text only",
                        field);
    }
    auto text = part.find("text");
    if (text == part.end() || !text->is_string()) return BadRequest(field + "[] of type text needs a string 'text'", field);
    out += text->get<std::string>();
  }
  return std::nullopt;
}

std::optional<ApiError> ReadMessages(const json& o, ParsedRequest& r) {
  auto it = o.find("messages");
  if (it == o.end() || it->is_null()) return BadRequest("'messages' is required: an array of {role, content}", "messages");
  if (!it->is_array()) return WrongType("messages", "an array of {role, content} objects", *it);
  if (it->empty()) return BadRequest("'messages' is empty: send at least one message", "messages");
  r.messages = json::array();
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string field = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) return WrongType(field, "an object with 'role' and 'content'", m);
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) return BadRequest(field + " needs a string 'role'", field + ".role");
    std::string rs = role->get<std::string>();
    if (rs == "developer") rs = "system";  // OpenAI's newer name for the system role
    if (rs != "system" && rs != "user" && rs != "assistant") {
      return BadRequest(field + ".role is '" + role->get<std::string>() +
                            "': use system, developer, user or assistant (tools are not supported)",
                        field + ".role");
    }
    auto content = m.find("content");
    std::string text;
    if (content == m.end() || content->is_null()) {
      return BadRequest(field + " needs 'content' (a string)", field + ".content");
    }
    if (auto e = ContentText(*content, i, text)) return e;
    r.messages.push_back({{"role", rs}, {"content", std::move(text)}});
  }
  return std::nullopt;
}

}  // namespace

ApiError BadRequest(std::string message, std::string param) {
  ApiError e;
  e.http_status = 400;
  e.type = "invalid_request_error";
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

ParseResult ParseChatRequest(std::string_view body, const RequestLimits& limits) {
  json o;
  if (auto e = ParseObject(body, o)) return *e;
  ParsedRequest r;
  r.kind = ApiKind::kChat;
  if (auto e = ReadMessages(o, r)) return *e;
  if (auto e = ReadCommonOpenAi(o, limits, r)) return *e;
  // max_completion_tokens is the newer name; it wins when both are given.
  if (auto e = ReadMaxTokens(o, "max_tokens", limits, r.max_tokens)) return *e;
  if (auto e = ReadMaxTokens(o, "max_completion_tokens", limits, r.max_tokens)) return *e;
  if (auto e = ReadBool(o, "logprobs", r.logprobs)) return *e;
  std::optional<int64_t> top;
  if (auto e = ReadInt(o, "top_logprobs", top, 0, 20)) return *e;
  if (top) {
    if (!r.logprobs) return BadRequest("'top_logprobs' needs 'logprobs': true", "top_logprobs");
    r.top_logprobs = static_cast<int>(*top);
  }
  auto tools = o.find("tools");
  if (tools != o.end() && !tools->is_null() && !(tools->is_array() && tools->empty())) {
    return BadRequest("'tools' (function calling) is not supported by this server", "tools");
  }
  return r;
}

ParseResult ParseCompletionRequest(std::string_view body, const RequestLimits& limits) {
  json o;
  if (auto e = ParseObject(body, o)) return *e;
  ParsedRequest r;
  r.kind = ApiKind::kCompletion;
  auto p = o.find("prompt");
  if (p == o.end() || p->is_null()) return BadRequest("'prompt' is required: a string or an array of strings", "prompt");
  auto token_list = [&](const json& a, PromptInput& in) -> std::optional<ApiError> {
    in.is_tokens = true;
    for (const json& t : a) {
      if (!t.is_number_integer()) return WrongType("prompt[]", "a token id (integer)", t);
      const int64_t id = t.get<int64_t>();
      if (id < 0 || (limits.vocab_size > 0 && id >= limits.vocab_size)) {
        return BadRequest("'prompt' token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(limits.vocab_size) + ")",
                          "prompt");
      }
      in.tokens.push_back(static_cast<int32_t>(id));
    }
    return std::nullopt;
  };
  if (p->is_string()) {
    r.prompts.push_back({p->get<std::string>(), {}, false});
  } else if (p->is_array()) {
    if (p->empty()) return BadRequest("'prompt' is an empty array", "prompt");
    if ((*p)[0].is_number()) {
      PromptInput in;
      if (auto e = token_list(*p, in)) return *e;
      r.prompts.push_back(std::move(in));
    } else {
      for (const json& item : *p) {
        PromptInput in;
        if (item.is_string()) {
          in.text = item.get<std::string>();
        } else if (item.is_array()) {
          if (auto e = token_list(item, in)) return *e;
        } else {
          return WrongType("prompt[]", "a string or an array of token ids", item);
        }
        r.prompts.push_back(std::move(in));
      }
    }
  } else {
    return WrongType("prompt", "a string or an array of strings", *p);
  }
  for (const PromptInput& in : r.prompts) {
    if (in.is_tokens ? in.tokens.empty() : in.text.empty()) return BadRequest("'prompt' is empty", "prompt");
  }
  if (auto e = ReadCommonOpenAi(o, limits, r)) return *e;
  if (static_cast<int64_t>(r.prompts.size()) * r.n > limits.max_n) {
    return BadRequest("prompts x n = " + std::to_string(r.prompts.size() * static_cast<size_t>(r.n)) +
                          " choices; at most " + std::to_string(limits.max_n) + " per request",
                      "n");
  }
  // OpenAI's legacy default is 16 tokens.
  r.max_tokens = 16;
  if (auto e = ReadMaxTokens(o, "max_tokens", limits, r.max_tokens)) return *e;
  std::optional<int64_t> lp;
  if (auto e = ReadInt(o, "logprobs", lp, 0, 20)) return *e;
  if (lp) {
    r.logprobs = true;
    r.top_logprobs = static_cast<int>(*lp);
  }
  if (auto e = ReadBool(o, "echo", r.echo)) return *e;
  auto suffix = o.find("suffix");
  if (suffix != o.end() && !suffix->is_null()) return BadRequest("'suffix' (insertion) is not supported", "suffix");
  return r;
}

ParseResult ParseTgiRequest(std::string_view body, const RequestLimits& limits, bool stream) {
  json o;
  if (auto e = ParseObject(body, o)) return *e;
  ParsedRequest r;
  r.kind = ApiKind::kTgi;
  r.stream = stream;
  auto in = o.find("inputs");
  if (in == o.end() || in->is_null()) return BadRequest("'inputs' is required: the prompt text", "inputs");
  if (!in->is_string()) return WrongType("inputs", "a string", *in);
  if (in->get_ref<const std::string&>().empty()) return BadRequest("'inputs' is empty", "inputs");
  r.prompts.push_back({in->get<std::string>(), {}, false});
  // TGI: greedy unless do_sample, or a sampling parameter asks for sampling.
  r.sampling = SamplingParams{};
  r.sampling.temperature = 0.0f;
  r.sampling.top_k = 0;
  r.sampling.top_p = 1.0f;
  r.sampling.min_p = 0.0f;
  r.max_tokens = 100;  // TGI's default max_new_tokens
  auto pit = o.find("parameters");
  if (pit == o.end() || pit->is_null()) return r;
  if (!pit->is_object()) return WrongType("parameters", "an object", *pit);
  const json& p = *pit;
  bool do_sample = false;
  if (auto e = ReadBool(p, "do_sample", do_sample)) return *e;
  std::optional<double> temp, top_p, typical, rep, freq;
  std::optional<int64_t> top_k;
  if (auto e = ReadNumber(p, "temperature", temp, 0.0, 100.0)) return *e;
  if (temp && *temp <= 0.0) return BadRequest("'temperature' must be strictly positive", "temperature");
  if (auto e = ReadNumber(p, "top_p", top_p, 0.0, 1.0)) return *e;
  if (top_p && (*top_p <= 0.0 || *top_p >= 1.0)) return BadRequest("'top_p' must be > 0.0 and < 1.0", "top_p");
  if (auto e = ReadNumber(p, "typical_p", typical, 0.0, 1.0)) return *e;
  if (typical && (*typical <= 0.0 || *typical >= 1.0)) {
    return BadRequest("'typical_p' must be > 0.0 and < 1.0", "typical_p");
  }
  if (auto e = ReadInt(p, "top_k", top_k, 1, 1 << 20)) return *e;
  if (auto e = ReadNumber(p, "repetition_penalty", rep, 0.0, 100.0)) return *e;
  if (rep && *rep <= 0.0) return BadRequest("'repetition_penalty' must be strictly positive", "repetition_penalty");
  if (auto e = ReadNumber(p, "frequency_penalty", freq, -2.0, 2.0)) return *e;
  const bool sample = do_sample || (temp && *temp != 1.0) || top_k || top_p || typical;
  if (sample) {
    r.sampling.temperature = temp ? static_cast<float>(*temp) : 1.0f;
    if (top_k) r.sampling.top_k = static_cast<int32_t>(*top_k);
    if (top_p) r.sampling.top_p = static_cast<float>(*top_p);
    if (typical) r.sampling.typical_p = static_cast<float>(*typical);
  }
  if (rep) r.sampling.repetition_penalty = static_cast<float>(*rep);
  if (freq) r.sampling.frequency_penalty = static_cast<float>(*freq);
  if (auto e = ReadSeed(p, r)) return *e;
  if (auto e = ReadMaxTokens(p, "max_new_tokens", limits, r.max_tokens)) return *e;
  if (auto e = ReadStop(p, "stop", limits, r.stop)) return *e;
  if (auto e = ReadBool(p, "details", r.details)) return *e;
  if (auto e = ReadBool(p, "return_full_text", r.return_full_text)) return *e;
  std::optional<int64_t> best_of;
  if (auto e = ReadInt(p, "best_of", best_of, 1, 1)) return *e;
  std::optional<int64_t> top_n;
  if (auto e = ReadInt(p, "top_n_tokens", top_n, 0, 20)) return *e;
  if (top_n && *top_n > 0) r.top_logprobs = static_cast<int>(*top_n);
  if (r.details) r.logprobs = true;
  return r;
}

}  // namespace formiga::server
