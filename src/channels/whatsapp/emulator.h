// GraphEmulator: a local stand-in for Meta's Graph API and for the WhatsApp
// users who write to the bot, so the whole loop runs with no Meta account
// (`formiga whatsapp emulate`) and the tests run on loopback.
//
// It answers what the channel calls — POST /{version}/{phone-number-id}/messages
// (text sends, read receipts with "typing…") — with Meta's shapes, checks the
// Bearer token (error 190 otherwise), can fail the next sends with chosen
// error codes, and records everything. Users' messages become webhook POSTs
// signed exactly as Meta signs them (X-Hub-Signature-256 over the raw body),
// and every accepted send is followed by "sent" and "delivered" status
// webhooks.
//
// HTTP routes besides the Graph one: GET / (a chat page), POST /emulator/send
// {from, name?, text? | type?}, GET /emulator/messages?since=N[&to=WA_ID],
// POST /emulator/errors {codes: [...]}, POST /emulator/token {token},
// GET /emulator/state.
//
// Thread safety: every public method is thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace httplib {
class Server;
}

namespace formiga::whatsapp {

struct EmulatorOptions {
  std::string host = "127.0.0.1";
  int port = 0;                    // 0: any free port
  std::string webhook_url;         // the bot's webhook, e.g. http://127.0.0.1:8080/webhook
  std::string app_secret;          // signs the webhooks (empty: unsigned)
  std::string access_token;        // the Bearer token sends must carry (empty: any)
  std::string phone_number_id = "106540352242922";
  std::string display_phone_number = "15550783881";
  bool send_statuses = true;       // "sent" + "delivered" webhooks after each accepted send
};

// Meta-shaped notification bodies (the literal layout of Meta's examples).
nlohmann::json MakeMessageNotification(const std::string& phone_number_id, const std::string& display_number,
                                       const std::string& from, const std::string& profile_name,
                                       const nlohmann::json& message);
nlohmann::json MakeTextMessage(const std::string& from, const std::string& wamid, const std::string& text,
                               int64_t timestamp);
nlohmann::json MakeStatusNotification(const std::string& phone_number_id, const std::string& display_number,
                                      const std::string& wamid, const std::string& recipient,
                                      const std::string& status, int64_t timestamp,
                                      const std::string& callback_data);

class GraphEmulator {
 public:
  // Binds and starts serving (its own thread).
  static Result<std::unique_ptr<GraphEmulator>> Start(EmulatorOptions options);
  ~GraphEmulator();

  int port() const { return port_; }
  std::string base_url() const;
  void Stop();

  // The next sends fail with these Graph error codes, in order (0: succeed).
  void QueueErrors(const std::vector<int64_t>& codes);
  void SetAccessToken(const std::string& token);
  void SetWebhookUrl(const std::string& url);
  // Every accepted text send: {seq, to, body, context, callback_data, wamid, ms}.
  nlohmann::json Sent() const;
  // Every call (accepted or not): {seq, kind: "text"|"read", to|message_id, result_code}.
  nlohmann::json Calls() const;
  // A user writes `text` to the bot: the signed webhook is POSTed now.
  // Returns the message's wamid, or an error when the bot did not answer 200.
  Result<std::string> UserSends(const std::string& from, const std::string& name, const std::string& text);
  // Any message object (image, reaction, ...) from `from`.
  Result<std::string> UserSendsMessage(const std::string& from, const std::string& name, nlohmann::json message);

 private:
  explicit GraphEmulator(EmulatorOptions options);
  void Routes();
  void HandleGraph(const std::string& body, const std::string& auth, int& status, std::string& out);
  Status PostWebhook(const std::string& body);
  void StatusLoop();

  EmulatorOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::thread status_thread_;
  int port_ = 0;

  mutable std::mutex mu_;
  std::condition_variable status_cv_;
  std::deque<std::string> status_queue_;  // webhook bodies to deliver
  std::deque<int64_t> errors_;
  nlohmann::json sent_ = nlohmann::json::array();
  nlohmann::json calls_ = nlohmann::json::array();
  int64_t seq_ = 0;
  int64_t next_wamid_ = 1;
  bool stop_ = false;
};

}  // namespace formiga::whatsapp
