#include "server/api_response.h"

#include <gtest/gtest.h>

#include "server/auth.h"
#include "server/metrics.h"

namespace formiga::server {
namespace {

using nlohmann::json;

ChoiceResult Choice() {
  ChoiceResult c;
  c.text = "Olá!";
  c.finish_reason = "stop";
  c.eos = true;
  c.generated_tokens = 2;
  c.prompt_text = "Diga: ";
  c.tokens = {{10, "Ol", -0.5f, false, {{10, "Ol", -0.5f}, {11, "Oi", -1.5f}}}, {12, "á!", -0.1f, false, {}}};
  return c;
}

TEST(Responses, ChatCompletionShape) {
  ResponseMeta m{"chatcmpl-1", 1700000000, "smol", "formiga"};
  json j = ChatCompletionBody(m, {Choice()}, Usage{5, 2, 1}, /*logprobs=*/true);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Olá!");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["total_tokens"], 7);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
  EXPECT_EQ(j["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1]["token"], "Oi");
  json chunk = ChatChunkBody(m, 0, "", "á", nullptr, "");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "á");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  json fin = ChatChunkBody(m, 0, "", "", nullptr, "length");
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
  EXPECT_FALSE(fin["choices"][0]["delta"].contains("content"));
  EXPECT_TRUE(UsageChunkBody(m, "chat.completion.chunk", Usage{1, 2, 0})["choices"].empty());
}

TEST(Responses, CompletionEchoAndLogprobs) {
  ResponseMeta m{"cmpl-1", 1, "smol", "formiga"};
  json j = CompletionBody(m, {Choice()}, Usage{}, true, /*echo=*/true);
  EXPECT_EQ(j["choices"][0]["text"], "Diga: Olá!");
  EXPECT_EQ(j["choices"][0]["logprobs"]["text_offset"][0], 6);
  EXPECT_EQ(j["choices"][0]["logprobs"]["top_logprobs"][0]["Oi"], -1.5f);
}

TEST(Responses, TgiBodies) {
  ChoiceResult c = Choice();
  json g = TgiGenerateBody(c, /*details=*/true, /*return_full_text=*/true);
  EXPECT_EQ(g["generated_text"], "Diga: Olá!");
  EXPECT_EQ(g["details"]["finish_reason"], "eos_token");
  EXPECT_EQ(g["details"]["tokens"].size(), 2u);
  c.eos = false;
  EXPECT_EQ(TgiFinishReason(c), "stop_sequence");
  json ev = TgiStreamEvent(c.tokens[1], c, /*last=*/true, /*details=*/true, false);
  EXPECT_EQ(ev["generated_text"], "Olá!");
  EXPECT_EQ(ev["details"]["finish_reason"], "stop_sequence");
  EXPECT_TRUE(TgiStreamEvent(c.tokens[0], c, false, true, false)["generated_text"].is_null());
}

TEST(Responses, ErrorsAndInvalidUtf8) {
  ApiError e = BadRequest("'n' is bad", "n");
  json o = OpenAiErrorBody(e);
  EXPECT_EQ(o["error"]["param"], "n");
  EXPECT_EQ(o["error"]["type"], "invalid_request_error");
  EXPECT_EQ(TgiErrorBody(e)["error_type"], "validation");
  // A token may end mid-character: Dump never throws.
  EXPECT_NO_THROW(Dump(json{{"text", std::string("\xe3\x81")}}));
}

TEST(ApiKey, MatchesAnyKeyOnly) {
  EXPECT_TRUE(ApiKeyMatches("b", {"a", "b"}));
  EXPECT_FALSE(ApiKeyMatches("", {"a"}));
  EXPECT_FALSE(ApiKeyMatches("ab", {"a"}));
  EXPECT_FALSE(ApiKeyMatches("a", {"ab"}));
  EXPECT_FALSE(ApiKeyMatches("x", {}));
}

TEST(Metrics, RendersCountersHistogramsAndEngineGauges) {
  ServerMetrics m;
  m.CountRequest("/v1/chat/completions", 200);
  m.CountRequest("/v1/chat/completions", 200);
  m.CountRequest("/generate", 422);
  m.AddTokens(10, 5, 4);
  m.ObserveTimeToFirstToken(0.03);
  m.ObserveInterTokenLatency(2.0);
  EngineSnapshot s;
  s.kv_blocks_total = 10;
  s.kv_blocks_free = 7;
  s.prefix_lookups = 4;
  s.prefix_hits = 1;
  s.waiting = 3;
  const std::string text = m.Render(s);
  EXPECT_NE(text.find("formiga_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_requests_total{route=\"/generate\",status=\"422\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_kv_blocks_used 3\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_queue_depth 3\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_prefix_cache_hit_rate 0.25\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_time_to_first_token_seconds_bucket{le=\"0.025\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_time_to_first_token_seconds_bucket{le=\"0.05\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_inter_token_latency_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("formiga_prompt_tokens_cached_total 4\n"), std::string::npos);
}

}  // namespace
}  // namespace formiga::server
