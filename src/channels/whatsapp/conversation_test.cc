// History trimming: the newest turns that fit the token budget, whole
// user/assistant pairs, system prompt always first.
#include "channels/whatsapp/conversation.h"

#include <gtest/gtest.h>

namespace formiga::whatsapp {
namespace {

// One "token" per character of content.
class CharCounter : public ReplyGenerator {
 public:
  Result<std::string> Generate(const nlohmann::json&, const GenerateOptions&) override { return std::string(); }
  Result<int64_t> CountTokens(const nlohmann::json& messages) override {
    calls++;
    int64_t n = 0;
    for (const auto& m : messages) n += static_cast<int64_t>(m["content"].get<std::string>().size());
    return n;
  }
  int64_t ContextTokens() const override { return 1000; }
  void CancelAll() override {}
  int calls = 0;
};

std::vector<Turn> History(int pairs) {
  std::vector<Turn> h;
  for (int i = 0; i < pairs; ++i) {
    h.push_back({"user", "q" + std::to_string(i) + std::string(8, 'u')});      // 10 chars (i < 10)
    h.push_back({"assistant", "a" + std::to_string(i) + std::string(8, 'a')});
  }
  return h;
}

TEST(Conversation, KeepsEverythingThatFits) {
  CharCounter g;
  auto m = BuildMessages("sys", History(3), "nova", 1000, g);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), 8u);
  EXPECT_EQ((*m)[0]["role"], "system");
  EXPECT_EQ((*m)[7]["content"], "nova");
  EXPECT_EQ(g.calls, 1);
}

TEST(Conversation, DropsTheOldestPairsFirst) {
  CharCounter g;
  // sys (3) + new (4) = 7; each pair is 20: a budget of 50 keeps 2 pairs.
  auto m = BuildMessages("sys", History(9), "nova", 50, g);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), 6u);
  EXPECT_EQ((*m)[1]["role"], "user");
  EXPECT_EQ((*m)[1]["content"], "q7uuuuuuuu");
  EXPECT_EQ((*m)[4]["content"], "a8aaaaaaaa");
  EXPECT_LE(g.calls, 6);  // binary search, not one render per turn
  // A budget that cuts a pair in the middle keeps the history starting at a user turn.
  m = BuildMessages("sys", History(9), "nova", 40, g);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[1]["role"], "user");
  EXPECT_EQ((*m)[1]["content"], "q8uuuuuuuu");
}

TEST(Conversation, TooLongAloneIsAnError) {
  CharCounter g;
  auto m = BuildMessages("sys", History(2), std::string(100, 'x'), 50, g);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("history_tokens"), std::string::npos);
}

}  // namespace
}  // namespace formiga::whatsapp
