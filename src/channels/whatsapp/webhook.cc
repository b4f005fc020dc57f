#include "channels/whatsapp/webhook.h"

#include <nlohmann/json.hpp>

#include <cstdlib>

namespace formiga::whatsapp {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  return "";
}

int64_t Seconds(const json& j, const char* key) {
  std::string s = Str(j, key);
  if (s.empty() || s.size() > 18) return 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  return (end != nullptr && *end == '\0' && v > 0) ? v : 0;
}

const json& Obj(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

void ParseMessage(const json& m, const std::string& phone_id, const json& contacts, Notification& out) {
  InboundMessage msg;
  msg.wamid = Str(m, "id");
  msg.wa_id = Str(m, "from");
  if (msg.wamid.empty() || msg.wa_id.empty()) {
    out.errors.push_back("message without id or from skipped");
    return;
  }
  msg.phone_number_id = phone_id;
  msg.type = Str(m, "type");
  msg.timestamp = Seconds(m, "timestamp");
  msg.context_id = Str(Obj(m, "context"), "id");
  if (contacts.is_array()) {
    for (const json& c : contacts) {
      if (Str(c, "wa_id") == msg.wa_id) msg.profile_name = Str(Obj(c, "profile"), "name");
    }
  }
  const std::string& t = msg.type;
  if (t == "text") {
    msg.kind = MessageKind::kText;
    msg.text = Str(Obj(m, "text"), "body");
  } else if (t == "button") {
    msg.kind = MessageKind::kText;
    msg.text = Str(Obj(m, "button"), "text");
  } else if (t == "interactive") {
    const json& in = Obj(m, "interactive");
    const json& reply = Obj(in, Str(in, "type") == "list_reply" ? "list_reply" : "button_reply");
    msg.kind = MessageKind::kText;
    msg.text = Str(reply, "title");
  } else if (t == "reaction") {
    msg.kind = MessageKind::kReaction;
    msg.text = Str(Obj(m, "reaction"), "emoji");
    msg.context_id = Str(Obj(m, "reaction"), "message_id");
  } else if (t == "image" || t == "audio" || t == "video" || t == "document" || t == "sticker" ||
             t == "location" || t == "contacts") {
    msg.kind = MessageKind::kNonText;
    msg.text = Str(Obj(m, t.c_str()), "caption");
  } else {
    msg.kind = MessageKind::kUnsupported;
  }
  if (msg.kind == MessageKind::kText && msg.text.empty()) msg.kind = MessageKind::kUnsupported;
  out.messages.push_back(std::move(msg));
}

void ParseStatus(const json& s, Notification& out) {
  StatusUpdate st;
  st.wamid = Str(s, "id");
  st.status = Str(s, "status");
  if (st.wamid.empty() || st.status.empty()) {
    out.errors.push_back("status without id or status skipped");
    return;
  }
  st.recipient_id = Str(s, "recipient_id");
  st.timestamp = Seconds(s, "timestamp");
  const json& errs = Obj(s, "errors");
  if (errs.is_array() && !errs.empty()) {
    const json& code = Obj(errs[0], "code");
    if (code.is_number_integer()) st.error_code = code.get<int64_t>();
    st.error_title = Str(errs[0], "title");
  }
  out.statuses.push_back(std::move(st));
}

}  // namespace

const char* MessageKindName(MessageKind k) {
  switch (k) {
    case MessageKind::kText: return "text";
    case MessageKind::kReaction: return "reaction";
    case MessageKind::kNonText: return "non_text";
    case MessageKind::kUnsupported: return "unsupported";
  }
  return "unsupported";
}

Result<Notification> ParseNotification(std::string_view body) {
  json root = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return Status::InvalidArgument("webhook body is not a JSON object");
  }
  if (Str(root, "object") != "whatsapp_business_account") {
    return Status::InvalidArgument("webhook object is '" + Str(root, "object") +
                                   "', not whatsapp_business_account: subscribe the app to the WhatsApp "
                                   "Business Account's messages field");
  }
  Notification out;
  const json& entries = Obj(root, "entry");
  if (!entries.is_array()) return out;
  for (const json& entry : entries) {
    const json& changes = Obj(entry, "changes");
    if (!changes.is_array()) continue;
    for (const json& change : changes) {
      const json& value = Obj(change, "value");
      if (!value.is_object()) continue;
      const std::string phone_id = Str(Obj(value, "metadata"), "phone_number_id");
      const json& contacts = Obj(value, "contacts");
      if (const json& ms = Obj(value, "messages"); ms.is_array()) {
        for (const json& m : ms) ParseMessage(m, phone_id, contacts, out);
      }
      if (const json& ss = Obj(value, "statuses"); ss.is_array()) {
        for (const json& s : ss) ParseStatus(s, out);
      }
      if (const json& es = Obj(value, "errors"); es.is_array()) {
        for (const json& e : es) out.errors.push_back(e.dump());
      }
    }
  }
  return out;
}

}  // namespace formiga::whatsapp
