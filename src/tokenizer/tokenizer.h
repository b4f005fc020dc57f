// Tokenizer: text -> token ids exactly as the models' authors do, and back.
//
// Two algorithms behind one class:
//   - byte-level BPE (GPT-2 family: SmolLM, Llama-3, Qwen2): text is split by
//     the family's pre-tokenizer regexes, each piece's bytes are mapped to
//     printable code points and merged by merge rank;
//   - SentencePiece-style (Llama-1/2, Gemma): spaces become U+2581 "▁", UTF-8
//     characters are merged by score (or merge rank), characters missing from
//     the vocabulary fall back to <0xAB> byte tokens.
// Special tokens (control tokens such as <|im_start|>) are matched in the
// text only when the caller asks (parse_special); user-defined tokens (Gemma's
// whitespace runs, HTML tags) are always matched, as llama.cpp and HF do.
//
// A Tokenizer is built once from a TokenizerSpec, a neutral description that
// the front-ends fill: FromGguf (tokenizer.ggml.* metadata) and FromHfJson
// (a Hugging Face tokenizer.json).
//
// Thread safety: immutable after construction; all const methods may be called
// concurrently. StreamingDecoder is a small per-stream object (not shared).
// Ownership: a Tokenizer owns its tables; a StreamingDecoder borrows its
// Tokenizer, which must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

#include <nlohmann/json_fwd.hpp>

namespace formiga {

class GgufFile;

// Token types as stored in tokenizer.ggml.token_type (explicit values: on disk).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // special: <bos>, <|im_start|>; matched only with parse_special
  kUserDefined = 4,  // always matched as a whole in the text
  kUnused = 5,
  kByte = 6,         // <0xAB> byte-fallback tokens
};

enum class TokenizerAlgorithm { kBpe, kSpm };

// Neutral description of a vocabulary; the front-ends produce it.
struct TokenizerSpec {
  TokenizerAlgorithm algorithm = TokenizerAlgorithm::kBpe;
  std::vector<std::string> tokens;  // id -> text as stored (byte-level / ▁ form)
  std::vector<float> scores;        // SPM: merge priority of each token (higher first); may be empty
  std::vector<TokenType> types;     // empty: all normal
  // BPE merges in rank order, (left, right). SPM may also carry merges (HF
  // tokenizer.json); then they rank merges instead of the scores.
  std::vector<std::pair<std::string, std::string>> merges;

  // BPE: pre-tokenizer regexes applied in sequence (each splits the pieces of
  // the previous one, keeping matches and gaps). Use PreTokenizerRegexes().
  std::vector<std::string> pre_regexes;
  bool ignore_merges = false;  // BPE: a piece that is a whole token skips merging (Llama-3)

  bool add_space_prefix = false;  // SPM: prepend "▁" to the text (Llama-2); not Gemma
  bool byte_fallback = true;      // SPM: unknown characters become <0xAB> tokens

  int32_t bos_id = -1, eos_id = -1, eot_id = -1, eom_id = -1, pad_id = -1, unk_id = -1;
  bool add_bos = false;
  bool add_eos = false;
};

// The spec a parsed Hugging Face tokenizer.json describes (what
// Tokenizer::FromHfJson builds from), for converters that write it in another
// format (`formiga convert` -> tokenizer.ggml.* keys). Not validated: pass it
// to Tokenizer::Create for that.
Result<TokenizerSpec> TokenizerSpecFromHfJson(const nlohmann::json& json);

// The regex sequence for a tokenizer.ggml.pre value ("gpt2", "llama-bpe",
// "smollm", "qwen2", ...). Unsupported (naming the value) when unknown.
Result<std::vector<std::string>> PreTokenizerRegexes(std::string_view pre);

class Tokenizer {
 public:
  // Validates `spec` (ids in range, merges name tokens, regexes compile).
  static Result<std::unique_ptr<Tokenizer>> Create(TokenizerSpec spec);
  // From the tokenizer.ggml.* metadata of a GGUF file.
  static Result<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& gguf);
  // From a parsed Hugging Face tokenizer.json (model.type BPE; byte-level or
  // SentencePiece-style with byte_fallback). Unsupported for anything else.
  static Result<std::unique_ptr<Tokenizer>> FromHfJson(const nlohmann::json& json);
  // Reads and parses `path` (a tokenizer.json) then FromHfJson.
  static Result<std::unique_ptr<Tokenizer>> FromHfJsonFile(const std::string& path);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Text -> ids. add_special: BOS/EOS per the model's add_bos/add_eos.
  // parse_special: control-token strings in the text become their token;
  // otherwise they are tokenized as plain text. Any bytes are accepted:
  // invalid UTF-8 bytes become byte tokens (BPE: their byte-level symbol;
  // SPM: <0xAB> byte fallback, or unk when the vocabulary has none).
  Result<std::vector<int32_t>> Encode(std::string_view text, bool add_special,
                                      bool parse_special) const;

  // Raw bytes a token stands for ("▁" -> " ", <0x0A> -> "\n", byte-level
  // symbols -> bytes); control tokens give their text. Empty for bad ids.
  std::string TokenToPiece(int32_t id) const;
  // Concatenated pieces; skip_special drops control tokens. Invalid UTF-8 in
  // the result is left as is (callers that need valid text use
  // StreamingDecoder). SPM with add_space_prefix strips the leading space of
  // the first token, as llama.cpp/HF do.
  std::string Decode(std::span<const int32_t> ids, bool skip_special) const;

  int64_t vocab_size() const;
  TokenizerAlgorithm algorithm() const;
  std::string_view TokenText(int32_t id) const;  // REQUIRES: 0 <= id < vocab_size()
  TokenType GetTokenType(int32_t id) const;       // kUndefined for bad ids
  std::optional<int32_t> FindToken(std::string_view text) const;
  bool IsControl(int32_t id) const;

  int32_t bos_id() const;
  int32_t eos_id() const;
  int32_t eot_id() const;
  int32_t pad_id() const;
  bool add_bos() const;
  bool add_eos() const;
  bool add_space_prefix() const;
  // EOS, EOT, EOM and the control tokens that end a turn (<|im_end|>,
  // <end_of_turn>, <|eot_id|>, <|endoftext|>, ...).
  bool IsEndOfGeneration(int32_t id) const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of ids into text pieces that are always complete UTF-8.
// Bytes of an unfinished character are held back until the next token
// completes them; Flush() returns the leftovers (invalid ones as U+FFFD).
// Invalid sequences in the middle of the stream become U+FFFD as soon as they
// are known to be invalid. Concatenating every Push() and the final Flush()
// gives Decode() of all the ids (with invalid UTF-8 replaced).
class StreamingDecoder {
 public:
  // `tokenizer` must outlive the decoder.
  StreamingDecoder(const Tokenizer& tokenizer, bool skip_special);

  // Text made complete by `id` (often empty for partial characters).
  std::string Push(int32_t id);
  std::string Flush();
  // Forget everything (a new stream; the first token is first again).
  void Reset();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  bool first_ = true;
  std::string pending_;  // bytes of an incomplete UTF-8 character
};

// UTF-8 helpers shared by the tokenizer pieces and tests.
// Length of the UTF-8 sequence starting at s[i] if it is valid, else 0.
size_t ValidUtf8SequenceLength(std::string_view s, size_t i);
// Replaces every invalid sequence with U+FFFD.
std::string SanitizeUtf8(std::string_view s);

}  // namespace formiga
