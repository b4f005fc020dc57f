#include "tokenizer/chat_template.h"

#include <utility>

namespace formiga {

namespace {

constexpr const char* kChatMLSource =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// transformers copies a message's reasoning into both `thinking` and
// `reasoning_content` (templates read one or the other); mirror it so that
// such templates see the same data.
jinja::Value AliasReasoning(const jinja::Value& message) {
  static const char* kFields[] = {"reasoning_content", "thinking", "reasoning"};
  const jinja::Value* reasoning = nullptr;
  for (const char* f : kFields) {
    const jinja::Value* v = message.Find(f);
    if (v != nullptr && !v->is_none()) {
      reasoning = v;
      break;
    }
  }
  if (reasoning == nullptr) return message;
  jinja::Value r = *reasoning;
  // {"thinking": r, **message, "reasoning_content": r}
  jinja::ValueDict out;
  out.emplace_back(jinja::Value::String("thinking"), r);
  auto put = [&](const jinja::Value& k, const jinja::Value& v) {
    for (auto& [ek, ev] : out) {
      if (jinja::Equal(ek, k)) {
        ev = v;
        return;
      }
    }
    out.emplace_back(k, v);
  };
  for (const auto& [k, v] : message.dict()) put(k, v);
  put(jinja::Value::String("reasoning_content"), r);
  return jinja::Value::Dict(std::move(out));
}

}  // namespace

Result<ChatTemplate> ChatTemplate::Parse(std::string_view source) {
  FORMIGA_ASSIGN_OR_RETURN(std::shared_ptr<const jinja::Template> tmpl, jinja::Parse(source));
  return ChatTemplate(std::make_shared<const std::string>(source), std::move(tmpl));
}

const char* ChatTemplate::ChatMLFallbackSource() { return kChatMLSource; }

ChatTemplate ChatTemplate::ChatMLFallback() {
  auto parsed = jinja::Parse(kChatMLSource);
  // The fallback is a constant known to parse (tested).
  return ChatTemplate(std::make_shared<const std::string>(kChatMLSource), *parsed);
}

Result<std::string> ChatTemplate::Render(const nlohmann::json& messages, const ChatTemplateOptions& opts) const {
  return Render(nlohmann::ordered_json::parse(messages.dump()), opts);
}

Result<std::string> ChatTemplate::Render(const nlohmann::ordered_json& messages,
                                         const ChatTemplateOptions& opts) const {
  if (!messages.is_array()) {
    return Status::InvalidArgument("chat messages must be a JSON array of message objects, got " +
                                   std::string(messages.type_name()));
  }
  jinja::ValueList msgs;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object()) {
      return Status::InvalidArgument("chat message " + std::to_string(i) + " must be a JSON object, got " +
                                     std::string(messages[i].type_name()));
    }
    msgs.push_back(AliasReasoning(jinja::Value::FromJson(messages[i])));
  }
  if (!opts.extra_context.is_object() && !opts.extra_context.is_null()) {
    return Status::InvalidArgument("ChatTemplateOptions::extra_context must be a JSON object");
  }
  jinja::ValueDict globals;
  auto set = [&](const std::string& k, jinja::Value v) {
    for (auto& [ek, ev] : globals) {
      if (ek.str() == k) {
        ev = std::move(v);
        return;
      }
    }
    globals.emplace_back(jinja::Value::String(k), std::move(v));
  };
  if (!opts.bos_token.empty()) set("bos_token", jinja::Value::String(opts.bos_token));
  if (!opts.eos_token.empty()) set("eos_token", jinja::Value::String(opts.eos_token));
  for (auto it = opts.extra_context.begin(); opts.extra_context.is_object() && it != opts.extra_context.end(); ++it) {
    const std::string& k = it.key();
    if (k == "messages" || k == "tools" || k == "documents" || k == "add_generation_prompt") {
      return Status::InvalidArgument("extra_context may not set '" + k +
                                     "': pass it through its own ChatTemplateOptions field (or Render argument)");
    }
    set(k, jinja::Value::FromJson(it.value()));
  }
  set("messages", jinja::Value::List(std::move(msgs)));
  set("tools", jinja::Value::FromJson(opts.tools));
  set("documents", jinja::Value::FromJson(opts.documents));
  set("add_generation_prompt", jinja::Value::Bool(opts.add_generation_prompt));

  jinja::Interpreter interp(opts.limits);
  interp.set_now_unix(opts.now_unix_seconds);
  return interp.Render(*tmpl_, std::move(globals));
}

}  // namespace formiga
