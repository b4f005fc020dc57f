// Tokenizer: construction from a TokenizerSpec, special-token splitting,
// Encode/Decode and the accessors. The merge algorithms are in
// tokenizer_merge.cc, the front-ends in tokenizer_gguf.cc / tokenizer_hf.cc.
#include <algorithm>
#include <cstdio>

#include "tokenizer/tokenizer_impl.h"

namespace formiga {

using tokenizer_internal::SpecialTrie;

namespace {

// GPT-2's split: contractions, letters, numbers, other symbols, whitespace.
// NOTE: the trailing "|\s+" is HF's form; llama.cpp omits it but keeps the
// unmatched gaps as pieces, which gives the same pieces.
constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Llama-3 (llama-bpe): case-insensitive contractions, numbers in runs of <= 3.
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: like Llama-3 but single digits.
constexpr const char* kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// SmolLM / StarCoder: every digit alone first, then GPT-2.
constexpr const char* kDigitRegex = R"(\p{N})";

const char* const kEndOfTurnTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|eom_id|>", "<EOT>", "<|end_of_text|>", "<|return|>", "<|call|>",
};

std::string IdContext(int32_t id) { return "token id " + std::to_string(id); }

}  // namespace

std::string tokenizer_internal::EscapeSpaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (char ch : text) {
    if (ch == ' ') {
      out += "\xE2\x96\x81";
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

Result<std::vector<std::string>> PreTokenizerRegexes(std::string_view pre) {
  if (pre == "default" || pre == "gpt2" || pre == "gpt-2") return std::vector<std::string>{kGpt2Regex};
  if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
    return std::vector<std::string>{kLlama3Regex};
  }
  if (pre == "qwen2") return std::vector<std::string>{kQwen2Regex};
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") {
    return std::vector<std::string>{kDigitRegex, kGpt2Regex};
  }
  return Status::Unsupported("tokenizer pre-tokenizer '" + std::string(pre) +
                             "' is not supported (supported: default, gpt2, llama-bpe, smollm, "
                             "starcoder, refact, qwen2); convert the model with one of these or "
                             "add its regexes to src/tokenizer/tokenizer.cc");
}

// ---------------------------------------------------------------------------
// SpecialTrie

void SpecialTrie::Insert(std::string_view text, int32_t id, bool control) {
  int32_t node = 0;
  for (unsigned char b : text) {
    auto& ch = nodes_[node].children;
    auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t{-1}));
    if (it != ch.end() && it->first == b) {
      node = it->second;
    } else {
      int32_t fresh = static_cast<int32_t>(nodes_.size());
      ch.insert(it, {b, fresh});
      nodes_.emplace_back();
      node = fresh;
    }
  }
  if (nodes_[node].token < 0) {  // first id wins for duplicate texts
    nodes_[node].token = id;
    nodes_[node].control = control;
  }
}

