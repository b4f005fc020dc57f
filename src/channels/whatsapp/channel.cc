#include "channels/whatsapp/channel.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <sstream>

#include "channels/whatsapp/conversation.h"
#include "channels/whatsapp/signature.h"
#include "channels/whatsapp/split.h"

namespace formiga::whatsapp {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

}  // namespace

WhatsappChannel::WhatsappChannel(WhatsappConfig config, std::unique_ptr<Store> store, ReplyGenerator& generator,
                                 Logger logger)
    : config_(std::move(config)),
      store_(std::move(store)),
      generator_(generator),
      logger_(std::move(logger)),
      graph_(GraphEndpoint{config_.graph_base_url, config_.graph_version, config_.phone_number_id,
                           config_.graph_timeout_s}) {}

Result<std::unique_ptr<WhatsappChannel>> WhatsappChannel::Create(WhatsappConfig config, std::unique_ptr<Store> store,
                                                                 ReplyGenerator& generator, Logger logger) {
  FORMIGA_RETURN_IF_ERROR(config.Validate());
  if (store == nullptr) return Status::InvalidArgument("whatsapp: no store given");
  if (config.system_prompt.empty()) config.system_prompt = DefaultSystemPrompt(config.language);
  return std::unique_ptr<WhatsappChannel>(
      new WhatsappChannel(std::move(config), std::move(store), generator, std::move(logger)));
}

WhatsappChannel::~WhatsappChannel() { Shutdown(); }

void WhatsappChannel::Log(LogLevel level, const std::string& msg) const {
  if (logger_) logger_(level, msg);
}

void WhatsappChannel::Mount(httplib::Server& server) {
  server.Get(config_.webhook_path, [this](const httplib::Request& req, httplib::Response& res) {
    HttpReply r = HandleVerify(req.get_param_value("hub.mode"), req.get_param_value("hub.verify_token"),
                               req.get_param_value("hub.challenge"));
    res.status = r.status;
    res.set_content(r.body, r.content_type.c_str());
  });
  server.Post(config_.webhook_path,
              [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
                const auto limit = static_cast<size_t>(config_.max_body_bytes);
                if (req.has_header("Content-Length") &&
                    std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) > limit) {
                  rejected_body_++;
                  res.status = 413;
                  res.set_content("body too large", "text/plain");
                  return;
                }
                std::string body;
                bool too_big = false;
                reader([&](const char* data, size_t n) {
                  if (body.size() + n > limit) {
                    too_big = true;
                    return false;
                  }
                  body.append(data, n);
                  return true;
                });
                if (too_big) {
                  rejected_body_++;
                  res.status = 413;
                  res.set_content("body too large", "text/plain");
                  return;
                }
                HttpReply r = HandleNotification(body, req.get_header_value("X-Hub-Signature-256"));
                res.status = r.status;
                res.set_content(r.body, r.content_type.c_str());
              });
}

HttpReply WhatsappChannel::HandleVerify(const std::string& mode, const std::string& token,
                                        const std::string& challenge) const {
  // NOTE: the verify token is not a signing key, but compare it in constant
  // time anyway: it costs nothing.
  if (mode == "subscribe" && !config_.verify_token.empty() && ConstantTimeEquals(token, config_.verify_token)) {
    return {200, challenge, "text/plain"};
  }
  Log(LogLevel::kWarning, "webhook verification refused (mode '" + mode + "', wrong or missing verify token)");
  return {403, "verification failed", "text/plain"};
}

