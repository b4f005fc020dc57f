// Store: the channel's durable state — inbound messages (keyed by wamid, so
// Meta's redeliveries are recognized), per-user history, and the outbox of
// replies still to send. Every state change is one transaction:
//
//   webhook  --InsertInbound-->  inbound(pending)            [before HTTP 200]
//   worker   --CommitReply---->  inbound(answered) + history + outbox(pending)
//   sender   --MarkSent------->  outbox(sent, wamid)         [after Graph API 2xx]
//
// so a crash at any moment leaves either a pending inbound message (answered
// again from scratch after restart) or a pending outbox row (sent after
// restart). The one window for a duplicate is between the Graph API
// accepting a message and MarkSent committing (docs/whatsapp.md).
//
// SQLite today (sqlite_store.cc); a server database can implement the same
// interface for several replicas (claiming rows would then need a lease).
//
// Thread safety: implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace formiga::whatsapp {

// What the worker does with an inbound message, decided when it arrives.
enum class Action : int {
  kGenerate = 0,     // answer with the model
  kHelp = 1,
  kReset = 2,
  kNonText = 3,      // polite "text only" reply
  kRateLimited = 4,
  kTooLong = 5,
  kIgnore = 6,       // stored (for de-duplication) but never answered
};

struct StoredInbound {
  std::string wamid;
  std::string wa_id;
  std::string type;
  std::string text;
  std::string context_id;
  int64_t timestamp = 0;     // Meta's, Unix seconds
  int64_t received_ms = 0;   // when the webhook stored it
  Action action = Action::kGenerate;
};

struct Turn {
  std::string role;     // "user" | "assistant"
  std::string content;
};

struct OutboxItem {
  int64_t id = 0;
  std::string wa_id;
  std::string body;
  std::string context_wamid;  // quoted message, or empty
  int64_t reply_id = 0;       // the CommitReply that produced it
  int64_t part = 0;           // index among that reply's parts
  int64_t attempts = 0;
  int64_t created_ms = 0;
};

// One answer of the worker, committed atomically.
struct ReplyCommit {
  std::string wa_id;
  std::vector<std::string> answered;  // inbound wamids this reply answers
  bool reset_history = false;         // applied before `turns`
  std::vector<Turn> turns;            // appended to the user's history
  std::vector<std::string> parts;     // outbox rows, in order
  std::string context_wamid;          // quoted by the first part
  int64_t now_ms = 0;
};

struct PendingUser {
  std::string wa_id;
  int64_t oldest_ms = 0;   // received_ms of its oldest pending message
  int64_t newest_ms = 0;   // and of its newest
};

struct StoreCounts {
  int64_t inbound_pending = 0;
  int64_t outbox_pending = 0;
  int64_t outbox_sent = 0;
  int64_t outbox_failed = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // Inserts the messages not seen before, in one transaction; returns, per
  // message, whether it was new (false: a redelivery, ignored).
  virtual Result<std::vector<bool>> InsertInbound(const std::vector<StoredInbound>& messages) = 0;
  virtual Result<std::vector<PendingUser>> PendingUsers() = 0;
  // A user's pending messages, oldest first.
  virtual Result<std::vector<StoredInbound>> PendingFor(const std::string& wa_id) = 0;
  // The newest `max_turns` turns of a user's history since the last reset, oldest first.
  virtual Result<std::vector<Turn>> History(const std::string& wa_id, int64_t max_turns) = 0;
  // Marks `answered` as answered, applies the history change and queues the
  // parts; returns the reply id. Fails (changing nothing) when one of the
  // messages is no longer pending.
  virtual Result<int64_t> CommitReply(const ReplyCommit& reply) = 0;

  // The oldest pending outbox row due at `now_ms` whose user has no older
  // pending row (a user's replies go out in order).
  virtual Result<std::optional<OutboxItem>> NextOutbox(int64_t now_ms) = 0;
  // The earliest next_attempt_ms among the rows NextOutbox could return
  // (each user's oldest pending row); nullopt: none pending.
  virtual Result<std::optional<int64_t>> NextOutboxDue() = 0;
  virtual Status MarkSent(int64_t id, const std::string& sent_wamid, int64_t now_ms) = 0;
  virtual Status MarkRetry(int64_t id, int64_t next_attempt_ms, int64_t error_code, const std::string& error) = 0;
  virtual Status MarkFailed(int64_t id, int64_t error_code, const std::string& error, int64_t now_ms) = 0;
  // A status webhook for a message the bot sent; false when the wamid is unknown.
  virtual Result<bool> UpdateDelivery(const std::string& sent_wamid, const std::string& status,
                                      int64_t error_code) = 0;
  virtual Result<StoreCounts> Counts() = 0;
};

// Opens (creating if needed) a SQLite database in WAL mode. `synchronous`:
// "FULL" (a commit survives power loss) or "NORMAL" (survives process crashes).
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const std::string& synchronous = "FULL");

}  // namespace formiga::whatsapp
