// Parsing of WhatsApp webhook notifications (POST bodies, after the
// signature was verified). One POST may batch several entries, changes,
// messages and statuses; every one becomes an event. Unknown fields are
// ignored, unknown message types become kUnsupported, and malformed parts
// are skipped with a note — a webhook body never crashes the channel.
//
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace formiga::whatsapp {

enum class MessageKind {
  kText,         // text, or a button/interactive reply (its title is the text)
  kReaction,
  kNonText,      // image, audio, video, document, sticker, location, contacts
  kUnsupported,  // type "unsupported" or a type formiga does not know
};
const char* MessageKindName(MessageKind k);

struct InboundMessage {
  std::string wamid;          // messages[].id
  std::string wa_id;          // messages[].from: the conversation key
  std::string phone_number_id;  // metadata.phone_number_id it was sent to
  std::string profile_name;   // contacts[].profile.name when given
  std::string type;           // Meta's type string ("text", "image", ...)
  MessageKind kind = MessageKind::kUnsupported;
  std::string text;           // text body, button title, caption; reaction emoji
  std::string context_id;     // the message it replies to / reacts to
  int64_t timestamp = 0;      // Unix seconds (Meta's string)
};

struct StatusUpdate {
  std::string wamid;          // the id of a message the bot sent
  std::string status;         // sent | delivered | read | failed
  std::string recipient_id;
  int64_t timestamp = 0;
  int64_t error_code = 0;     // first errors[].code for "failed"
  std::string error_title;
};

struct Notification {
  std::vector<InboundMessage> messages;
  std::vector<StatusUpdate> statuses;
  std::vector<std::string> errors;  // value.errors[] and skipped malformed parts, as text
};

// InvalidArgument when `body` is not JSON or not a WhatsApp notification
// ("object" other than "whatsapp_business_account").
Result<Notification> ParseNotification(std::string_view body);

}  // namespace formiga::whatsapp