size_t SpecialTrie::LongestMatch(std::string_view text, size_t pos, bool allow_control,
                                 int32_t* id) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto& ch = nodes_[node].children;
    unsigned char b = static_cast<unsigned char>(text[i]);
    auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(b, int32_t{-1}));
    if (it == ch.end() || it->first != b) break;
    node = it->second;
    const Node& n = nodes_[node];
    if (n.token >= 0 && (allow_control || !n.control)) {
      best = i + 1 - pos;
      *id = n.token;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// Construction

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::Create(TokenizerSpec spec) {
  auto impl = std::make_unique<Impl>();
  const size_t n = spec.tokens.size();
  if (n == 0) return Status::InvalidArgument("tokenizer: the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) return Status::OutOfRange("tokenizer: vocabulary too large");
  if (!spec.scores.empty() && spec.scores.size() != n) {
    return Status::Corruption("tokenizer: " + std::to_string(spec.scores.size()) + " scores for " +
                              std::to_string(n) + " tokens");
  }
  if (spec.types.empty()) spec.types.assign(n, TokenType::kNormal);
  if (spec.types.size() != n) {
    return Status::Corruption("tokenizer: " + std::to_string(spec.types.size()) +
                              " token types for " + std::to_string(n) + " tokens");
  }
  for (int32_t* id : {&spec.bos_id, &spec.eos_id, &spec.eot_id, &spec.eom_id, &spec.pad_id, &spec.unk_id}) {
    if (*id >= static_cast<int64_t>(n)) {
      return Status::Corruption("tokenizer: special " + IdContext(*id) + " is outside the vocabulary of " +
                                std::to_string(n) + " tokens");
    }
    if (*id < 0) *id = -1;
  }
  impl->spec = std::move(spec);
  Impl& m = *impl;
  const TokenizerSpec& s = m.spec;

  FORMIGA_RETURN_IF_ERROR(m.vocab.Build(s.tokens));

  // Merges "left right" -> (rank, merged id).
  m.merges.reserve(s.merges.size() * 2);
  for (size_t r = 0; r < s.merges.size(); ++r) {
    const std::string& left = s.merges[r].first;
    const std::string& right = s.merges[r].second;
    int32_t l = m.Lookup(left), rr = m.Lookup(right);
    std::string joined = std::string(left) + std::string(right);
    int32_t merged = m.Lookup(joined);
    if (l < 0 || rr < 0 || merged < 0) continue;  // HF ignores merges outside the vocabulary too
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(rr);
    m.merges.emplace(key, Impl::Merge{static_cast<int32_t>(r), merged});  // first (best) rank wins
  }
  m.spm_uses_merges = s.algorithm == TokenizerAlgorithm::kSpm && !m.merges.empty();

  m.byte_symbol_id.fill(-1);
  m.byte_fallback_id.fill(-1);
  if (s.algorithm == TokenizerAlgorithm::kBpe) {
    const auto& table = tokenizer_internal::ByteToUnicode();
    for (int b = 0; b < 256; ++b) m.byte_symbol_id[b] = m.Lookup(table[b]);
    for (const std::string& re : s.pre_regexes) {
      int err = 0;
      PCRE2_SIZE err_off = 0;
      pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re.data()), re.size(),
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err,
                                       &err_off, nullptr);
      if (code == nullptr) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof(buf));
        return Status::InvalidArgument("tokenizer: pre-tokenizer regex '" + re + "' does not compile at offset " +
                                       std::to_string(err_off) + ": " + reinterpret_cast<char*>(buf));
      }
      // JIT when available; the interpreter is the fallback (same results).
      (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
      m.regexes.emplace_back(code);
    }
  } else {
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      m.byte_fallback_id[b] = m.Lookup(name);
    }
  }

  for (size_t i = 0; i < n; ++i) {
    TokenType t = s.types[i];
    const std::string_view token = m.vocab.Text(i);
    if (token.empty()) continue;
    if (t == TokenType::kControl || t == TokenType::kUnknown) {
      m.special.Insert(s.algorithm == TokenizerAlgorithm::kSpm ? tokenizer_internal::EscapeSpaces(token)
                                                               : std::string(token),
                       static_cast<int32_t>(i), /*control=*/true);
    } else if (t == TokenType::kUserDefined) {
      // NOTE: SentencePiece matches user-defined pieces in the normalized
      // text (spaces already "▁"); llama.cpp's converter stores Gemma's with
      // real spaces, so put the "▁" back. Encode() normalizes the same way.
      std::string text = s.algorithm == TokenizerAlgorithm::kSpm
                             ? tokenizer_internal::EscapeSpaces(token)
                             : std::string(token);
      m.special.Insert(text, static_cast<int32_t>(i), /*control=*/false);
    }
  }

  m.eog.assign(n, 0);
  for (int32_t id : {s.eos_id, s.eot_id, s.eom_id}) {
    if (id >= 0) m.eog[id] = 1;
  }
  for (const char* text : kEndOfTurnTexts) {
    int32_t id = m.Lookup(text);
    if (id >= 0 && (s.types[id] == TokenType::kControl || s.types[id] == TokenType::kUserDefined)) {
      m.eog[id] = 1;
    }
  }
  // The texts live in m.vocab now, the types in m.types, the merges in m.merges.
  m.types.resize(n);
  for (size_t i = 0; i < n; ++i) m.types[i] = static_cast<uint8_t>(s.types[i]);
  std::vector<std::string>().swap(m.spec.tokens);
  std::vector<TokenType>().swap(m.spec.types);
  std::vector<std::pair<std::string, std::string>>().swap(m.spec.merges);
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl)));
}

