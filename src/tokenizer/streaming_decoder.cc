// StreamingDecoder and the UTF-8 helpers it relies on.
#include "tokenizer/tokenizer.h"

namespace formiga {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Allowed range of the second byte after lead byte `b0` (RFC 3629 table),
// and the sequence length; 0 for bytes that cannot start a sequence.
size_t LeadInfo(uint8_t b0, uint8_t* lo, uint8_t* hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (b0 < 0x80) return 1;
  if (b0 >= 0xC2 && b0 <= 0xDF) return 2;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (b0 == 0xE0) *lo = 0xA0;
    if (b0 == 0xED) *hi = 0x9F;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (b0 == 0xF0) *lo = 0x90;
    if (b0 == 0xF4) *hi = 0x8F;
    return 4;
  }
  return 0;
}

// True when s[i..] is a proper prefix of some valid sequence (needs more bytes).
bool IsIncompletePrefix(std::string_view s, size_t i) {
  uint8_t lo, hi;
  size_t need = LeadInfo(static_cast<uint8_t>(s[i]), &lo, &hi);
  size_t have = s.size() - i;
  if (need <= 1 || have >= need) return false;
  for (size_t k = 1; k < have; ++k) {
    uint8_t b = static_cast<uint8_t>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
  }
  return true;
}

}  // namespace

size_t ValidUtf8SequenceLength(std::string_view s, size_t i) {
  if (i >= s.size()) return 0;
  uint8_t lo, hi;
  size_t need = LeadInfo(static_cast<uint8_t>(s[i]), &lo, &hi);
  if (need == 0 || s.size() - i < need) return 0;
  for (size_t k = 1; k < need; ++k) {
    uint8_t b = static_cast<uint8_t>(s[i + k]);
    if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
  }
  return need;
}

std::string SanitizeUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = ValidUtf8SequenceLength(s, i);
    if (n == 0) {
      out += kReplacement;  // one U+FFFD per invalid byte
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special)
    : tokenizer_(tokenizer), skip_special_(skip_special) {}

std::string StreamingDecoder::Push(int32_t id) {
  if (skip_special_ && tokenizer_.IsControl(id)) return {};
  std::string piece = tokenizer_.TokenToPiece(id);
  // NOTE: the SPM dummy-prefix space belongs to the first token of the whole
  // stream only (Decode() does the same); a continuation keeps its spaces.
  if (first_ && tokenizer_.add_space_prefix() && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
  first_ = false;
  pending_ += piece;
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    size_t n = ValidUtf8SequenceLength(pending_, i);
    if (n > 0) {
      out.append(pending_, i, n);
      i += n;
    } else if (IsIncompletePrefix(pending_, i)) {
      break;  // wait for the next token to finish this character
    } else {
      out += kReplacement;
      ++i;
    }
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamingDecoder::Flush() {
  std::string out = SanitizeUtf8(pending_);
  pending_.clear();
  return out;
}

void StreamingDecoder::Reset() {
  pending_.clear();
  first_ = true;
}

}  // namespace formiga
