// ReplyGenerator: how the channel gets an answer from a model without
// knowing about engines. The cli layer implements it over EngineService and
// the model's chat template (cli/whatsapp_generator.cc); tests use fakes.
//
// Thread safety: implementations must allow Generate from several threads at
// once (the channel's workers) and CancelAll from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "core/status.h"

namespace formiga::whatsapp {

struct GenerateOptions {
  int64_t max_tokens = 256;
  float temperature = 0.7f;
  int64_t seed = -1;  // -1: random
};

class ReplyGenerator {
 public:
  virtual ~ReplyGenerator() = default;
  // Blocks until the reply for `messages` ([{role, content}], OpenAI style,
  // ending with a user turn) is complete. Cancelled after CancelAll().
  virtual Result<std::string> Generate(const nlohmann::json& messages, const GenerateOptions& options) = 0;
  // Prompt tokens `messages` take once rendered with the chat template.
  virtual Result<int64_t> CountTokens(const nlohmann::json& messages) = 0;
  // Tokens of prompt + reply one request may use (the model's context).
  virtual int64_t ContextTokens() const = 0;
  // Cancels every Generate in flight and every later one (shutdown).
  virtual void CancelAll() = 0;
};

}  // namespace formiga::whatsapp
