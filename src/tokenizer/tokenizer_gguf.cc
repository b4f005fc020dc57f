// Tokenizer::FromGguf: the tokenizer.ggml.* metadata -> TokenizerSpec.
//
// Keys (as llama.cpp writes them): model ("gpt2" = byte-level BPE, "llama" =
// SentencePiece-style), pre, tokens, scores, token_type, merges ("a b"),
// bos/eos/eot/eom/unknown/padding_token_id, add_bos_token, add_eos_token,
// add_space_prefix.
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace formiga {

namespace {

Status Ctx(const Status& st, const GgufFile& gguf) {
  return st.WithContext(gguf.path().empty() ? "gguf tokenizer" : gguf.path() + ": tokenizer");
}

Result<int32_t> OptionalId(const GgufFile& gguf, std::string_view key) {
  if (gguf.Find(key) == nullptr) return int32_t{-1};
  FORMIGA_ASSIGN_OR_RETURN(int64_t v, gguf.GetInt(key));
  // NOTE: some converters write -1 (as uint32 0xFFFFFFFF) for "none".
  if (v < 0 || v > INT32_MAX) return int32_t{-1};
  return static_cast<int32_t>(v);
}

Result<bool> OptionalBool(const GgufFile& gguf, std::string_view key, bool def) {
  if (gguf.Find(key) == nullptr) return def;
  return gguf.GetBool(key);
}

Result<TokenizerSpec> SpecFromGguf(const GgufFile& gguf) {
  TokenizerSpec spec;
  FORMIGA_ASSIGN_OR_RETURN(std::string model, gguf.GetString("tokenizer.ggml.model"));
  if (model == "gpt2") {
    spec.algorithm = TokenizerAlgorithm::kBpe;
  } else if (model == "llama") {
    spec.algorithm = TokenizerAlgorithm::kSpm;
  } else {
    return Status::Unsupported("tokenizer.ggml.model '" + model +
                               "' is not supported (supported: gpt2 = byte-level BPE, llama = "
                               "SentencePiece-style)");
  }
  FORMIGA_ASSIGN_OR_RETURN(spec.tokens, gguf.GetStringArray("tokenizer.ggml.tokens"));
  if (gguf.Find("tokenizer.ggml.scores") != nullptr) {
    FORMIGA_ASSIGN_OR_RETURN(std::vector<double> scores, gguf.GetFloatArray("tokenizer.ggml.scores"));
    spec.scores.assign(scores.begin(), scores.end());
  }
  if (gguf.Find("tokenizer.ggml.token_type") != nullptr) {
    FORMIGA_ASSIGN_OR_RETURN(std::vector<int64_t> types, gguf.GetIntArray("tokenizer.ggml.token_type"));
    spec.types.reserve(types.size());
    for (int64_t t : types) {
      spec.types.push_back(t >= 0 && t <= 6 ? static_cast<TokenType>(t) : TokenType::kNormal);
    }
  }
  if (gguf.Find("tokenizer.ggml.merges") != nullptr) {
    FORMIGA_ASSIGN_OR_RETURN(const GgufValue* merges, gguf.GetArray("tokenizer.ggml.merges", GgufType::kString));
    spec.merges.reserve(merges->size());
    for (size_t r = 0; r < merges->size(); ++r) {
      const std::string_view mg = merges->StringAt(r);
      // NOTE: split at the first space after position 0: byte-level symbols
      // never contain a space, so "a b" is unambiguous.
      size_t sp = mg.find(' ', 1);
      if (sp == std::string::npos) {
        return Status::Corruption("tokenizer.ggml.merges[" + std::to_string(r) + "] '" + std::string(mg) +
                                  "' is not two symbols separated by a space");
      }
      spec.merges.emplace_back(mg.substr(0, sp), mg.substr(sp + 1));
    }
  }
  if (spec.algorithm == TokenizerAlgorithm::kBpe) {
    std::string pre = "default";
    if (gguf.Find("tokenizer.ggml.pre") != nullptr) {
      FORMIGA_ASSIGN_OR_RETURN(pre, gguf.GetString("tokenizer.ggml.pre"));
    }
    FORMIGA_ASSIGN_OR_RETURN(spec.pre_regexes, PreTokenizerRegexes(pre));
    // NOTE: Llama-3's tokenizer.json sets ignore_merges; llama.cpp ties it to
    // the llama-bpe pre-tokenizer.
    spec.ignore_merges = pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
    if (spec.merges.empty()) {
      return Status::Corruption("tokenizer.ggml.merges is missing: a gpt2 (BPE) tokenizer needs merges");
    }
  }
  FORMIGA_ASSIGN_OR_RETURN(spec.bos_id, OptionalId(gguf, "tokenizer.ggml.bos_token_id"));
  FORMIGA_ASSIGN_OR_RETURN(spec.eos_id, OptionalId(gguf, "tokenizer.ggml.eos_token_id"));
  FORMIGA_ASSIGN_OR_RETURN(spec.eot_id, OptionalId(gguf, "tokenizer.ggml.eot_token_id"));
  FORMIGA_ASSIGN_OR_RETURN(spec.eom_id, OptionalId(gguf, "tokenizer.ggml.eom_token_id"));
  FORMIGA_ASSIGN_OR_RETURN(spec.unk_id, OptionalId(gguf, "tokenizer.ggml.unknown_token_id"));
  FORMIGA_ASSIGN_OR_RETURN(spec.pad_id, OptionalId(gguf, "tokenizer.ggml.padding_token_id"));
  const bool spm = spec.algorithm == TokenizerAlgorithm::kSpm;
  // Defaults when the key is absent follow llama.cpp: SPM adds BOS and the
  // dummy prefix, BPE does neither.
  FORMIGA_ASSIGN_OR_RETURN(spec.add_bos, OptionalBool(gguf, "tokenizer.ggml.add_bos_token", spm));
  FORMIGA_ASSIGN_OR_RETURN(spec.add_eos, OptionalBool(gguf, "tokenizer.ggml.add_eos_token", false));
  FORMIGA_ASSIGN_OR_RETURN(spec.add_space_prefix, OptionalBool(gguf, "tokenizer.ggml.add_space_prefix", spm));
  return spec;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& gguf) {
  Result<TokenizerSpec> spec = SpecFromGguf(gguf);
  if (!spec.ok()) return Ctx(spec.status(), gguf);
  Result<std::unique_ptr<Tokenizer>> tok = Create(std::move(spec).value());
  if (!tok.ok()) return Ctx(tok.status(), gguf);
  return tok;
}

}  // namespace formiga
