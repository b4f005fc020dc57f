// Tokenizer::FromHfJson: a Hugging Face tokenizer.json -> TokenizerSpec.
//
// Supported shapes (the llama / smollm / qwen2 / gemma families):
//   - byte-level BPE: pre_tokenizer ByteLevel (GPT-2 regex), or a Sequence of
//     Split(Regex, Isolated) / Digits(individual) followed by
//     ByteLevel(use_regex=false); normalizer null.
//   - SentencePiece-style BPE: normalizer Replace(" " -> "▁") (optionally
//     after Prepend("▁")), or pre_tokenizer Metaspace; byte_fallback.
// Anything else is rejected with Unsupported naming the section and type.
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tokenizer/tokenizer.h"

namespace formiga {

namespace {

using nlohmann::json;

constexpr const char* kMeta = "\xE2\x96\x81";  // U+2581

std::string TypeOf(const json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return "?";
  return j["type"].get<std::string>();
}

Status Unsupported(const std::string& section, const json& j) {
  return Status::Unsupported("tokenizer.json: " + section + " of type '" + TypeOf(j) + "' (" +
                             j.dump().substr(0, 200) +
                             ") is not supported; supported are byte-level BPE (GPT-2, Llama-3, "
                             "Qwen2, SmolLM) and SentencePiece-style BPE (Llama, Gemma)");
}

bool IsReplaceSpace(const json& n) {
  return TypeOf(n) == "Replace" && n.value("content", "") == kMeta && n.contains("pattern") &&
         n["pattern"].is_object() && n["pattern"].value("String", "") == " ";
}

// Normalizer: returns whether it turns spaces into "▁" (SPM style) and
// whether it prepends one.
Status ParseNormalizer(const json& n, bool* spm, bool* prefix) {
  *spm = false;
  *prefix = false;
  if (n.is_null()) return Status::Ok();
  if (IsReplaceSpace(n)) {
    *spm = true;
    return Status::Ok();
  }
  if (TypeOf(n) == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const json& step : n["normalizers"]) {
      if (IsReplaceSpace(step)) {
        *spm = true;
      } else if (TypeOf(step) == "Prepend" && step.value("prepend", "") == kMeta) {
        *prefix = true;
      } else {
        return Unsupported("normalizer step", step);
      }
    }
    return Status::Ok();
  }
  return Unsupported("normalizer", n);
}

Status ParsePreTokenizerStep(const json& p, bool spm, TokenizerSpec* spec, bool* byte_level) {
  std::string type = TypeOf(p);
  if (type == "ByteLevel") {
    if (p.value("add_prefix_space", false)) return Unsupported("pre_tokenizer (add_prefix_space=true)", p);
    *byte_level = true;
    if (p.value("use_regex", true)) {
      FORMIGA_ASSIGN_OR_RETURN(std::vector<std::string> gpt2, PreTokenizerRegexes("gpt2"));
      spec->pre_regexes.push_back(gpt2[0]);
    }
    return Status::Ok();
  }
  if (type == "Digits" && p.value("individual_digits", false)) {
    spec->pre_regexes.push_back(R"(\p{N})");
    return Status::Ok();
  }
  if (type == "Split" && p.contains("pattern") && p["pattern"].is_object()) {
    const json& pat = p["pattern"];
    if (pat.contains("Regex") && p.value("behavior", "") == "Isolated" && !p.value("invert", false)) {
      spec->pre_regexes.push_back(pat["Regex"].get<std::string>());
      return Status::Ok();
    }
    // NOTE: Gemma's Split(" ", MergedWithPrevious) runs after the normalizer
    // turned every space into "▁": it never matches.
    if (spm && pat.value("String", "") == " ") return Status::Ok();
  }
  if (type == "Metaspace" && spm) return Status::Ok();
  return Unsupported("pre_tokenizer", p);
}

Result<TokenizerSpec> SpecFromJson(const json& j) {
  TokenizerSpec spec;
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) {
    return Status::InvalidArgument("tokenizer.json: no \"model\" object; is this a tokenizer.json file?");
  }
  const json& model = j["model"];
  if (TypeOf(model) != "BPE") return Unsupported("model", model);

  bool spm = false, prefix = false;
  FORMIGA_RETURN_IF_ERROR(ParseNormalizer(j.value("normalizer", json()), &spm, &prefix));
  const json pre = j.value("pre_tokenizer", json());
  if (TypeOf(pre) == "Metaspace") {
    // Metaspace instead of a normalizer: the same SPM behaviour.
    if (pre.value("split", false)) return Unsupported("pre_tokenizer (Metaspace split=true)", pre);
    spm = true;
    std::string scheme = pre.value("prepend_scheme", pre.value("add_prefix_space", true) ? "always" : "never");
    prefix = scheme != "never";
  }
  bool byte_level = false;
  if (!pre.is_null()) {
    if (TypeOf(pre) == "Sequence") {
      for (const json& step : pre.value("pretokenizers", json::array())) {
        FORMIGA_RETURN_IF_ERROR(ParsePreTokenizerStep(step, spm, &spec, &byte_level));
      }
    } else {
      FORMIGA_RETURN_IF_ERROR(ParsePreTokenizerStep(pre, spm, &spec, &byte_level));
    }
  }
  if (spm == byte_level) {
    return Status::Unsupported(
        "tokenizer.json: expected either a byte-level BPE (ByteLevel pre-tokenizer) or a "
        "SentencePiece-style BPE (spaces replaced by U+2581), found " +
        std::string(spm ? "both" : "neither"));
  }
  spec.algorithm = spm ? TokenizerAlgorithm::kSpm : TokenizerAlgorithm::kBpe;
  spec.add_space_prefix = prefix;
  spec.byte_fallback = model.value("byte_fallback", false);
  spec.ignore_merges = model.value("ignore_merges", false);

