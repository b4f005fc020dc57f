// WhatsappChannel: the webhook, the worker pool and the outbox sender.
//
//   POST /webhook ── verify signature ── parse ── Store::InsertInbound ── 200
//   workers: pending users (quiet window elapsed) ── history + ReplyGenerator
//            ── Store::CommitReply (answered + history + outbox, one transaction)
//   sender:  Store::NextOutbox ── GraphClient::Send ── MarkSent/Retry/Failed
//
// A user is handled by one worker at a time, so a user's replies follow the
// order of their messages and never mix contexts; different users run in
// parallel (the engine batches them).
//
// Thread safety: every public method is thread-safe. Library code never
// prints: log lines go to the Logger.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "channels/whatsapp/config.h"
#include "channels/whatsapp/graph_client.h"
#include "channels/whatsapp/reply_generator.h"
#include "channels/whatsapp/store.h"
#include "channels/whatsapp/webhook.h"

namespace httplib {
class Server;
}

namespace formiga::whatsapp {

enum class LogLevel { kInfo, kWarning, kError };
using Logger = std::function<void(LogLevel, const std::string&)>;

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
};

class WhatsappChannel {
 public:
  // `generator` must outlive the channel. Threads start with Start().
  static Result<std::unique_ptr<WhatsappChannel>> Create(WhatsappConfig config, std::unique_ptr<Store> store,
                                                         ReplyGenerator& generator, Logger logger);
  ~WhatsappChannel();  // Shutdown()

  const WhatsappConfig& config() const { return config_; }
  // GET and POST handlers on config.webhook_path.
  void Mount(httplib::Server& server);
  void Start();
  // Stops taking webhooks (503, so Meta redelivers later), cancels
  // generations in flight (their messages stay pending and are answered
  // after restart) and joins the threads. Idempotent.
  void Shutdown();

  // The handlers without HTTP (tests, fuzzing).
  HttpReply HandleVerify(const std::string& mode, const std::string& token, const std::string& challenge) const;
  HttpReply HandleNotification(const std::string& raw_body, const std::string& signature_header);

  // {"ok", "sending_paused", "paused_reason", "inbound_pending", "outbox_pending", ...}
  nlohmann::json Health() const;
  // Prometheus text: formiga_whatsapp_* counters, gauges, latency histogram.
  std::string Metrics() const;
  // Blocks until nothing is pending (inbound or outbox) or `timeout_s`
  // passed; true when idle (tests).
  bool WaitIdle(double timeout_s);

 private:
  WhatsappChannel(WhatsappConfig config, std::unique_ptr<Store> store, ReplyGenerator& generator, Logger logger);
  void Log(LogLevel level, const std::string& msg) const;
  Action Decide(const InboundMessage& m, int64_t now_ms);
  void WorkerLoop();
  void ProcessUser(const std::string& wa_id);
  void SenderLoop();
  void SendOne(const OutboxItem& item);
  std::string AccessToken() const;
  void ObserveLatency(double seconds);

  WhatsappConfig config_;
  std::unique_ptr<Store> store_;
  ReplyGenerator& generator_;
  Logger logger_;
  GraphClient graph_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;    // workers: new inbound or a user freed
  std::condition_variable send_cv_;    // sender: new outbox rows or token fixed
  std::set<std::string> busy_users_;   // guarded by mu_
  std::map<std::string, std::deque<int64_t>> recent_;  // rate limit: arrival ms per user (mu_)
  std::map<std::string, int64_t> limited_until_;       // rate limit notice sent until (mu_)
  // Recently seen wamids, so Meta's redeliveries do not count against the
  // rate limit (the store de-duplicates durably; this only spares the counter).
  std::set<std::string> seen_;                         // (mu_)
  std::deque<std::string> seen_order_;                 // eviction order of seen_ (mu_)
  uint64_t decisions_ = 0;                             // (mu_)
  std::string paused_reason_;          // non-empty while sending is paused by 190 (mu_)
  std::string last_send_error_;        // (mu_)
  bool started_ = false;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> workers_;
  std::thread sender_;

  // Metrics.
  std::atomic<uint64_t> received_{0}, deduplicated_{0}, answered_{0}, failed_{0}, canned_{0}, ignored_{0};
  std::atomic<uint64_t> rejected_signature_{0}, rejected_body_{0}, statuses_{0};
  std::atomic<uint64_t> sent_{0}, send_retries_{0}, send_failed_{0};
  static constexpr double kLatencyBuckets[] = {0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300};
  mutable std::mutex latency_mu_;
  uint64_t latency_counts_[std::size(kLatencyBuckets)] = {};
  uint64_t latency_count_ = 0;
  double latency_sum_ = 0;
};

}  // namespace formiga::whatsapp
