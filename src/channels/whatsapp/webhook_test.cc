// Parsing Meta's literal example payloads: text, batched entries/changes,
// statuses, media, reactions, interactive replies, unsupported, junk.
#include "channels/whatsapp/webhook.h"

#include <gtest/gtest.h>

namespace formiga::whatsapp {
namespace {

// Meta's example, verbatim (docs: "WhatsApp webhooks reference — messages").
constexpr const char* kText = R"({"object":"whatsapp_business_account",
 "entry":[{"id":"102290129340398",
   "changes":[{"value":{
      "messaging_product":"whatsapp",
      "metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
      "contacts":[{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}],
      "messages":[{"from":"16505551234",
         "id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
         "timestamp":"1749416383","type":"text",
         "text":{"body":"Does it come in another color?"}}]},
    "field":"messages"}]}]})";

std::string Value(const std::string& inner) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{
    "messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},)" +
         inner + R"(},"field":"messages"}]}]})";
}

TEST(Webhook, MetasTextExample) {
  Result<Notification> n = ParseNotification(kText);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(n->messages.size(), 1u);
  const InboundMessage& m = n->messages[0];
  EXPECT_EQ(m.wamid, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
  EXPECT_EQ(m.wa_id, "16505551234");
  EXPECT_EQ(m.profile_name, "Sheena Nelson");
  EXPECT_EQ(m.phone_number_id, "106540352242922");
  EXPECT_EQ(m.kind, MessageKind::kText);
  EXPECT_EQ(m.text, "Does it come in another color?");
  EXPECT_EQ(m.timestamp, 1749416383);
  EXPECT_TRUE(n->statuses.empty());
}

TEST(Webhook, BatchedEntriesChangesAndMessages) {
  const std::string change = R"({"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"1"},
    "messages":[{"from":"A","id":"wamid.1","timestamp":"1","type":"text","text":{"body":"um"}},
                {"from":"B","id":"wamid.2","timestamp":"2","type":"text","text":{"body":"dois"}}],
    "statuses":[{"id":"wamid.out.1","status":"delivered","timestamp":"3","recipient_id":"A"}]},"field":"messages"})";
  const std::string body = R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[)" + change + "," +
                           change + R"(]},{"id":"2","changes":[)" + change + "]}]}";
  Result<Notification> n = ParseNotification(body);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->messages.size(), 6u);
  EXPECT_EQ(n->statuses.size(), 3u);
  EXPECT_EQ(n->messages[1].text, "dois");
}

TEST(Webhook, StatusesIncludingFailedWithErrors) {
  Result<Notification> n = ParseNotification(Value(R"("statuses":[
    {"id":"wamid.X","status":"sent","timestamp":"1749416400","recipient_id":"16505551234",
     "conversation":{"id":"c","origin":{"type":"service"}},"pricing":{"billable":true,"category":"service"}},
    {"id":"wamid.Y","status":"failed","timestamp":"1749416401","recipient_id":"16505551234",
     "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message"}]}])"));
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n->statuses.size(), 2u);
  EXPECT_EQ(n->statuses[0].status, "sent");
  EXPECT_EQ(n->statuses[1].status, "failed");
  EXPECT_EQ(n->statuses[1].error_code, 131047);
  EXPECT_EQ(n->statuses[1].error_title, "Re-engagement message");
}

TEST(Webhook, MediaReactionInteractiveUnsupported) {
  Result<Notification> n = ParseNotification(Value(R"("contacts":[{"profile":{"name":"Ana"},"wa_id":"55"}],"messages":[
    {"from":"55","id":"w1","timestamp":"1","type":"image","image":{"caption":"olha","mime_type":"image/jpeg","sha256":"h","id":"m1"}},
    {"from":"55","id":"w2","timestamp":"1","type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"h","id":"m2","voice":true}},
    {"from":"55","id":"w3","timestamp":"1","type":"sticker","sticker":{"mime_type":"image/webp","sha256":"h","id":"m3","animated":false}},
    {"from":"55","id":"w4","timestamp":"1","type":"location","location":{"latitude":-23.5,"longitude":-46.6,"name":"SP"}},
    {"from":"55","id":"w5","timestamp":"1","type":"reaction","reaction":{"message_id":"wamid.bot","emoji":"👍"}},
    {"from":"55","id":"w6","timestamp":"1","type":"unsupported","errors":[{"code":131051,"title":"Message type unknown"}]},
    {"from":"55","id":"w7","timestamp":"1","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"b1","title":"Sim"}}},
    {"from":"55","id":"w8","timestamp":"1","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"l1","title":"Opção 2","description":"d"}}},
    {"from":"55","id":"w9","timestamp":"1","type":"button","button":{"text":"Parar","payload":"STOP"}},
    {"from":"55","id":"w10","timestamp":"1","type":"text","text":{"body":"e isso?"},"context":{"from":"15550783881","id":"wamid.bot"}},
    {"from":"55","id":"w11","timestamp":"1","type":"hologram"}])"));
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(n->messages.size(), 11u);
  const auto& m = n->messages;
  EXPECT_EQ(m[0].kind, MessageKind::kNonText);
  EXPECT_EQ(m[0].text, "olha");
  EXPECT_EQ(m[1].kind, MessageKind::kNonText);
  EXPECT_EQ(m[2].kind, MessageKind::kNonText);
  EXPECT_EQ(m[3].kind, MessageKind::kNonText);
  EXPECT_EQ(m[4].kind, MessageKind::kReaction);
  EXPECT_EQ(m[4].text, "👍");
  EXPECT_EQ(m[4].context_id, "wamid.bot");
  EXPECT_EQ(m[5].kind, MessageKind::kUnsupported);
  EXPECT_EQ(m[6].kind, MessageKind::kText);
  EXPECT_EQ(m[6].text, "Sim");
  EXPECT_EQ(m[7].text, "Opção 2");
  EXPECT_EQ(m[8].text, "Parar");
  EXPECT_EQ(m[9].context_id, "wamid.bot");
  EXPECT_EQ(m[10].kind, MessageKind::kUnsupported);
  for (const auto& x : m) EXPECT_EQ(x.profile_name, "Ana");
}

TEST(Webhook, RefusesWhatIsNotANotificationAndSkipsMalformedParts) {
  EXPECT_FALSE(ParseNotification("").ok());
  EXPECT_FALSE(ParseNotification("[1,2]").ok());
  EXPECT_FALSE(ParseNotification(R"({"object":"page","entry":[]})").ok());
  Result<Notification> n = ParseNotification(R"({"object":"whatsapp_business_account","entry":[
    7, {"changes":"x"}, {"changes":[{"value":{"messages":[{"type":"text"}, 5, {"from":3,"id":[]}],
    "statuses":[{}], "errors":[{"code":131000,"title":"Something went wrong"}]}}]}]})");
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->messages.empty());
  EXPECT_TRUE(n->statuses.empty());
  EXPECT_GE(n->errors.size(), 3u);
}

}  // namespace
}  // namespace formiga::whatsapp