  // Vocabulary: model.vocab plus added_tokens (which may extend it).
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return Status::Corruption("tokenizer.json: model.vocab is missing or not an object");
  }
  int64_t max_id = -1;
  for (const auto& [text, id] : model["vocab"].items()) max_id = std::max<int64_t>(max_id, id.get<int64_t>());
  const json added = j.value("added_tokens", json::array());
  for (const json& a : added) max_id = std::max<int64_t>(max_id, a.value("id", int64_t{-1}));
  if (max_id < 0 || max_id >= INT32_MAX) return Status::Corruption("tokenizer.json: bad vocabulary ids");
  spec.tokens.assign(max_id + 1, "");
  spec.types.assign(max_id + 1, TokenType::kUnused);
  for (const auto& [text, id] : model["vocab"].items()) {
    int64_t i = id.get<int64_t>();
    if (i < 0) return Status::Corruption("tokenizer.json: negative id for '" + text + "'");
    spec.tokens[i] = text;
    bool is_byte = spm && text.size() == 6 && text.compare(0, 3, "<0x") == 0 && text.back() == '>';
    spec.types[i] = is_byte ? TokenType::kByte : TokenType::kNormal;
  }
  for (const json& a : added) {
    int64_t i = a.value("id", int64_t{-1});
    if (i < 0) continue;
    spec.tokens[i] = a.value("content", "");
    spec.types[i] = a.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    for (size_t i = 0; i < spec.tokens.size(); ++i) {
      if (spec.tokens[i] == model["unk_token"].get<std::string>()) spec.unk_id = static_cast<int32_t>(i);
    }
  }

  const json merges = model.value("merges", json::array());
  spec.merges.reserve(merges.size());
  for (const json& mg : merges) {
    if (mg.is_string()) {
      const std::string s = mg.get<std::string>();
      size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) return Status::Corruption("tokenizer.json: merge '" + s + "' has no space");
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      spec.merges.emplace_back(mg[0].get<std::string>(), mg[1].get<std::string>());
    } else {
      return Status::Corruption("tokenizer.json: merge " + mg.dump() + " is neither \"a b\" nor [a, b]");
    }
  }

  // BOS/EOS come from the post-processor template (TemplateProcessing).
  const json post = j.value("post_processor", json());
  auto special_id = [&](const json& item) -> int32_t {
    if (!item.contains("SpecialToken")) return -1;
    std::string name = item["SpecialToken"].value("id", "");
    for (size_t i = 0; i < spec.tokens.size(); ++i) {
      if (spec.tokens[i] == name) return static_cast<int32_t>(i);
    }
    return -1;
  };
  if (TypeOf(post) == "TemplateProcessing" && post.contains("single") && post["single"].is_array() &&
      !post["single"].empty()) {
    const json& single = post["single"];
    if (int32_t id = special_id(single.front()); id >= 0) {
      spec.bos_id = id;
      spec.add_bos = true;
    }
    if (single.size() > 1) {
      if (int32_t id = special_id(single.back()); id >= 0) {
        spec.eos_id = id;
        spec.add_eos = true;
      }
    }
  }
  // NOTE: tokenizer.json does not name BOS/EOS when they are not added (they
  // live in tokenizer_config.json); fall back to the usual spellings.
  auto find_control = [&](std::initializer_list<const char*> names) -> int32_t {
    for (const char* name : names) {
      for (size_t i = 0; i < spec.tokens.size(); ++i) {
        if (spec.tokens[i] == name && spec.types[i] == TokenType::kControl) return static_cast<int32_t>(i);
      }
    }
    return -1;
  };
  if (spec.bos_id < 0) spec.bos_id = find_control({"<bos>", "<s>", "<|begin_of_text|>"});
  if (spec.eos_id < 0) spec.eos_id = find_control({"<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>"});
  if (spec.pad_id < 0) spec.pad_id = find_control({"<pad>", "<|pad|>"});
  return spec;
}

}  // namespace

Result<TokenizerSpec> TokenizerSpecFromHfJson(const nlohmann::json& json) {
  try {
    return SpecFromJson(json);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("tokenizer.json: unexpected structure: ") + e.what());
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromHfJson(const nlohmann::json& json) {
  try {
    FORMIGA_ASSIGN_OR_RETURN(TokenizerSpec spec, SpecFromJson(json));
    return Create(std::move(spec));
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(std::string("tokenizer.json: unexpected structure: ") + e.what());
  }
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromHfJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": cannot open tokenizer.json");
  std::stringstream buf;
  buf << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON");
  auto tok = FromHfJson(j);
  if (!tok.ok()) return tok.status().WithContext(path);
  return tok;
}

}  // namespace formiga