Action WhatsappChannel::Decide(const InboundMessage& m, int64_t now_ms) {
  if (!config_.allow_list.empty() &&
      std::find(config_.allow_list.begin(), config_.allow_list.end(), m.wa_id) == config_.allow_list.end()) {
    return Action::kIgnore;
  }
  if (!config_.phone_number_id.empty() && !m.phone_number_id.empty() && m.phone_number_id != config_.phone_number_id) {
    return Action::kIgnore;  // sent to another number of the same business account
  }
  if (m.kind == MessageKind::kReaction && !config_.reply_to_reactions) return Action::kIgnore;
  if (config_.rate_limit_per_minute > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    // NOTE: a redelivery is not counted again, but still decided normally: if
    // the first delivery failed to store, this one is the message.
    const bool redelivery = !seen_.insert(m.wamid).second;
    if (!redelivery) {
      seen_order_.push_back(m.wamid);
      if (seen_order_.size() > 10000) {
        seen_.erase(seen_order_.front());
        seen_order_.pop_front();
      }
    }
    if (++decisions_ % 1024 == 0) {  // forget users quiet for a minute
      for (auto it = recent_.begin(); it != recent_.end();) {
        while (!it->second.empty() && it->second.front() <= now_ms - 60000) it->second.pop_front();
        it = it->second.empty() ? recent_.erase(it) : std::next(it);
      }
      std::erase_if(limited_until_, [&](const auto& kv) { return kv.second <= now_ms; });
    }
    std::deque<int64_t>& q = recent_[m.wa_id];
    while (!q.empty() && q.front() <= now_ms - 60000) q.pop_front();
    if (!redelivery && static_cast<int64_t>(q.size()) >= config_.rate_limit_per_minute) {
      int64_t& until = limited_until_[m.wa_id];
      if (until > now_ms) return Action::kIgnore;  // already told them
      until = q.front() + 60000;
      return Action::kRateLimited;
    }
    if (!redelivery) q.push_back(now_ms);
  }
  if (m.kind != MessageKind::kText) return Action::kNonText;
  const std::string cmd = Lower(Trim(m.text));
  if (cmd == "/reset" || cmd == "/reiniciar") return Action::kReset;
  if (cmd == "/help" || cmd == "/ajuda") return Action::kHelp;
  if (static_cast<int64_t>(Utf8Length(m.text)) > config_.max_message_chars) return Action::kTooLong;
  return Action::kGenerate;
}

HttpReply WhatsappChannel::HandleNotification(const std::string& raw_body, const std::string& signature_header) {
  if (stopping_) return {503, "shutting down", "text/plain"};
  if (!config_.app_secret.empty()) {
    if (!VerifySignature(config_.app_secret, raw_body, signature_header)) {
      rejected_signature_++;
      Log(LogLevel::kWarning, signature_header.empty() ? "webhook POST without X-Hub-Signature-256 refused"
                                                       : "webhook POST with a wrong signature refused (is app_secret "
                                                         "the app's secret from Meta's dashboard?)");
      return {401, "invalid signature", "text/plain"};
    }
  }
  Result<Notification> parsed = ParseNotification(raw_body);
  if (!parsed.ok()) {
    rejected_body_++;
    Log(LogLevel::kWarning, "webhook: " + parsed.status().message());
    return {400, "not a WhatsApp notification", "text/plain"};
  }
  const int64_t now = NowMs();
  std::vector<StoredInbound> rows;
  for (const InboundMessage& m : parsed->messages) {
    StoredInbound s;
    s.wamid = m.wamid;
    s.wa_id = m.wa_id;
    s.type = m.type;
    s.text = m.text;
    s.context_id = m.context_id;
    s.timestamp = m.timestamp;
    s.received_ms = now;
    s.action = Decide(m, now);
    rows.push_back(std::move(s));
  }
  if (!rows.empty()) {
    Result<std::vector<bool>> fresh = store_->InsertInbound(rows);
    if (!fresh.ok()) {
      // NOTE: not 200, so Meta delivers the notification again later.
      Log(LogLevel::kError, "webhook: could not store messages: " + fresh.status().ToString());
      return {500, "storage error", "text/plain"};
    }
    for (bool f : *fresh) (f ? received_ : deduplicated_)++;
  }
  for (const StatusUpdate& s : parsed->statuses) {
    statuses_++;
    Result<bool> known = store_->UpdateDelivery(s.wamid, s.status, s.error_code);
    if (!known.ok()) Log(LogLevel::kError, "webhook: status update: " + known.status().ToString());
    if (s.status == "failed") {
      Log(LogLevel::kWarning, "delivery failed for " + s.wamid + " to " + s.recipient_id + ": code " +
                                  std::to_string(s.error_code) + " " + s.error_title);
    }
  }
  for (const std::string& e : parsed->errors) Log(LogLevel::kWarning, "webhook: " + e);
  if (!rows.empty()) work_cv_.notify_all();
  return {200, "ok", "text/plain"};
}