// ---------------------------------------------------------------------------
// Encode / decode

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text, bool add_special,
                                               bool parse_special) const {
  const Impl& m = *impl_;
  const TokenizerSpec& s = m.spec;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special && s.add_bos && s.bos_id >= 0) out.push_back(s.bos_id);

  // NOTE: like llama.cpp, SPM's dummy prefix goes before the first text
  // fragment and before text that follows a special token.
  bool prev_special = true;
  auto encode_text = [&](std::string_view frag) {
    if (frag.empty()) return;
    if (s.algorithm == TokenizerAlgorithm::kBpe) {
      m.EncodeBpe(frag, &out);
    } else {
      m.EncodeSpm(frag, s.add_space_prefix && prev_special, &out);
    }
    prev_special = false;
  };
  // NOTE: SPM normalizes the whole text before matching user-defined pieces,
  // as SentencePiece does: a "▁" typed in the input equals a space there.
  std::string normalized;
  if (s.algorithm == TokenizerAlgorithm::kSpm) {
    normalized = tokenizer_internal::EscapeSpaces(text);
    text = normalized;
  }
  size_t start = 0;
  if (!m.special.empty()) {
    for (size_t i = 0; i < text.size();) {
      int32_t id = -1;
      size_t len = m.special.LongestMatch(text, i, parse_special, &id);
      if (len == 0) {
        ++i;
        continue;
      }
      encode_text(text.substr(start, i - start));
      out.push_back(id);
      prev_special = true;
      i += len;
      start = i;
    }
  }
  encode_text(text.substr(start));
  if (add_special && s.add_eos && s.eos_id >= 0) out.push_back(s.eos_id);
  return out;
}

std::string Tokenizer::TokenToPiece(int32_t id) const {
  const TokenizerSpec& s = impl_->spec;
  if (id < 0 || static_cast<size_t>(id) >= impl_->vocab.size()) return {};
  const std::string_view text = impl_->vocab.Text(static_cast<size_t>(id));
  TokenType t = impl_->Type(id);
  if (t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused) return std::string(text);
  if (s.algorithm == TokenizerAlgorithm::kBpe) {
    if (t == TokenType::kUserDefined) return std::string(text);
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      size_t len = 1;
      uint32_t cp = tokenizer_internal::DecodeUtf8(text, i, &len);
      int b = cp == 0xFFFFFFFFu ? -1 : tokenizer_internal::UnicodeToByte(cp);
      if (b >= 0) {
        out.push_back(static_cast<char>(b));
      } else {
        out.append(text.substr(i, len));  // not a byte-level symbol: keep as written
      }
      i += len;
    }
    return out;
  }
  if (t == TokenType::kByte && text.size() == 6 && text.compare(0, 3, "<0x") == 0) {
    return std::string(1, static_cast<char>(std::stoi(std::string(text.substr(3, 2)), nullptr, 16)));
  }
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 3, "\xE2\x96\x81") == 0) {
      out.push_back(' ');
      i += 3;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    if (skip_special && IsControl(id)) continue;
    std::string piece = TokenToPiece(id);
    if (first && impl_->spec.add_space_prefix && impl_->spec.algorithm == TokenizerAlgorithm::kSpm &&
        !piece.empty() && piece[0] == ' ') {
      piece.erase(0, 1);
    }
    first = false;
    out += piece;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Accessors

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(impl_->vocab.size()); }
TokenizerAlgorithm Tokenizer::algorithm() const { return impl_->spec.algorithm; }
std::string_view Tokenizer::TokenText(int32_t id) const { return impl_->vocab.Text(static_cast<size_t>(id)); }
TokenType Tokenizer::GetTokenType(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return TokenType::kUndefined;
  return impl_->Type(id);
}
std::optional<int32_t> Tokenizer::FindToken(std::string_view text) const {
  int32_t id = impl_->Lookup(text);
  if (id < 0) return std::nullopt;
  return id;
}
bool Tokenizer::IsControl(int32_t id) const {
  TokenType t = GetTokenType(id);
  return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused;
}
int32_t Tokenizer::bos_id() const { return impl_->spec.bos_id; }
int32_t Tokenizer::eos_id() const { return impl_->spec.eos_id; }
int32_t Tokenizer::eot_id() const { return impl_->spec.eot_id; }
int32_t Tokenizer::pad_id() const { return impl_->spec.pad_id; }
bool Tokenizer::add_bos() const { return impl_->spec.add_bos; }
bool Tokenizer::add_eos() const { return impl_->spec.add_eos; }
bool Tokenizer::add_space_prefix() const {
  return impl_->spec.add_space_prefix && impl_->spec.algorithm == TokenizerAlgorithm::kSpm;
}
bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->eog[id] != 0;
}

}  // namespace formiga
