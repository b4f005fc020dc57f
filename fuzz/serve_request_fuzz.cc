// libFuzzer target for formiga serve's request parsers (OpenAI chat and
// completions, TGI generate) and the response bodies built from them: no
// input may crash, hang, or throw out of the parsers.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/api_request.h"
#include "server/api_response.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace formiga::server;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  RequestLimits limits;
  limits.vocab_size = 49152;
  limits.max_total_tokens = 4096;
  const ParseResult results[] = {ParseChatRequest(body, limits), ParseCompletionRequest(body, limits),
                                 ParseTgiRequest(body, limits, false)};
  for (const ParseResult& r : results) {
    if (const ApiError* e = std::get_if<ApiError>(&r)) {
      (void)Dump(OpenAiErrorBody(*e));
      (void)Dump(TgiErrorBody(*e));
      continue;
    }
    const ParsedRequest& p = std::get<ParsedRequest>(r);
    ChoiceResult c;
    for (const PromptInput& in : p.prompts) c.prompt_text += in.text;
    c.text = c.prompt_text;
    c.finish_reason = "stop";
    ResponseMeta m{"id", 0, p.model, "f"};
    (void)Dump(ChatCompletionBody(m, {c}, Usage{}, p.logprobs));
    (void)Dump(CompletionBody(m, {c}, Usage{}, p.logprobs, p.echo));
    (void)Dump(TgiGenerateBody(c, p.details, p.return_full_text));
    if (p.kind == ApiKind::kChat) (void)Dump(p.messages);
  }
  return 0;
}