void WhatsappChannel::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  for (int i = 0; i < config_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  sender_ = std::thread([this] { SenderLoop(); });
  Log(LogLevel::kInfo, "whatsapp channel started: " + config_.Describe());
}

void WhatsappChannel::Shutdown() {
  if (stopping_.exchange(true)) return;
  generator_.CancelAll();
  work_cv_.notify_all();
  send_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  if (sender_.joinable()) sender_.join();
  workers_.clear();
}

void WhatsappChannel::WorkerLoop() {
  const auto quiet_ms = static_cast<int64_t>(config_.quiet_window_s * 1000);
  while (!stopping_) {
    std::string user;
    int64_t wait_ms = 500;
    Result<std::vector<PendingUser>> pending = store_->PendingUsers();
    if (!pending.ok()) {
      Log(LogLevel::kError, "worker: " + pending.status().ToString());
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      const int64_t now = NowMs();
      for (const PendingUser& p : *pending) {
        if (busy_users_.count(p.wa_id)) continue;
        const int64_t ready_at = p.newest_ms + quiet_ms;
        if (ready_at > now) {
          wait_ms = std::min(wait_ms, ready_at - now);
          continue;
        }
        user = p.wa_id;
        busy_users_.insert(user);
        break;
      }
    }
    if (user.empty()) {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(wait_ms, 5)));
      continue;
    }
    ProcessUser(user);
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_users_.erase(user);
    }
    work_cv_.notify_all();
    send_cv_.notify_all();
  }
}

