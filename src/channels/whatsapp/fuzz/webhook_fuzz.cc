// libFuzzer target: webhook bodies (whatever reaches the parser after the
// signature check) and reply splitting. Run:
//   mkdir -p fuzz-corpus/whatsapp_webhook && cp src/channels/whatsapp/fuzz/seeds/* fuzz-corpus/whatsapp_webhook/
//   build/fuzz/whatsapp_webhook_fuzz -max_total_time=600 fuzz-corpus/whatsapp_webhook
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "channels/whatsapp/signature.h"
#include "channels/whatsapp/split.h"
#include "channels/whatsapp/webhook.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace formiga::whatsapp;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)VerifySignature("secret", body, body.substr(0, 71));
  auto n = ParseNotification(body);
  if (n.ok()) {
    for (const InboundMessage& m : n->messages) {
      if (m.wamid.empty() || m.wa_id.empty()) __builtin_trap();  // the parser promises both
      for (const std::string& part : SplitReply(m.text, 64)) {
        if (part.empty() || Utf8Length(part) > 64) __builtin_trap();
      }
    }
  }
  for (const std::string& part : SplitReply(body, 100)) {
    if (part.empty() || Utf8Length(part) > 100) __builtin_trap();
  }
  return 0;
}
