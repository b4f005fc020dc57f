// Fuzzes chat-template parsing and rendering: arbitrary template text is
// parsed and rendered against a fixed conversation (system/user/assistant/
// tool messages, tools, special tokens). Any outcome is fine except a crash,
// a sanitizer report, a hang or unbounded memory: errors must come back as
// Status values. Limits are tightened so each input stays fast.
//
// Run: build/chat-fuzz/chat_template_fuzz -max_total_time=120 -max_len=4096
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenizer/chat_template.h"

namespace {

const nlohmann::ordered_json& Conversation() {
  static const auto* conv = new nlohmann::ordered_json(nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Você é útil. 🐜"},
    {"role": "user", "content": "Hello {{ x }} {% y %}"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"id": "call00001", "type": "function", "function": {"name": "f", "arguments": {"a": 1, "b": [true, null, 2.5]}}}]},
    {"role": "tool", "tool_call_id": "call00001", "content": "42"},
    {"role": "user", "content": [{"type": "text", "text": "multi"}, {"type": "image"}]}
  ])"));
  return *conv;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view src(reinterpret_cast<const char*>(data), size);
  auto tmpl = formiga::ChatTemplate::Parse(src);
  if (!tmpl.ok()) return 0;
  formiga::ChatTemplateOptions o;
  o.bos_token = "<s>";
  o.eos_token = "</s>";
  o.tools = nlohmann::ordered_json::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {}}}])");
  o.extra_context = nlohmann::ordered_json::parse(R"({"enable_thinking": false, "n": 3})");
  o.now_unix_seconds = 0;
  o.limits.max_output_bytes = 1 << 16;
  o.limits.max_list_items = 1 << 12;
  o.limits.max_loop_iterations = 10000;
  o.limits.max_call_depth = 16;
  o.limits.max_work = 200000;
  auto r = tmpl->Render(Conversation(), o);
  (void)r;
  return 0;
}