void WhatsappChannel::ProcessUser(const std::string& wa_id) {
  Result<std::vector<StoredInbound>> pending = store_->PendingFor(wa_id);
  if (!pending.ok()) {
    Log(LogLevel::kError, "worker: " + pending.status().ToString());
    return;
  }
  if (pending->empty()) return;
  const std::vector<StoredInbound>& all = *pending;
  ReplyCommit commit;
  commit.wa_id = wa_id;
  size_t n = 1;
  const Action action = all[0].action;
  if (action == Action::kGenerate) {
    while (n < all.size() && all[n].action == Action::kGenerate) ++n;
  }
  for (size_t i = 0; i < n; ++i) commit.answered.push_back(all[i].wamid);
  const Texts& t = config_.texts;
  bool generated = false;
  switch (action) {
    case Action::kHelp: commit.parts = {t.help}; break;
    case Action::kReset:
      commit.reset_history = true;
      commit.parts = {t.reset_done};
      break;
    case Action::kNonText: commit.parts = {t.non_text}; break;
    case Action::kRateLimited: commit.parts = {t.rate_limited}; break;
    case Action::kTooLong: commit.parts = {t.too_long}; break;
    case Action::kIgnore: break;
    case Action::kGenerate: {
      if (config_.typing_indicator && !stopping_) {
        bool paused;
        {
          std::lock_guard<std::mutex> lock(mu_);
          paused = !paused_reason_.empty();
        }
        if (!paused) {
          // Best effort: a lost read receipt or typing indicator costs nothing.
          GraphResult r = graph_.MarkRead(all[n - 1].wamid, true, AccessToken());
          if (!r.ok()) Log(LogLevel::kWarning, "read receipt for " + all[n - 1].wamid + ": " + r.error_message);
        }
      }
      std::string user_text;
      for (size_t i = 0; i < n; ++i) user_text += (i ? "\n" : "") + all[i].text;
      Result<std::vector<Turn>> history = store_->History(wa_id, 200);
      if (!history.ok()) {
        Log(LogLevel::kError, "worker: " + history.status().ToString());
        return;
      }
      int64_t budget = generator_.ContextTokens() - config_.max_reply_tokens;
      if (config_.history_tokens > 0) budget = std::min(budget, config_.history_tokens);
      Result<nlohmann::json> messages = BuildMessages(config_.system_prompt, *history, user_text, budget, generator_);
      Result<std::string> reply = messages.ok() ? generator_.Generate(*messages, GenerateOptions{
                                                      config_.max_reply_tokens, config_.temperature, config_.seed})
                                                : Result<std::string>(messages.status());
      if (!reply.ok() && (stopping_ || reply.status().code() == StatusCode::kCancelled)) {
        return;  // stays pending: answered after restart
      }
      if (!reply.ok()) {
        failed_++;
        Log(LogLevel::kError, "could not answer " + wa_id + ": " + reply.status().ToString());
        commit.parts = {t.error};
        break;
      }
      std::string text = Trim(*reply);
      if (text.empty()) {
        commit.parts = {t.empty_reply};
        break;
      }
      generated = true;
      commit.turns = {{"user", user_text}, {"assistant", text}};
      commit.parts = SplitReply(text);
      break;
    }
  }
  // Quote the message answered when the user has several in flight (more
  // may have arrived during generation), so they can tell which reply goes
  // with which question.
  size_t in_flight = all.size();
  if (action == Action::kGenerate) {
    Result<std::vector<StoredInbound>> now_pending = store_->PendingFor(wa_id);
    if (now_pending.ok()) in_flight = now_pending->size();
  }
  if (!commit.parts.empty() && (n > 1 || in_flight > n)) commit.context_wamid = all[n - 1].wamid;
  commit.now_ms = NowMs();
  Result<int64_t> id = store_->CommitReply(commit);
  if (!id.ok()) {
    Log(LogLevel::kError, "worker: could not commit the reply to " + wa_id + ": " + id.status().ToString());
    return;
  }
  if (generated) {
    answered_++;
    ObserveLatency(static_cast<double>(commit.now_ms - all[0].received_ms) / 1000.0);
  } else if (action == Action::kIgnore) {
    ignored_++;
  } else {
    canned_++;
  }
}

std::string WhatsappChannel::AccessToken() const {
  std::lock_guard<std::mutex> lock(mu_);
  return config_.access_token;
}

