// Graph API error classification (by code, never by text) and the request
// shapes, against the emulator on loopback.
#include "channels/whatsapp/graph_client.h"

#include <gtest/gtest.h>

#include "channels/whatsapp/emulator.h"

namespace formiga::whatsapp {
namespace {

GraphResult Err(int http, int64_t code) {
  GraphResult r;
  r.http_status = http;
  r.error_code = code;
  return r;
}

TEST(GraphClient, ClassifiesByCode) {
  EXPECT_EQ(Classify(Err(200, 0)), Disposition::kDone);
  for (int64_t c : {1, 2, 130429, 131056, 80007}) EXPECT_EQ(Classify(Err(400, c)), Disposition::kRetry) << c;
  for (int64_t c : {131047, 131026, 100, 10, 368, 131031}) EXPECT_EQ(Classify(Err(400, c)), Disposition::kPermanent) << c;
  EXPECT_EQ(Classify(Err(401, 190)), Disposition::kAuth);
  EXPECT_EQ(Classify(Err(0, 0)), Disposition::kRetry);      // no answer
  EXPECT_EQ(Classify(Err(502, 0)), Disposition::kRetry);    // a proxy's 5xx without a Graph body
  EXPECT_EQ(Classify(Err(404, 0)), Disposition::kPermanent);
  EXPECT_EQ(Classify(Err(200, -1)), Disposition::kPermanent);  // 2xx with an error body
}

TEST(GraphClient, SendsMetasShapesToTheEmulator) {
  EmulatorOptions eo;
  eo.access_token = "tok";
  auto emu = GraphEmulator::Start(eo);
  ASSERT_TRUE(emu.ok());
  GraphClient client(GraphEndpoint{(*emu)->base_url(), "v23.0", eo.phone_number_id, 5});
  GraphResult r = client.Send(SendText{"5511", "Olá, mundo! ção", "wamid.q", "formiga:1:0"}, "tok");
  ASSERT_TRUE(r.ok()) << r.error_message;
  EXPECT_EQ(r.wamid.rfind("wamid.", 0), 0u);
  auto sent = (*emu)->Sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["body"], "Olá, mundo! ção");
  EXPECT_EQ(sent[0]["context"], "wamid.q");
  EXPECT_EQ(sent[0]["callback_data"], "formiga:1:0");
  EXPECT_TRUE(client.MarkRead("wamid.q", true, "tok").ok());
  GraphResult bad = client.Send(SendText{"5511", "x", "", ""}, "expired");
  EXPECT_EQ(bad.http_status, 401);
  EXPECT_EQ(bad.error_code, 190);
  EXPECT_EQ(bad.error_message.find("expired\""), std::string::npos);
  (*emu)->QueueErrors({131047});
  GraphResult window = client.Send(SendText{"5511", "x", "", ""}, "tok");
  EXPECT_EQ(window.error_code, 131047);
  EXPECT_EQ(Classify(window), Disposition::kPermanent);
  (*emu)->Stop();
  GraphResult down = client.Send(SendText{"5511", "x", "", ""}, "tok");
  EXPECT_EQ(down.http_status, 0);
  EXPECT_EQ(Classify(down), Disposition::kRetry);
}

}  // namespace
}  // namespace formiga::whatsapp
