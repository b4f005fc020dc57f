// Splitting long replies: at most 4,096 code points per part, never inside a
// UTF-8 sequence, at paragraph/sentence boundaries when there are some.
#include "channels/whatsapp/split.h"

#include <gtest/gtest.h>

namespace formiga::whatsapp {
namespace {

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0) return false;
    for (int k = 1; k <= n; ++k) {
      if (i + k >= s.size() || (static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n + 1;
  }
  return true;
}

std::string WithoutSpaces(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c != ' ' && c != '\n') o += c;
  }
  return o;
}

TEST(Split, ShortTextIsOnePart) {
  EXPECT_EQ(SplitReply("  Olá, tudo bem?  "), std::vector<std::string>{"Olá, tudo bem?"});
  EXPECT_TRUE(SplitReply("   ").empty());
}

TEST(Split, TenThousandMultibyteCharactersOnSentenceBoundaries) {
  // Sentences of Portuguese with accents, emoji (4 bytes) and CJK (3 bytes).
  const std::string sentence = "Ação não é opção — coração 😀 日本語です. ";
  std::string text;
  while (Utf8Length(text) < 10000) text += sentence;
  ASSERT_GE(Utf8Length(text), 10000u);
  std::vector<std::string> parts = SplitReply(text);
  ASSERT_GE(parts.size(), 3u);
  std::string joined;
  for (const std::string& p : parts) {
    EXPECT_LE(Utf8Length(p), kMaxTextChars);
    EXPECT_TRUE(ValidUtf8(p));
    EXPECT_EQ(p.back(), '.') << "cut inside a sentence: ..." << p.substr(p.size() - 20);
    joined += p;
  }
  EXPECT_EQ(WithoutSpaces(joined), WithoutSpaces(text));
}

TEST(Split, PrefersParagraphsThenNeverCutsInsideACharacter) {
  std::string para(3000, 'a');
  std::string text = para + "\n\n" + para + "\n\n" + para;
  std::vector<std::string> parts = SplitReply(text);
  ASSERT_EQ(parts.size(), 3u);
  for (const std::string& p : parts) EXPECT_EQ(p, para);

  // One 9,000-character "word" of 2-byte characters: hard cuts, still valid UTF-8.
  std::string word;
  for (int i = 0; i < 9000; ++i) word += "é";
  parts = SplitReply(word);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(Utf8Length(parts[0]), kMaxTextChars);
  size_t total = 0;
  for (const std::string& p : parts) {
    EXPECT_TRUE(ValidUtf8(p));
    total += Utf8Length(p);
  }
  EXPECT_EQ(total, 9000u);
}

}  // namespace
}  // namespace formiga::whatsapp
