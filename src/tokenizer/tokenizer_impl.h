// Internal state of a Tokenizer, shared by tokenizer*.cc (not a public API).
//
// Thread safety: immutable after Tokenizer::Create(); per-call scratch (PCRE2
// match data, merge queues) lives on the caller's stack.
// Ownership: Impl owns the spec (token strings) and every table that points
// into it (string_view keys), and the compiled regexes.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace formiga {
namespace tokenizer_internal {

struct Pcre2CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using Pcre2Code = std::unique_ptr<pcre2_code, Pcre2CodeDeleter>;

// Trie over the texts of tokens matched as a whole in the input (control and
// user-defined tokens). Children are kept sorted by byte.
class SpecialTrie {
 public:
  void Insert(std::string_view text, int32_t id, bool control);
  // Longest token starting at text[pos] (controls only when allow_control);
  // returns its length (0 if none) and sets *id.
  size_t LongestMatch(std::string_view text, size_t pos, bool allow_control, int32_t* id) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // byte -> node index
    int32_t token = -1;
    bool control = false;
  };
  std::vector<Node> nodes_ = std::vector<Node>(1);
};

// The token texts back to back in one buffer, and an open-addressing hash
// from text to id (a 4-byte slot per 2 tokens or less). A 262k vocabulary
// costs its characters plus ~12 bytes a token; a std::string per token and an
// unordered_map keyed by them cost ~80.
class Vocab {
 public:
  // Fails if the texts exceed 4 GiB in total.
  Status Build(const std::vector<std::string>& tokens);
  size_t size() const { return ends_.size(); }
  std::string_view Text(size_t id) const {
    const size_t begin = id == 0 ? 0 : ends_[id - 1];
    return std::string_view(chars_).substr(begin, ends_[id] - begin);
  }
  // The id of `text` (the first one if several tokens have it), or -1.
  int32_t Find(std::string_view text) const;

 private:
  std::string chars_;
  std::vector<uint32_t> ends_;
  std::vector<int32_t> slots_;  // token ids, -1 = empty; size a power of two
};

// The bytes<->unicode map of GPT-2 byte-level BPE: printable bytes map to
// themselves, the others to U+0100 upwards, so every byte is one visible
// code point. Returns the UTF-8 of the code point for byte b.
const std::array<std::string, 256>& ByteToUnicode();
// Inverse: code point -> byte, or -1.
int UnicodeToByte(uint32_t cp);

// SPM normalization: every " " becomes U+2581 "▁".
std::string EscapeSpaces(std::string_view text);

// Decodes one UTF-8 code point at s[i]; sets *len (1 for invalid bytes, and
// returns 0xFFFFFFFF then).
uint32_t DecodeUtf8(std::string_view s, size_t i, size_t* len);

}  // namespace tokenizer_internal

struct Tokenizer::Impl {
  // NOTE: Create() moves the token texts into `vocab` and their types into
  // `types`, and drops the merge strings once the merge table is built:
  // spec.tokens, spec.types and spec.merges are empty afterwards.
  TokenizerSpec spec;
  tokenizer_internal::Vocab vocab;
  std::vector<uint8_t> types;  // id -> TokenType (spec.types is dropped too)
  TokenType Type(int32_t id) const { return static_cast<TokenType>(types[static_cast<size_t>(id)]); }

  // BPE merges (and SPM merges from tokenizer.json): (left id, right id) ->
  // (rank, merged id).
  struct Merge {
    int32_t rank;
    int32_t merged;
  };
  std::unordered_map<uint64_t, Merge> merges;
  bool spm_uses_merges = false;  // SPM ranked by merges instead of scores

  std::vector<tokenizer_internal::Pcre2Code> regexes;
  std::array<int32_t, 256> byte_symbol_id{};    // BPE: byte -> id of its byte-level symbol (-1)
  std::array<int32_t, 256> byte_fallback_id{};  // SPM: byte -> id of <0xAB> (-1)

  tokenizer_internal::SpecialTrie special;
  std::vector<uint8_t> eog;  // id -> 1 if end of generation

  // Pieces of one text fragment (no special tokens inside) -> ids appended.
  void EncodeBpe(std::string_view text, std::vector<int32_t>* out) const;
  // SPM: `text` must already have its spaces replaced by "▁".
  void EncodeSpm(std::string_view text, bool add_prefix, std::vector<int32_t>* out) const;
  // Pre-tokenizer: splits text into pieces (offset, length).
  void PreTokenize(std::string_view text, std::vector<std::pair<size_t, size_t>>* pieces) const;
  void BpeWord(std::string_view word, std::vector<int32_t>* out) const;

  int32_t Lookup(std::string_view text) const { return vocab.Find(text); }
  int32_t MergedId(int32_t left, int32_t right, int32_t* rank) const {
    auto it = merges.find((static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
                          static_cast<uint32_t>(right));
    if (it == merges.end()) return -1;
    *rank = it->second.rank;
    return it->second.merged;
  }
};

}  // namespace formiga