void WhatsappChannel::SenderLoop() {
  std::mt19937_64 rng(std::random_device{}());
  auto wait = [&](int64_t ms) {
    std::unique_lock<std::mutex> lock(mu_);
    send_cv_.wait_for(lock, std::chrono::milliseconds(std::clamp<int64_t>(ms, 1, 1000)));
  };
  while (!stopping_) {
    bool paused;
    {
      std::lock_guard<std::mutex> lock(mu_);
      paused = !paused_reason_.empty();
    }
    if (paused) {
      // Probe with the head of the outbox every paused_probe_s, re-reading
      // the token file first: fixing the token resumes sending.
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(static_cast<int64_t>(config_.paused_probe_s * 1000));
      while (!stopping_ && std::chrono::steady_clock::now() < deadline) wait(100);
      if (stopping_) break;
      std::lock_guard<std::mutex> lock(mu_);
      Status st = ReloadAccessToken(config_);
      if (!st.ok()) Log(LogLevel::kWarning, "access token file: " + st.ToString());
    }
    Result<std::optional<OutboxItem>> next = store_->NextOutbox(NowMs());
    if (!next.ok()) {
      Log(LogLevel::kError, "sender: " + next.status().ToString());
      wait(1000);
      continue;
    }
    if (!next->has_value()) {
      Result<std::optional<int64_t>> due = store_->NextOutboxDue();
      int64_t ms = 1000;
      if (due.ok() && due->has_value()) ms = **due - NowMs();
      wait(ms);
      continue;
    }
    const OutboxItem& item = **next;
    const std::string token = AccessToken();
    GraphResult r = graph_.Send(SendText{item.wa_id, item.body, item.context_wamid,
                                         "formiga:" + std::to_string(item.reply_id) + ":" + std::to_string(item.part)},
                                token);
    const int64_t now = NowMs();
    Status st;
    switch (Classify(r)) {
      case Disposition::kDone:
        // NOTE: the duplicate window: a crash between the Graph API's 2xx and
        // this commit sends the part again after restart.
        st = store_->MarkSent(item.id, r.wamid, now);
        sent_++;
        if (paused) {
          std::lock_guard<std::mutex> lock(mu_);
          paused_reason_.clear();
          Log(LogLevel::kInfo, "sending resumed: the access token works again");
        }
        break;
      case Disposition::kRetry: {
        if (item.attempts + 1 >= config_.max_attempts) {
          st = store_->MarkFailed(item.id, r.error_code, r.error_message, now);
          send_failed_++;
          failed_++;
          Log(LogLevel::kError, "giving up on a reply to " + item.wa_id + " after " +
                                    std::to_string(item.attempts + 1) + " attempts: " + r.error_message);
          break;
        }
        const double exp = config_.retry_base_s * std::pow(2.0, static_cast<double>(std::min<int64_t>(item.attempts, 20)));
        const double delay = std::min(exp, config_.retry_max_s) * std::uniform_real_distribution<double>(0.5, 1.0)(rng);
        st = store_->MarkRetry(item.id, now + static_cast<int64_t>(delay * 1000), r.error_code, r.error_message);
        send_retries_++;
        Log(LogLevel::kWarning, "send to " + item.wa_id + " failed (HTTP " + std::to_string(r.http_status) +
                                    ", code " + std::to_string(r.error_code) + ": " + r.error_message +
                                    "); retrying in " + std::to_string(delay) + " s");
        break;
      }
      case Disposition::kPermanent:
        st = store_->MarkFailed(item.id, r.error_code, r.error_message, now);
        send_failed_++;
        failed_++;
        Log(LogLevel::kError, "reply to " + item.wa_id + " not delivered (code " + std::to_string(r.error_code) +
                                  ": " + r.error_message + ")" +
                                  (r.error_code == 131047 ? ": more than 24 h since the user's last message; only "
                                                            "approved templates may be sent"
                                                          : ""));
        break;
      case Disposition::kAuth: {
        std::lock_guard<std::mutex> lock(mu_);
        if (paused_reason_.empty()) {
          Log(LogLevel::kError, "sending paused: the Graph API refused the access token (code " +
                                    std::to_string(r.error_code) + ": " + r.error_message +
                                    "); replies stay in the outbox. Put a valid token in " +
                                    (config_.access_token_file.empty() ? std::string(kEnvAccessToken) + " and restart"
                                                                       : config_.access_token_file) +
                                    "; probing every " + std::to_string(config_.paused_probe_s) + " s");
        }
        paused_reason_ = "access token rejected (code " + std::to_string(r.error_code) + ")";
        break;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!r.ok()) last_send_error_ = "code " + std::to_string(r.error_code) + ": " + r.error_message;
    }
    if (!st.ok()) {
      Log(LogLevel::kError, "sender: " + st.ToString());
      wait(1000);
    }
  }
}

void WhatsappChannel::ObserveLatency(double s) {
  std::lock_guard<std::mutex> lock(latency_mu_);
  for (size_t i = 0; i < std::size(kLatencyBuckets); ++i) {
    if (s <= kLatencyBuckets[i]) latency_counts_[i]++;
  }
  latency_count_++;
  latency_sum_ += s;
}

