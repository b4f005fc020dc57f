// SQLite implementation of Store: one file, WAL journal, one connection
// behind a mutex (the channel's writes are small; SQLite serializes writers
// anyway). PRAGMA user_version tracks the schema.
#include <sqlite3.h>

#include <algorithm>
#include <mutex>

#include "channels/whatsapp/store.h"

namespace formiga::whatsapp {
namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS inbound(
  wamid TEXT PRIMARY KEY,
  wa_id TEXT NOT NULL,
  type TEXT NOT NULL,
  body TEXT NOT NULL,
  context_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  action INTEGER NOT NULL,
  state INTEGER NOT NULL,           -- 0 pending, 1 answered
  reply_id INTEGER);
CREATE INDEX IF NOT EXISTS inbound_pending ON inbound(state, wa_id, received_ms);
CREATE TABLE IF NOT EXISTS history(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  wa_id TEXT NOT NULL,
  role TEXT NOT NULL,
  content TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS history_user ON history(wa_id, id);
CREATE TABLE IF NOT EXISTS replies(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  wa_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  reply_id INTEGER NOT NULL,
  part INTEGER NOT NULL,
  wa_id TEXT NOT NULL,
  body TEXT NOT NULL,
  context_wamid TEXT NOT NULL,
  state INTEGER NOT NULL,           -- 0 pending, 1 sent, 2 failed
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  sent_ms INTEGER,
  sent_wamid TEXT,
  error_code INTEGER,
  error TEXT,
  delivery TEXT);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(state, wa_id, id);
CREATE INDEX IF NOT EXISTS outbox_wamid ON outbox(sent_wamid);
)sql";

// A prepared statement, finalized on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Status prepared() const {
    return rc_ == SQLITE_OK ? Status::Ok() : Status::Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE, or an error code.
  int Step() { return sqlite3_step(s_); }
  Status Run() {
    int rc = Step();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return Error("step");
    return Status::Ok();
  }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(s_, col);
    return t == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, col));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  Status Error(const char* what) const {
    return Status::IOError(std::string("whatsapp store: sqlite ") + what + ": " + sqlite3_errmsg(db_));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  int rc_ = SQLITE_OK;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close_v2(db_); }

  Status Init(const std::string& synchronous) {
    sqlite3_busy_timeout(db_, 10000);
    FORMIGA_RETURN_IF_ERROR(Exec("PRAGMA journal_mode=WAL"));
    FORMIGA_RETURN_IF_ERROR(Exec(("PRAGMA synchronous=" + synchronous).c_str()));
    FORMIGA_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys=ON"));
    int64_t version = 0;
    {
      Stmt s(db_, "PRAGMA user_version");
      FORMIGA_RETURN_IF_ERROR(s.prepared());
      if (s.Step() == SQLITE_ROW) version = s.Int(0);
    }
    if (version > kSchemaVersion) {
      return Status::Unsupported("whatsapp store: database schema version " + std::to_string(version) +
                                 " is newer than this formiga understands (" + std::to_string(kSchemaVersion) +
                                 "): upgrade formiga or point db_path at another file");
    }
    FORMIGA_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status st = Exec(kSchema);
    if (st.ok()) st = Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    return Exec("COMMIT");
  }

  Result<std::vector<bool>> InsertInbound(const std::vector<StoredInbound>& messages) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<bool> fresh;
    FORMIGA_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Stmt s(db_,
           "INSERT OR IGNORE INTO inbound(wamid, wa_id, type, body, context_id, ts, received_ms, action, state) "
           "VALUES(?,?,?,?,?,?,?,?,0)");
    Status st = s.prepared();
    for (const StoredInbound& m : messages) {
      if (!st.ok()) break;
      s.Reset();
      s.Bind(1, m.wamid).Bind(2, m.wa_id).Bind(3, m.type).Bind(4, m.text).Bind(5, m.context_id);
      s.Bind(6, m.timestamp).Bind(7, m.received_ms).Bind(8, static_cast<int64_t>(m.action));
      st = s.Run();
      fresh.push_back(sqlite3_changes(db_) > 0);
    }
    return Finish(st, std::move(fresh));
  }

  Result<std::vector<PendingUser>> PendingUsers() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT wa_id, MIN(received_ms), MAX(received_ms) FROM inbound WHERE state=0 "
           "GROUP BY wa_id ORDER BY MIN(received_ms)");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    std::vector<PendingUser> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Int(1), s.Int(2)});
    if (rc != SQLITE_DONE) return s.Error("pending users");
    return out;
  }

  Result<std::vector<StoredInbound>> PendingFor(const std::string& wa_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT wamid, wa_id, type, body, context_id, ts, received_ms, action FROM inbound "
           "WHERE state=0 AND wa_id=? ORDER BY received_ms, ts, rowid");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    s.Bind(1, wa_id);
    std::vector<StoredInbound> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      StoredInbound m;
      m.wamid = s.Text(0);
      m.wa_id = s.Text(1);
      m.type = s.Text(2);
      m.text = s.Text(3);
      m.context_id = s.Text(4);
      m.timestamp = s.Int(5);
      m.received_ms = s.Int(6);
      m.action = static_cast<Action>(s.Int(7));
      out.push_back(std::move(m));
    }
    if (rc != SQLITE_DONE) return s.Error("pending messages");
    return out;
  }

  Result<std::vector<Turn>> History(const std::string& wa_id, int64_t max_turns) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "SELECT role, content FROM history WHERE wa_id=? ORDER BY id DESC LIMIT ?");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    s.Bind(1, wa_id).Bind(2, max_turns);
    std::vector<Turn> out;
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) out.push_back({s.Text(0), s.Text(1)});
    if (rc != SQLITE_DONE) return s.Error("history");
    std::reverse(out.begin(), out.end());
    return out;
  }

  Result<int64_t> CommitReply(const ReplyCommit& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    FORMIGA_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    Status st;
    int64_t reply_id = 0;
    {
      Stmt s(db_, "INSERT INTO replies(wa_id, created_ms) VALUES(?,?)");
      st = s.prepared();
      if (st.ok()) st = s.Bind(1, r.wa_id).Bind(2, r.now_ms).Run();
      reply_id = sqlite3_last_insert_rowid(db_);
    }
    if (st.ok()) {
      Stmt s(db_, "UPDATE inbound SET state=1, reply_id=? WHERE wamid=? AND state=0");
      st = s.prepared();
      for (const std::string& w : r.answered) {
        if (!st.ok()) break;
        s.Reset();
        st = s.Bind(1, reply_id).Bind(2, w).Run();
        if (st.ok() && sqlite3_changes(db_) != 1) {
          st = Status::Cancelled("whatsapp store: message " + w + " is no longer pending");
        }
      }
    }
    if (st.ok() && r.reset_history) {
      Stmt s(db_, "DELETE FROM history WHERE wa_id=?");
      st = s.prepared();
      if (st.ok()) st = s.Bind(1, r.wa_id).Run();
    }
    if (st.ok()) {
      Stmt s(db_, "INSERT INTO history(wa_id, role, content, created_ms) VALUES(?,?,?,?)");
      st = s.prepared();
      for (const Turn& t : r.turns) {
        if (!st.ok()) break;
        s.Reset();
        st = s.Bind(1, r.wa_id).Bind(2, t.role).Bind(3, t.content).Bind(4, r.now_ms).Run();
      }
    }
    if (st.ok()) {
      Stmt s(db_,
             "INSERT INTO outbox(reply_id, part, wa_id, body, context_wamid, state, created_ms) "
             "VALUES(?,?,?,?,?,0,?)");
      st = s.prepared();
      for (size_t i = 0; i < r.parts.size(); ++i) {
        if (!st.ok()) break;
        s.Reset();
        s.Bind(1, reply_id).Bind(2, static_cast<int64_t>(i)).Bind(3, r.wa_id).Bind(4, r.parts[i]);
        st = s.Bind(5, i == 0 ? r.context_wamid : std::string()).Bind(6, r.now_ms).Run();
      }
    }
    return Finish(st, reply_id);
  }

  Result<std::optional<OutboxItem>> NextOutbox(int64_t now_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT id, wa_id, body, context_wamid, reply_id, part, attempts, created_ms FROM outbox o "
           "WHERE state=0 AND next_attempt_ms<=? AND NOT EXISTS "
           "(SELECT 1 FROM outbox p WHERE p.state=0 AND p.wa_id=o.wa_id AND p.id<o.id) ORDER BY id LIMIT 1");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    s.Bind(1, now_ms);
    int rc = s.Step();
    if (rc == SQLITE_DONE) return std::optional<OutboxItem>();
    if (rc != SQLITE_ROW) return s.Error("next outbox");
    OutboxItem it;
    it.id = s.Int(0);
    it.wa_id = s.Text(1);
    it.body = s.Text(2);
    it.context_wamid = s.Text(3);
    it.reply_id = s.Int(4);
    it.part = s.Int(5);
    it.attempts = s.Int(6);
    it.created_ms = s.Int(7);
    return std::optional<OutboxItem>(std::move(it));
  }

  Result<std::optional<int64_t>> NextOutboxDue() override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "SELECT MIN(next_attempt_ms) FROM outbox o WHERE state=0 AND NOT EXISTS "
           "(SELECT 1 FROM outbox p WHERE p.state=0 AND p.wa_id=o.wa_id AND p.id<o.id)");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    if (s.Step() != SQLITE_ROW) return s.Error("outbox due");
    if (s.IsNull(0)) return std::optional<int64_t>();
    return std::optional<int64_t>(s.Int(0));
  }

  Status MarkSent(int64_t id, const std::string& sent_wamid, int64_t now_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_, "UPDATE outbox SET state=1, sent_wamid=?, sent_ms=?, attempts=attempts+1 WHERE id=?");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    return s.Bind(1, sent_wamid).Bind(2, now_ms).Bind(3, id).Run();
  }

  Status MarkRetry(int64_t id, int64_t next_attempt_ms, int64_t error_code, const std::string& error) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "UPDATE outbox SET attempts=attempts+1, next_attempt_ms=?, error_code=?, error=? WHERE id=? AND state=0");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    return s.Bind(1, next_attempt_ms).Bind(2, error_code).Bind(3, error).Bind(4, id).Run();
  }

  Status MarkFailed(int64_t id, int64_t error_code, const std::string& error, int64_t now_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    Stmt s(db_,
           "UPDATE outbox SET state=2, attempts=attempts+1, error_code=?, error=?, sent_ms=? WHERE id=? AND state=0");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    return s.Bind(1, error_code).Bind(2, error).Bind(3, now_ms).Bind(4, id).Run();
  }

  Result<bool> UpdateDelivery(const std::string& sent_wamid, const std::string& status, int64_t error_code) override {
    std::lock_guard<std::mutex> lock(mu_);
    // NOTE: statuses can arrive out of order (read before delivered); keep
    // the furthest along, and "failed" over everything.
    Stmt s(db_,
           "UPDATE outbox SET delivery=?1, error_code=CASE WHEN ?2<>0 THEN ?2 ELSE error_code END "
           "WHERE sent_wamid=?3 AND (delivery IS NULL OR ?1='failed' OR "
           "(CASE ?1 WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 0 END) > "
           "(CASE delivery WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 WHEN 'failed' THEN 9 "
           "ELSE 0 END))");
    FORMIGA_RETURN_IF_ERROR(s.prepared());
    FORMIGA_RETURN_IF_ERROR(s.Bind(1, status).Bind(2, error_code).Bind(3, sent_wamid).Run());
    if (sqlite3_changes(db_) > 0) return true;
    Stmt k(db_, "SELECT 1 FROM outbox WHERE sent_wamid=?");
    FORMIGA_RETURN_IF_ERROR(k.prepared());
    k.Bind(1, sent_wamid);
    return k.Step() == SQLITE_ROW;
  }

  Result<StoreCounts> Counts() override {
    std::lock_guard<std::mutex> lock(mu_);
    StoreCounts c;
    Stmt a(db_, "SELECT COUNT(*) FROM inbound WHERE state=0");
    FORMIGA_RETURN_IF_ERROR(a.prepared());
    if (a.Step() == SQLITE_ROW) c.inbound_pending = a.Int(0);
    Stmt b(db_, "SELECT state, COUNT(*) FROM outbox GROUP BY state");
    FORMIGA_RETURN_IF_ERROR(b.prepared());
    while (b.Step() == SQLITE_ROW) {
      if (b.Int(0) == 0) c.outbox_pending = b.Int(1);
      if (b.Int(0) == 1) c.outbox_sent = b.Int(1);
      if (b.Int(0) == 2) c.outbox_failed = b.Int(1);
    }
    return c;
  }

 private:
  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err != nullptr ? err : sqlite3_errmsg(db_);
      sqlite3_free(err);
      return Status::IOError("whatsapp store: sqlite: " + msg + " (in: " + std::string(sql).substr(0, 60) + ")");
    }
    return Status::Ok();
  }

  // Commits when `st` is OK, rolls back otherwise.
  template <class T>
  Result<T> Finish(const Status& st, T value) {
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    Status c = Exec("COMMIT");
    if (!c.ok()) {
      (void)Exec("ROLLBACK");
      return c;
    }
    return value;
  }

  std::mutex mu_;
  sqlite3* db_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const std::string& synchronous) {
  if (synchronous != "FULL" && synchronous != "NORMAL") {
    return Status::InvalidArgument("whatsapp store: synchronous must be FULL or NORMAL");
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return Status::IOError("whatsapp store: cannot open " + path + ": " + msg +
                           ": check that its folder exists and is writable (db_path / FORMIGA_WHATSAPP_DB)");
  }
  auto store = std::make_unique<SqliteStore>(db);
  Status st = store->Init(synchronous);
  if (!st.ok()) return st.WithContext(path);
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace formiga::whatsapp
