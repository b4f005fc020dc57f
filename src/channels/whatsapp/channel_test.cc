// The channel end to end on loopback: real SQLite file, the emulator as the
// Graph API, a fake ReplyGenerator in place of the model.
#include "channels/whatsapp/channel.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "channels/whatsapp/emulator.h"
#include "channels/whatsapp/signature.h"
#include "channels/whatsapp/split.h"

namespace formiga::whatsapp {
namespace {

using nlohmann::json;

// Answers with every user turn it was given, so a reply shows exactly which
// context it was generated from.
class FakeGenerator : public ReplyGenerator {
 public:
  Result<std::string> Generate(const json& messages, const GenerateOptions&) override {
    calls++;
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (cancelled) return Status::Cancelled("cancelled");
    if (!fixed_reply.empty()) return fixed_reply;
    std::string out = "eco:";
    for (const json& m : messages) {
      if (m["role"] == "user") out += " [" + m["content"].get<std::string>() + "]";
    }
    return out;
  }
  Result<int64_t> CountTokens(const json& messages) override { return static_cast<int64_t>(messages.dump().size() / 4); }
  int64_t ContextTokens() const override { return 4096; }
  void CancelAll() override { cancelled = true; }

  std::atomic<int> calls{0};
  std::atomic<bool> cancelled{false};
  int delay_ms = 0;
  std::string fixed_reply;
};

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("formiga_wa_chan_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    WriteToken("tok-1");
    EmulatorOptions eo;
    eo.app_secret = "app-secret";
    eo.access_token = "tok-1";
    auto e = GraphEmulator::Start(eo);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    emu_ = std::move(*e);

    config_.verify_token = "verify-me";
    config_.app_secret = "app-secret";
    config_.access_token_file = (dir_ / "token").string();
    config_.phone_number_id = "106540352242922";
    config_.graph_base_url = emu_->base_url();
    config_.db_path = (dir_ / "wa.db").string();
    config_.sqlite_synchronous = "NORMAL";
    config_.quiet_window_s = 0.05;
    config_.retry_base_s = 0.02;
    config_.paused_probe_s = 0.1;
    config_.language = "pt-BR";
    config_.texts = DefaultTexts("pt-BR");
    config_.typing_indicator = true;
  }

  void StartChannel() {
    ASSERT_TRUE(ReloadAccessToken(config_).ok());
    auto store = OpenSqliteStore(config_.db_path, config_.sqlite_synchronous);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto ch = WhatsappChannel::Create(config_, std::move(*store), gen_, [this](LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_ += m + "\n";
    });
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    channel_ = std::move(*ch);
    http_ = std::make_unique<httplib::Server>();
    channel_->Mount(*http_);
    port_ = http_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    http_thread_ = std::thread([this] { http_->listen_after_bind(); });
    while (!http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    emu_->SetWebhookUrl("http://127.0.0.1:" + std::to_string(port_) + "/webhook");
    channel_->Start();
  }

  void TearDown() override {
    if (channel_) channel_->Shutdown();
    if (http_) http_->stop();
    if (http_thread_.joinable()) http_thread_.join();
    channel_.reset();
    if (emu_) emu_->Stop();
    std::filesystem::remove_all(dir_);
  }

  void WriteToken(const std::string& t) { std::ofstream(dir_ / "token") << t << "\n"; }

  httplib::Result Post(const std::string& body, const std::string& signature) {
    httplib::Client cli("127.0.0.1", port_);
    httplib::Headers h;
    if (!signature.empty()) h.emplace("X-Hub-Signature-256", signature);
    return cli.Post("/webhook", h, body, "application/json");
  }
  // Like Meta, delivers again when the connection fails (50 clients at once
  // can overflow the listen backlog).
  int PostSigned(const json& body) {
    const std::string raw = body.dump();
    for (int attempt = 0; attempt < 20; ++attempt) {
      auto r = Post(raw, SignatureHeader("app-secret", raw));
      if (r) return r->status;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }
  json Text(const std::string& from, const std::string& wamid, const std::string& text) {
    return MakeMessageNotification("106540352242922", "15550783881", from, "Teste",
                                   MakeTextMessage(from, wamid, text, 1749416383));
  }
  std::vector<json> SentTo(const std::string& to) {
    std::vector<json> out;
    for (const json& m : emu_->Sent()) {
      if (m["to"] == to) out.push_back(m);
    }
    return out;
  }
  bool WaitFor(const std::function<bool()>& pred, double seconds = 10) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int>(seconds * 1000));
    while (std::chrono::steady_clock::now() < end) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return pred();
  }

