// Chat templates: turns a conversation into the prompt text a model expects.
//
// Models ship their prompt format as a Jinja template (GGUF
// `tokenizer.chat_template`, Hugging Face tokenizer_config.json
// "chat_template"). ChatTemplate renders such templates with formiga's own
// Jinja-subset interpreter (jinja_*.h) so that the output is byte-identical to
// Hugging Face transformers' apply_chat_template(..., tokenize=False) for the
// same messages, tools and special tokens. docs/chat_templates.md lists the
// supported subset; anything outside it fails with an Unsupported status that
// names the construct and its line/column -- never with wrong text.
//
// Example:
//   FORMIGA_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::Parse(gguf_template));
//   ChatTemplateOptions o;
//   o.bos_token = "<|im_start|>";
//   o.eos_token = "<|im_end|>";
//   FORMIGA_ASSIGN_OR_RETURN(std::string prompt, t.Render(messages, o));
//
// Thread safety: a ChatTemplate is immutable after Parse(); Render() may be
// called from many threads at once (each call has its own interpreter).
// Ownership: a ChatTemplate shares its parsed AST (copies are cheap).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "tokenizer/jinja_eval.h"
#include "tokenizer/jinja_parser.h"

namespace formiga {

struct ChatTemplateOptions {
  // Appends the assistant header so the model answers next (transformers'
  // add_generation_prompt; its default there is False, formiga's is true
  // because every caller of Render is about to generate).
  bool add_generation_prompt = true;
  // Special tokens as the model defines them. Empty: the model has no such
  // token and the template sees `bos_token`/`eos_token` undefined (like
  // transformers, which only passes the tokens a tokenizer defines).
  std::string bos_token;
  std::string eos_token;
  // Tool schemas (a JSON array of {"type": "function", "function": {...}}) or
  // null for none; the template sees `tools` as None when null.
  nlohmann::ordered_json tools = nullptr;
  // RAG documents (array of objects) or null; the template sees `documents`.
  nlohmann::ordered_json documents = nullptr;
  // More template variables (e.g. {"date_string": "26 Jul 2024"},
  // {"enable_thinking": false}); they override bos_token/eos_token. The names
  // messages, tools, documents and add_generation_prompt are reserved.
  // null counts as empty.
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
  // Clock for strftime_now(), in seconds since the epoch (local time zone);
  // -1 uses the system clock. Tests pin it for reproducible prompts.
  int64_t now_unix_seconds = -1;
  // Bounds on output size, loop iterations, recursion and work.
  jinja::RenderLimits limits;
};

class ChatTemplate {
 public:
  // Parses template source. Errors: InvalidArgument for syntax errors,
  // Unsupported for constructs outside the subset, OutOfRange for templates
  // over the size/nesting limits; all name line and column.
  static Result<ChatTemplate> Parse(std::string_view source);

  // The template formiga uses when a model ships none: ChatML
  // ("<|im_start|>role\ncontent<|im_end|>\n" per message, then
  // "<|im_start|>assistant\n" when add_generation_prompt). Only for models
  // without tokenizer.chat_template; a model's own template always wins.
  static ChatTemplate ChatMLFallback();
  static const char* ChatMLFallbackSource();

  // Renders `messages` (a JSON array of objects with at least "role"; key
  // order is kept, as Python dicts keep it). Errors: InvalidArgument for bad
  // input, for errors the template raises (raise_exception: the message
  // carries the template's text) and for runtime errors (undefined values,
  // type errors) with line/column; OutOfRange when a limit is hit;
  // Unsupported for an unknown filter/test met at run time.
  Result<std::string> Render(const nlohmann::ordered_json& messages, const ChatTemplateOptions& opts) const;
  // Same for nlohmann::json input. NOTE: nlohmann::json sorts object keys, so
  // templates that print whole dicts (tojson of tools) see sorted keys; use
  // ordered_json to match transformers exactly.
  Result<std::string> Render(const nlohmann::json& messages, const ChatTemplateOptions& opts) const;

  const std::string& source() const { return *source_; }

 private:
  ChatTemplate(std::shared_ptr<const std::string> source, std::shared_ptr<const jinja::Template> tmpl)
      : source_(std::move(source)), tmpl_(std::move(tmpl)) {}

  std::shared_ptr<const std::string> source_;
  std::shared_ptr<const jinja::Template> tmpl_;
};

}  // namespace formiga
