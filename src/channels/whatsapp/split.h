// Splitting long replies into WhatsApp text messages (text.body is limited
// to 4,096 characters). Cuts prefer, in order: a paragraph break, a line
// break, the end of a sentence, a space; never inside a UTF-8 sequence.
//
// Thread safety: pure function.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace formiga::whatsapp {

inline constexpr size_t kMaxTextChars = 4096;

// Counts code points (what Meta's limit counts); invalid bytes count as one.
size_t Utf8Length(std::string_view s);
// Parts of at most `max_chars` code points each, trimmed of the whitespace
// at the cut; concatenated with the separators removed they give `text`.
std::vector<std::string> SplitReply(std::string_view text, size_t max_chars = kMaxTextChars);

}  // namespace formiga::whatsapp
