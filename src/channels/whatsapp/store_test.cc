// SQLite store: de-duplication, atomic replies, outbox order and state, and
// that everything survives closing and reopening the file.
#include "channels/whatsapp/store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace formiga::whatsapp {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("formiga_wa_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "wa.db").string();
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    auto s = OpenSqliteStore(path_, "NORMAL");
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  static StoredInbound Msg(const std::string& wamid, const std::string& user, int64_t ms, const std::string& text) {
    StoredInbound m;
    m.wamid = wamid;
    m.wa_id = user;
    m.type = "text";
    m.text = text;
    m.received_ms = ms;
    return m;
  }

  std::filesystem::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, RedeliveriesAreRecognizedAcrossRestarts) {
  auto r = store_->InsertInbound({Msg("w1", "u1", 10, "oi"), Msg("w2", "u1", 11, "tudo bem?"), Msg("w1", "u1", 12, "oi")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<bool>{true, true, false}));
  Open();
  r = store_->InsertInbound({Msg("w2", "u1", 20, "tudo bem?"), Msg("w3", "u2", 21, "olá")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (std::vector<bool>{false, true}));
  auto users = store_->PendingUsers();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].wa_id, "u1");
  EXPECT_EQ((*users)[0].newest_ms, 11);
  auto pending = store_->PendingFor("u1");
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 2u);
  EXPECT_EQ((*pending)[1].text, "tudo bem?");
}

TEST_F(StoreTest, CommitReplyIsAtomicAndOutboxKeepsPerUserOrder) {
  ASSERT_TRUE(store_->InsertInbound({Msg("w1", "u1", 1, "a"), Msg("w2", "u1", 2, "b"), Msg("w3", "u2", 3, "c")}).ok());
  ReplyCommit c;
  c.wa_id = "u1";
  c.answered = {"w1", "w2"};
  c.turns = {{"user", "a\nb"}, {"assistant", "resposta"}};
  c.parts = {"parte 1", "parte 2"};
  c.context_wamid = "w2";
  c.now_ms = 5;
  auto id = store_->CommitReply(c);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  // Answering again fails and changes nothing.
  EXPECT_FALSE(store_->CommitReply(c).ok());
  auto counts = store_->Counts();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->inbound_pending, 1);
  EXPECT_EQ(counts->outbox_pending, 2);
  auto h = store_->History("u1", 10);
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[1].content, "resposta");

  auto first = store_->NextOutbox(100);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->body, "parte 1");
  EXPECT_EQ((*first)->context_wamid, "w2");
  // The first part waits for a retry: the second must not overtake it.
  ASSERT_TRUE(store_->MarkRetry((*first)->id, 1000, 130429, "rate").ok());
  auto none = store_->NextOutbox(100);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto due = store_->NextOutboxDue();
  ASSERT_TRUE(due.ok() && due->has_value());
  EXPECT_EQ(**due, 1000);
  Open();  // survives a restart
  auto again = store_->NextOutbox(1000);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ((*again)->attempts, 1);
  ASSERT_TRUE(store_->MarkSent((*again)->id, "wamid.out.1", 1001).ok());
  auto second = store_->NextOutbox(1001);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->body, "parte 2");
  EXPECT_EQ((*second)->context_wamid, "");
  ASSERT_TRUE(store_->MarkFailed((*second)->id, 131047, "window", 1002).ok());

  auto known = store_->UpdateDelivery("wamid.out.1", "read", 0);
  ASSERT_TRUE(known.ok());
  EXPECT_TRUE(*known);
  ASSERT_TRUE(store_->UpdateDelivery("wamid.out.1", "delivered", 0).ok());  // late, ignored
  auto unknown = store_->UpdateDelivery("wamid.nope", "read", 0);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(*unknown);
  counts = store_->Counts();
  EXPECT_EQ(counts->outbox_pending, 0);
  EXPECT_EQ(counts->outbox_sent, 1);
  EXPECT_EQ(counts->outbox_failed, 1);

  // /reset forgets the history in the same transaction as its reply.
  ReplyCommit r;
  r.wa_id = "u1";
  r.reset_history = true;
  r.parts = {"ok"};
  ASSERT_TRUE(store_->InsertInbound({Msg("w4", "u1", 6, "/reset")}).ok());
  r.answered = {"w4"};
  ASSERT_TRUE(store_->CommitReply(r).ok());
  EXPECT_TRUE(store_->History("u1", 10)->empty());
}

TEST_F(StoreTest, RefusesAFolderThatDoesNotExist) {
  auto s = OpenSqliteStore((dir_ / "missing" / "x.db").string());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("writable"), std::string::npos);
}

}  // namespace
}  // namespace formiga::whatsapp
