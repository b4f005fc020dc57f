#include "channels/whatsapp/split.h"

namespace formiga::whatsapp {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Byte offset just past the first `n` code points of `s` (or s.size()).
size_t PrefixBytes(std::string_view s, size_t n) {
  size_t i = 0;
  size_t count = 0;
  while (i < s.size() && count < n) {
    ++i;
    while (i < s.size() && IsContinuation(static_cast<unsigned char>(s[i]))) ++i;
    ++count;
  }
  return i;
}

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string_view TrimView(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Best cut in window (a code-point-aligned prefix): the byte offset where
// the next part starts. Prefers later cuts of a stronger kind, but never one
// in the first third (tiny parts help nobody).
size_t FindCut(std::string_view window) {
  const size_t min = window.size() / 3;
  auto last = [&](std::string_view needle) -> size_t {
    size_t p = window.rfind(needle);
    return (p == std::string_view::npos || p < min) ? 0 : p + needle.size();
  };
  if (size_t p = last("\n\n")) return p;
  if (size_t p = last("\n")) return p;
  size_t best = 0;
  for (std::string_view end : {". ", "! ", "? ", "。", ".\t", "… "}) {
    size_t p = last(end);
    if (p > best) best = p;
  }
  if (best) return best;
  if (size_t p = last(" ")) return p;
  return window.size();  // one long word: cut at the code point boundary
}

}  // namespace

size_t Utf8Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += IsContinuation(c) ? 0 : 1;
  return n;
}

std::vector<std::string> SplitReply(std::string_view text, size_t max_chars) {
  std::vector<std::string> parts;
  if (max_chars == 0) max_chars = 1;
  std::string_view rest = TrimView(text);
  while (!rest.empty()) {
    const size_t window = PrefixBytes(rest, max_chars);
    if (window == rest.size()) {
      parts.emplace_back(rest);
      break;
    }
    size_t cut = FindCut(rest.substr(0, window));
    std::string_view part = TrimView(rest.substr(0, cut));
    if (!part.empty()) parts.emplace_back(part);
    rest = TrimView(rest.substr(cut));
  }
  return parts;
}

}  // namespace formiga::whatsapp