nlohmann::json WhatsappChannel::Health() const {
  nlohmann::json h;
  std::string paused, last_error;
  {
    std::lock_guard<std::mutex> lock(mu_);
    paused = paused_reason_;
    last_error = last_send_error_;
  }
  Result<StoreCounts> c = store_->Counts();
  h["ok"] = paused.empty() && c.ok() && !stopping_;
  h["sending_paused"] = !paused.empty();
  if (!paused.empty()) h["paused_reason"] = paused;
  if (!last_error.empty()) h["last_send_error"] = last_error;
  if (c.ok()) {
    h["inbound_pending"] = c->inbound_pending;
    h["outbox_pending"] = c->outbox_pending;
    h["outbox_sent"] = c->outbox_sent;
    h["outbox_failed"] = c->outbox_failed;
  } else {
    h["store_error"] = c.status().ToString();
  }
  return h;
}

std::string WhatsappChannel::Metrics() const {
  std::ostringstream o;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    o << "# HELP formiga_whatsapp_" << name << " " << help << "\n# TYPE formiga_whatsapp_" << name
      << " counter\nformiga_whatsapp_" << name << " " << v << "\n";
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    o << "# HELP formiga_whatsapp_" << name << " " << help << "\n# TYPE formiga_whatsapp_" << name
      << " gauge\nformiga_whatsapp_" << name << " " << v << "\n";
  };
  counter("messages_received_total", "Inbound messages stored (first delivery).", received_);
  counter("messages_deduplicated_total", "Inbound messages ignored as Meta redeliveries.", deduplicated_);
  counter("messages_answered_total", "Replies generated by the model.", answered_);
  counter("messages_canned_total", "Replies sent without the model (help, reset, non-text, limits).", canned_);
  counter("messages_ignored_total", "Messages stored but not answered (allow-list, reactions, rate limit).", ignored_);
  counter("messages_failed_total", "Replies that could not be generated or delivered.", failed_);
  counter("webhook_rejected_signature_total", "Webhook POSTs refused for a missing or wrong signature.",
          rejected_signature_);
  counter("webhook_rejected_body_total", "Webhook POSTs refused as too large or not a notification.", rejected_body_);
  counter("statuses_total", "Delivery status updates received.", statuses_);
  counter("sent_total", "Messages the Graph API accepted.", sent_);
  counter("send_retries_total", "Send attempts that will be retried.", send_retries_);
  counter("send_failed_total", "Messages given up on.", send_failed_);
  Result<StoreCounts> c = store_->Counts();
  if (c.ok()) {
    gauge("outbox_depth", "Replies waiting to be sent.", c->outbox_pending);
    gauge("inbound_pending", "Messages waiting for an answer.", c->inbound_pending);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    gauge("sending_paused", "1 while sending is paused (access token rejected).", paused_reason_.empty() ? 0 : 1);
  }
  std::lock_guard<std::mutex> lock(latency_mu_);
  o << "# HELP formiga_whatsapp_reply_latency_seconds From a message's arrival to its reply being ready.\n"
    << "# TYPE formiga_whatsapp_reply_latency_seconds histogram\n";
  for (size_t i = 0; i < std::size(kLatencyBuckets); ++i) {
    o << "formiga_whatsapp_reply_latency_seconds_bucket{le=\"" << kLatencyBuckets[i] << "\"} " << latency_counts_[i]
      << "\n";
  }
  o << "formiga_whatsapp_reply_latency_seconds_bucket{le=\"+Inf\"} " << latency_count_ << "\n"
    << "formiga_whatsapp_reply_latency_seconds_sum " << latency_sum_ << "\n"
    << "formiga_whatsapp_reply_latency_seconds_count " << latency_count_ << "\n";
  return o.str();
}

bool WhatsappChannel::WaitIdle(double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    Result<StoreCounts> c = store_->Counts();
    bool busy;
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy = !busy_users_.empty();
    }
    if (c.ok() && c->inbound_pending == 0 && c->outbox_pending == 0 && !busy) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace formiga::whatsapp