  std::filesystem::path dir_;
  WhatsappConfig config_;
  FakeGenerator gen_;
  std::unique_ptr<GraphEmulator> emu_;
  std::unique_ptr<WhatsappChannel> channel_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  int port_ = 0;
  std::mutex log_mu_;
  std::string log_;
};

TEST_F(ChannelTest, HandshakeAcceptsOnlyTheVerifyToken) {
  StartChannel();
  httplib::Client cli("127.0.0.1", port_);
  auto ok = cli.Get("/webhook?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=verify-me");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, "1158201444");
  for (const char* q : {"/webhook?hub.mode=subscribe&hub.challenge=1&hub.verify_token=wrong",
                        "/webhook?hub.mode=subscribe&hub.challenge=1", "/webhook?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=verify-me",
                        "/webhook?hub.mode=subscribe&hub.challenge=1&hub.verify_token=verify-m"}) {
    auto r = cli.Get(q);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << q;
  }
}

TEST_F(ChannelTest, UnsignedOrMissignedPostsAreRejectedAndNothingIsStored) {
  StartChannel();
  const std::string raw = Text("5511", "wamid.a", "oi").dump();
  auto r = Post(raw, "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = Post(raw, SignatureHeader("not-the-secret", raw));
  EXPECT_EQ(r->status, 401);
  r = Post(raw + " ", SignatureHeader("app-secret", raw));
  EXPECT_EQ(r->status, 401);
  std::string big(static_cast<size_t>(config_.max_body_bytes) + 10, ' ');
  r = Post(big, SignatureHeader("app-secret", big));
  EXPECT_TRUE(!r || r->status == 413);  // refused before reading (the client may see the connection closed)
  json h = channel_->Health();
  EXPECT_EQ(h["inbound_pending"], 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(emu_->Sent().empty());
  EXPECT_EQ(gen_.calls, 0);
  EXPECT_NE(channel_->Metrics().find("formiga_whatsapp_webhook_rejected_signature_total 3"), std::string::npos);
}

TEST_F(ChannelTest, SameWebhookFiveTimesGetsOneReply) {
  StartChannel();
  const json body = Text("5511", "wamid.dup", "Qual a capital do Brasil?");
  for (int i = 0; i < 5; ++i) EXPECT_EQ(PostSigned(body), 200);
  ASSERT_TRUE(channel_->WaitIdle(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  auto sent = SentTo("5511");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["body"], "eco: [Qual a capital do Brasil?]");
  EXPECT_EQ(gen_.calls, 1);
  EXPECT_NE(channel_->Metrics().find("formiga_whatsapp_messages_deduplicated_total 4"), std::string::npos);
  // The read receipt with "typing…" went out before the answer.
  bool typing = false;
  for (const json& c : emu_->Calls()) typing |= c["kind"] == "read" && c["message_id"] == "wamid.dup" && c["typing"];
  EXPECT_TRUE(typing);
  // The status webhooks reached the store.
  EXPECT_TRUE(WaitFor([&] { return channel_->Metrics().find("formiga_whatsapp_statuses_total 2") != std::string::npos; }));
}

TEST_F(ChannelTest, FiftyUsersThreeMessagesEachNoCrossTalk) {
  config_.quiet_window_s = 0;
  config_.workers = 8;
  StartChannel();
  std::vector<std::thread> users;
  for (int u = 0; u < 50; ++u) {
    users.emplace_back([&, u] {
      const std::string from = "55119" + std::to_string(1000 + u);
      for (int k = 0; k < 3; ++k) {
        const std::string text = "u" + std::to_string(u) + "m" + std::to_string(k);
        // Wait for the previous answer so each message gets its own reply.
        ASSERT_EQ(PostSigned(Text(from, "wamid." + text, text)), 200);
        ASSERT_TRUE(WaitFor([&] { return SentTo(from).size() >= static_cast<size_t>(k + 1); }, 30));
      }
    });
  }
  for (auto& t : users) t.join();
  for (int u = 0; u < 50; ++u) {
    const std::string from = "55119" + std::to_string(1000 + u);
    auto sent = SentTo(from);
    ASSERT_EQ(sent.size(), 3u) << from;
    const std::string p = "u" + std::to_string(u);
    EXPECT_EQ(sent[0]["body"], "eco: [" + p + "m0]");
    EXPECT_EQ(sent[1]["body"], "eco: [" + p + "m0] [" + p + "m1]");
    EXPECT_EQ(sent[2]["body"], "eco: [" + p + "m0] [" + p + "m1] [" + p + "m2]");
  }
}

TEST_F(ChannelTest, BurstWithinQuietWindowGetsOneQuotedAnswer) {
  config_.quiet_window_s = 0.4;
  StartChannel();
  for (const char* t : {"oi", "tudo bem?", "me ajuda com uma receita"}) {
    EXPECT_EQ(PostSigned(Text("5521", std::string("wamid.b.") + t, t)), 200);
  }
  ASSERT_TRUE(channel_->WaitIdle(10));
  auto sent = SentTo("5521");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["body"], "eco: [oi\ntudo bem?\nme ajuda com uma receita]");
  EXPECT_EQ(sent[0]["context"], "wamid.b.me ajuda com uma receita");
  EXPECT_EQ(gen_.calls, 1);
}

TEST_F(ChannelTest, CommandsNonTextAndReactions) {
  StartChannel();
  const std::string u = "5531";
  EXPECT_EQ(PostSigned(Text(u, "w1", "lembre: azul")), 200);
  ASSERT_TRUE(WaitFor([&] { return SentTo(u).size() == 1; }));
  EXPECT_EQ(PostSigned(Text(u, "w2", "/reiniciar")), 200);
  ASSERT_TRUE(WaitFor([&] { return SentTo(u).size() == 2; }));
  EXPECT_EQ(SentTo(u)[1]["body"], config_.texts.reset_done);
  EXPECT_EQ(PostSigned(Text(u, "w3", "qual cor?")), 200);
  ASSERT_TRUE(WaitFor([&] { return SentTo(u).size() == 3; }));
  EXPECT_EQ(SentTo(u)[2]["body"], "eco: [qual cor?]");  // the history was forgotten
  EXPECT_EQ(PostSigned(Text(u, "w4", "/help")), 200);
  ASSERT_TRUE(WaitFor([&] { return SentTo(u).size() == 4; }));
  EXPECT_EQ(SentTo(u)[3]["body"], config_.texts.help);
  // An image (Meta's example shape), an audio note, then a reaction: three
  // polite replies (reply_to_reactions is on by default), no model call.
  json image = {{"from", u}, {"id", "w5"}, {"timestamp", "1"}, {"type", "image"},
                {"image", {{"mime_type", "image/jpeg"}, {"sha256", "x"}, {"id", "m1"}}}};
  json audio = {{"from", u}, {"id", "w6"}, {"timestamp", "1"}, {"type", "audio"},
                {"audio", {{"mime_type", "audio/ogg"}, {"id", "m2"}, {"voice", true}}}};
  json reaction = {{"from", u}, {"id", "w7"}, {"timestamp", "1"}, {"type", "reaction"},
                   {"reaction", {{"message_id", "w1"}, {"emoji", "❤️"}}}};
  for (const json& m : {image, audio, reaction}) {
    EXPECT_EQ(PostSigned(MakeMessageNotification("106540352242922", "1555", u, "T", m)), 200);
  }
  ASSERT_TRUE(channel_->WaitIdle(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto sent = SentTo(u);
  ASSERT_EQ(sent.size(), 7u);
  EXPECT_EQ(sent[4]["body"], config_.texts.non_text);
  EXPECT_EQ(sent[5]["body"], config_.texts.non_text);
  EXPECT_EQ(sent[6]["body"], config_.texts.non_text);
  EXPECT_EQ(gen_.calls, 2);
}

TEST_F(ChannelTest, AllowListRateLimitAndMaxLength) {
  config_.allow_list = {"5541", "5542"};
  config_.rate_limit_per_minute = 2;
  config_.max_message_chars = 20;
  config_.quiet_window_s = 0;
  StartChannel();
  EXPECT_EQ(PostSigned(Text("5599", "x1", "oi")), 200);  // not on the list: stored, never answered
  EXPECT_EQ(PostSigned(Text("5542", "y1", std::string(30, 'a'))), 200);
  ASSERT_TRUE(WaitFor([&] { return SentTo("5542").size() == 1; }));
  EXPECT_EQ(SentTo("5542")[0]["body"], config_.texts.too_long);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(PostSigned(Text("5541", "z" + std::to_string(i), "msg " + std::to_string(i))), 200);
    ASSERT_TRUE(channel_->WaitIdle(10));
  }
  auto sent = SentTo("5541");
  ASSERT_EQ(sent.size(), 3u);  // two answers, one notice, then silence
  EXPECT_EQ(sent[2]["body"], config_.texts.rate_limited);
  EXPECT_TRUE(SentTo("5599").empty());
}

TEST_F(ChannelTest, RedeliveriesDoNotCountAgainstTheRateLimit) {
  config_.rate_limit_per_minute = 2;
  config_.quiet_window_s = 0;
  StartChannel();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(PostSigned(Text("5543", "r1", "primeira")), 200);
  ASSERT_TRUE(channel_->WaitIdle(10));
  EXPECT_EQ(PostSigned(Text("5543", "r2", "segunda")), 200);
  ASSERT_TRUE(channel_->WaitIdle(10));
  auto sent = SentTo("5543");
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1]["body"], "eco: [primeira] [segunda]");
}

TEST_F(ChannelTest, LongReplyIsSplitIntoValidParts) {
  std::string reply;
  while (Utf8Length(reply) < 10000) reply += "Ação e emoção 😀 no coração. ";
  gen_.fixed_reply = reply;
  StartChannel();
  EXPECT_EQ(PostSigned(Text("5551", "long", "conta uma história longa")), 200);
  ASSERT_TRUE(channel_->WaitIdle(10));
  auto sent = SentTo("5551");
  ASSERT_EQ(sent.size(), 3u);
  for (const json& m : sent) EXPECT_LE(Utf8Length(m["body"].get<std::string>()), 4096u);
}

TEST_F(ChannelTest, ThrottledThenDeliveredAndWindowClosedNotRetried) {
  StartChannel();
  emu_->QueueErrors({130429, 2, 0});
  EXPECT_EQ(PostSigned(Text("5561", "t1", "oi")), 200);
  ASSERT_TRUE(WaitFor([&] { return SentTo("5561").size() == 1; }));
  ASSERT_TRUE(channel_->WaitIdle(5));
  EXPECT_NE(channel_->Metrics().find("formiga_whatsapp_send_retries_total 2"), std::string::npos);

  emu_->QueueErrors({131047});
  EXPECT_EQ(PostSigned(Text("5562", "t2", "oi")), 200);
  ASSERT_TRUE(channel_->WaitIdle(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_TRUE(SentTo("5562").empty());
  int attempts = 0;
  for (const json& c : emu_->Calls()) attempts += c["kind"] == "text" && c["to"] == "5562";
  EXPECT_EQ(attempts, 1);
  json h = channel_->Health();
  EXPECT_EQ(h["outbox_failed"], 1);
  EXPECT_TRUE(h["ok"]);
}

TEST_F(ChannelTest, ExpiredTokenPausesKeepsOutboxAndResumesWhenFixed) {
  StartChannel();
  emu_->SetAccessToken("tok-2");  // Meta revoked tok-1
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(PostSigned(Text("557" + std::to_string(i), "p" + std::to_string(i), "oi")), 200);
  }
  ASSERT_TRUE(WaitFor([&] { return channel_->Health()["sending_paused"] == true; }));
  ASSERT_TRUE(WaitFor([&] { return channel_->Health()["outbox_pending"] == 3; }));
  json h = channel_->Health();
  EXPECT_FALSE(h["ok"]);
  EXPECT_NE(h["paused_reason"].get<std::string>().find("190"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(emu_->Sent().empty());
  EXPECT_EQ(channel_->Health()["outbox_pending"], 3);
  {
    std::lock_guard<std::mutex> lock(log_mu_);
    EXPECT_NE(log_.find("sending paused"), std::string::npos);
    EXPECT_EQ(log_.find("tok-1"), std::string::npos);  // secrets never logged
  }
  WriteToken("tok-2");
  ASSERT_TRUE(WaitFor([&] { return emu_->Sent().size() == 3; }));
  ASSERT_TRUE(WaitFor([&] { return channel_->Health()["ok"] == true; }));
}

TEST_F(ChannelTest, ShutdownLeavesUnansweredMessagesForTheNextStart) {
  gen_.delay_ms = 300;
  StartChannel();
  EXPECT_EQ(PostSigned(Text("5581", "s1", "demora")), 200);
  ASSERT_TRUE(WaitFor([&] { return gen_.calls > 0; }));
  channel_->Shutdown();
  EXPECT_EQ(PostSigned(Text("5581", "s2", "depois")), 503);
  EXPECT_TRUE(emu_->Sent().empty());
  http_->stop();
  http_thread_.join();
  channel_.reset();
  gen_.cancelled = false;
  gen_.delay_ms = 0;
  StartChannel();
  ASSERT_TRUE(WaitFor([&] { return SentTo("5581").size() == 1; }));
  EXPECT_EQ(SentTo("5581")[0]["body"], "eco: [demora]");
}

TEST(ChannelConfig, RefusesToStartWithoutAnAppSecret) {
  WhatsappConfig c;
  c.verify_token = "v";
  c.access_token = "a";
  c.phone_number_id = "1";
  Status st = c.Validate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("FORMIGA_WHATSAPP_APP_SECRET"), std::string::npos);
  c.insecure_dev = true;
  EXPECT_TRUE(c.Validate().ok());
  EXPECT_EQ(c.Describe().find("\"a\""), std::string::npos);
}

TEST(ChannelConfig, FileUnknownKeysAndLanguage) {
  WhatsappConfig c;
  EXPECT_FALSE(ApplyConfigJson(json{{"verify_tokn", "x"}}, c).ok());
  ASSERT_TRUE(ApplyConfigJson(json{{"language", "en"}, {"texts", {{"help", "custom"}}}}, c).ok());
  EXPECT_EQ(c.texts.help, "custom");
  EXPECT_EQ(c.texts.reset_done, DefaultTexts("en").reset_done);
  EXPECT_NE(DefaultTexts("pt-BR").non_text.find("texto"), std::string::npos);
}

}  // namespace
}  // namespace formiga::whatsapp
