#include "server/api_request.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace formiga::server {
namespace {

RequestLimits Limits() {
  RequestLimits l;
  l.vocab_size = 1000;
  l.max_total_tokens = 512;
  return l;
}

ParsedRequest Ok(const ParseResult& r) {
  if (const ApiError* e = std::get_if<ApiError>(&r)) ADD_FAILURE() << e->message;
  return std::holds_alternative<ParsedRequest>(r) ? std::get<ParsedRequest>(r) : ParsedRequest{};
}

ApiError Err(const ParseResult& r) {
  EXPECT_TRUE(std::holds_alternative<ApiError>(r));
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(ChatRequest, ParsesMessagesAndOpenAiDefaults) {
  ParsedRequest r = Ok(ParseChatRequest(
      R"({"model":"m","messages":[{"role":"developer","content":"Seja breve."},
          {"role":"user","content":[{"type":"text","text":"Olá, "},{"type":"text","text":"ação!"}]}],
          "stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":7,"seed":-1,
          "stop":"\n\n","logprobs":true,"top_logprobs":3,"logit_bias":{"5":-100,"6":2.5},"n":2})",
      Limits()));
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[1]["content"], "Olá, ação!");
  EXPECT_TRUE(r.stream && r.include_usage && r.logprobs && r.seed_given);
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.top_logprobs, 3);
  EXPECT_EQ(r.stop, std::vector<std::string>{"\n\n"});
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_EQ(r.sampling.min_p, 0.0f);
  ASSERT_EQ(r.sampling.logit_bias.size(), 2u);
  EXPECT_TRUE(std::isinf(r.sampling.logit_bias[0].second));  // -100 bans
  EXPECT_EQ(r.sampling.seed, static_cast<uint64_t>(-1));
}

TEST(ChatRequest, PreciseErrors) {
  struct Case {
    const char* body;
    const char* needle;
    const char* param;
  } cases[] = {
      {R"({"messages":[]})", "'messages' is empty", "messages"},
      {R"({})", "'messages' is required", "messages"},
      {R"({"messages":"hi"})", "must be an array", "messages"},
      {R"({"messages":[{"role":"wizard","content":"x"}]})", "'wizard'", "messages[0].role"},
      {R"({"messages":[{"role":"user"}]})", "needs 'content'", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":5}]})", "not an integer", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})", "[1, 512]", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":100000000000})", "max-total-tokens", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"max_tokens":"5"})", "not a string", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"x"}],"temperature":3})", "[0, 2]", "temperature"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_p":0})", "greater than 0", "top_p"},
      {R"({"messages":[{"role":"user","content":"x"}],"n":0})", "'n'", "n"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"99999":1}})", "token id", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"logit_bias":{"abc":1}})", "token id", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})", "needs 'logprobs'", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"x"}],"stop":["a",""]})", "empty string", "stop"},
      {R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}})", "only allowed",
       "stream_options"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", "not supported", "tools"},
  };
  for (const Case& c : cases) {
    ApiError e = Err(ParseChatRequest(c.body, Limits()));
    EXPECT_EQ(e.http_status, 400) << c.body;
    EXPECT_NE(e.message.find(c.needle), std::string::npos) << c.body << " -> " << e.message;
    EXPECT_EQ(e.param, c.param) << c.body;
  }
}

TEST(ChatRequest, RejectsNonJsonDeepNestingAndNonObjects) {
  EXPECT_NE(Err(ParseChatRequest("", Limits())).message.find("empty"), std::string::npos);
  EXPECT_NE(Err(ParseChatRequest("{\"messages\": [", Limits())).message.find("not valid JSON"), std::string::npos);
  EXPECT_NE(Err(ParseChatRequest(std::string(100000, '['), Limits())).message.find("deeper"), std::string::npos);
  EXPECT_NE(Err(ParseChatRequest("[1]", Limits())).message.find("JSON object"), std::string::npos);
  EXPECT_NE(Err(ParseChatRequest("{\"messages\": \"\xff\"}", Limits())).message.find("not valid JSON"),
            std::string::npos);
}

TEST(CompletionRequest, PromptShapes) {
  ParsedRequest r = Ok(ParseCompletionRequest(R"({"prompt":"Era uma vez","echo":true,"logprobs":2})", Limits()));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].text, "Era uma vez");
  EXPECT_EQ(*r.max_tokens, 16);  // OpenAI's legacy default
  EXPECT_TRUE(r.echo && r.logprobs);
  EXPECT_EQ(r.top_logprobs, 2);
  r = Ok(ParseCompletionRequest(R"({"prompt":[1,2,3]})", Limits()));
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_TRUE(r.prompts[0].is_tokens);
  EXPECT_EQ(r.prompts[0].tokens, (std::vector<int32_t>{1, 2, 3}));
  r = Ok(ParseCompletionRequest(R"({"prompt":["a",[4,5]],"n":2})", Limits()));
  EXPECT_EQ(r.prompts.size(), 2u);
  EXPECT_NE(Err(ParseCompletionRequest(R"({"prompt":[1,5000]})", Limits())).message.find("vocabulary"),
            std::string::npos);
  EXPECT_NE(Err(ParseCompletionRequest(R"({"prompt":""})", Limits())).message.find("empty"), std::string::npos);
  EXPECT_NE(Err(ParseCompletionRequest(R"({"prompt":["a","b"],"n":9})", Limits())).message.find("choices"),
            std::string::npos);
  EXPECT_NE(Err(ParseCompletionRequest(R"({"prompt":"x","suffix":"y"})", Limits())).message.find("suffix"),
            std::string::npos);
}

TEST(TgiRequest, GreedyByDefaultSamplingWhenAsked) {
  ParsedRequest r = Ok(ParseTgiRequest(R"({"inputs":"Oi","parameters":{"max_new_tokens":5,"details":true}})",
                                       Limits(), false));
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(*r.max_tokens, 5);
  EXPECT_TRUE(r.details);
  r = Ok(ParseTgiRequest(R"({"inputs":"Oi","parameters":{"temperature":0.5,"top_k":10,"seed":3,
                              "repetition_penalty":1.2,"stop":["\n"],"return_full_text":true}})",
                         Limits(), true));
  EXPECT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_EQ(r.sampling.top_k, 10);
  EXPECT_FLOAT_EQ(r.sampling.repetition_penalty, 1.2f);
  EXPECT_TRUE(r.stream && r.return_full_text && r.seed_given);
  r = Ok(ParseTgiRequest(R"({"inputs":"Oi","parameters":{"do_sample":true}})", Limits(), false));
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(Err(ParseTgiRequest(R"({"inputs":"Oi","parameters":{"temperature":0}})", Limits(), false)).param,
            "temperature");
  EXPECT_EQ(Err(ParseTgiRequest(R"({"inputs":"Oi","parameters":{"top_p":1.0}})", Limits(), false)).param, "top_p");
  EXPECT_EQ(Err(ParseTgiRequest(R"({"parameters":{}})", Limits(), false)).param, "inputs");
  EXPECT_EQ(Err(ParseTgiRequest(R"({"inputs":"x","parameters":{"best_of":2}})", Limits(), false)).param, "best_of");
}

}  // namespace
}  // namespace formiga::server
