// WriteHfTokenizerMetadata: tokenizer.json (+ tokenizer_config.json) ->
// tokenizer.ggml.* keys, or the placeholder vocabulary (see convert_hf.h).
//
// Key spellings follow llama.cpp (llama-arch.cpp LLM_KV_TOKENIZER_*), so the
// file's tokenizer loads in llama.cpp as well as in formiga
// (tokenizer/tokenizer_gguf.cc reads the same keys back).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "formats/gguf_writer.h"
#include "model/convert_hf.h"
#include "tokenizer/tokenizer.h"

namespace formiga {
namespace {

using json = nlohmann::json;

constexpr int64_t kByteTokens = 256;
constexpr const char* kMeta = "\xE2\x96\x81";  // U+2581, SentencePiece's space

// Reads DIR/name as JSON; a null json when the file does not exist.
Result<json> ReadJsonIfPresent(const std::string& dir, const char* name) {
  const std::string path = dir + "/" + name;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return json();
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON");
  return j;
}

// A config id key (bos_token_id: 1, or a list whose first entry counts).
int64_t ConfigId(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return -1;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
  return -1;
}

// tokenizer_config.json's "bos_token": "<s>" or {"content": "<s>", ...}.
std::string TokenConfigText(const json& tc, const char* key) {
  auto it = tc.find(key);
  if (it == tc.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return "";
}

// The tokenizer.ggml.pre name whose pre-tokenizer behaves like `spec`'s:
// first by identical regexes, then (llama.cpp's approach, which hashes the
// tokenization of a check text) by identical ids on a text exercising
// digits, contractions, punctuation, whitespace runs and non-Latin scripts.
Result<std::string> DetectPreTokenizer(const TokenizerSpec& spec) {
  static const char* const kCandidates[] = {"smollm", "llama-bpe", "qwen2", "gpt2"};
  auto ignore_merges_of = [](const std::string& name) { return name == "llama-bpe"; };
  for (const char* name : kCandidates) {
    Result<std::vector<std::string>> re = PreTokenizerRegexes(name);
    if (re.ok() && *re == spec.pre_regexes && ignore_merges_of(name) == spec.ignore_merges) return std::string(name);
  }
  static const char kCheckText[] =
      "Hello world! It's 2024-05-17, I'd pay $1234.56 for 3 apples.\n\n\t  indented  code: "
      "for(i=0;i<10;++i){x+=i;}  \xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xD0\xBF\xD1\x80\xD0\xB8 "
      "9999999 1.5e-3 WE'LL 'TIS you've\r\n  \xF0\x9F\x98\x80!!";
  FORMIGA_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> want, Tokenizer::Create(spec));
  FORMIGA_ASSIGN_OR_RETURN(std::vector<int32_t> want_ids, want->Encode(kCheckText, false, false));
  for (const char* name : kCandidates) {
    TokenizerSpec candidate = spec;
    FORMIGA_ASSIGN_OR_RETURN(candidate.pre_regexes, PreTokenizerRegexes(name));
    candidate.ignore_merges = ignore_merges_of(name);
    FORMIGA_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> t, Tokenizer::Create(std::move(candidate)));
    FORMIGA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, t->Encode(kCheckText, false, false));
    if (ids == want_ids) return std::string(name);
  }
  return Status::Unsupported(
      "tokenizer.json: its pre-tokenizer matches none that formiga and llama.cpp know by name (smollm, "
      "llama-bpe, qwen2, gpt2); add its regexes to src/tokenizer/tokenizer.cc (PreTokenizerRegexes)");
}

Result<ConvertTokenizerInfo> WritePlaceholder(const json& config_json, const ModelConfig& config, GgufWriter& w) {
  ConvertTokenizerInfo info;
  info.placeholder = true;
  info.model = "llama";
  const int64_t v = config.vocab_size;
  const int64_t bos = ConfigId(config_json, "bos_token_id"), eos = ConfigId(config_json, "eos_token_id");
  const int64_t first_byte = v > kByteTokens + std::max<int64_t>({bos, eos, 0}) ? v - kByteTokens : v;
  std::vector<std::string> tokens(static_cast<size_t>(v));
  std::vector<int32_t> types(static_cast<size_t>(v), static_cast<int32_t>(TokenType::kNormal));
  for (int64_t i = 0; i < v; ++i) {
    if (i >= first_byte) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", static_cast<int>(i - first_byte));
      tokens[i] = buf;
      types[i] = static_cast<int32_t>(TokenType::kByte);
    } else {
      tokens[i] = kPlaceholderTokenPrefix + std::to_string(i) + ">";
    }
  }
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
  w.SetFloat32Array("tokenizer.ggml.scores", std::vector<float>(static_cast<size_t>(v), 0.0f));
  for (auto [key, id] : {std::pair{"tokenizer.ggml.bos_token_id", bos}, std::pair{"tokenizer.ggml.eos_token_id", eos}}) {
    if (id >= 0 && id < first_byte) {
      w.SetUint32(key, static_cast<uint32_t>(id));
      types[id] = static_cast<int32_t>(TokenType::kControl);
    }
  }
  w.SetInt32Array("tokenizer.ggml.token_type", std::move(types));
  w.SetBool("tokenizer.ggml.add_bos_token", false);
  w.SetBool("tokenizer.ggml.add_eos_token", false);
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  info.n_tokens = v;
  return info;
}

}  // namespace

Result<ConvertTokenizerInfo> WriteHfTokenizerMetadata(const std::string& dir, const ModelConfig& config,
                                                      GgufWriter& w) {
  FORMIGA_ASSIGN_OR_RETURN(json config_json, ReadJsonIfPresent(dir, "config.json"));
  if (!config_json.is_object()) config_json = json::object();
  FORMIGA_ASSIGN_OR_RETURN(json tok_json, ReadJsonIfPresent(dir, "tokenizer.json"));
  if (tok_json.is_null()) return WritePlaceholder(config_json, config, w);

  const std::string tok_path = dir + "/tokenizer.json";
  Result<TokenizerSpec> spec_r = TokenizerSpecFromHfJson(tok_json);
  if (!spec_r.ok()) return spec_r.status().WithContext(tok_path);
  TokenizerSpec spec = std::move(spec_r).value();
  tok_json = json();  // the spec holds what is needed; free the DOM early

  // tokenizer_config.json: special tokens by text, add_bos/add_eos, chat template.
  FORMIGA_ASSIGN_OR_RETURN(json tc, ReadJsonIfPresent(dir, "tokenizer_config.json"));
  if (!tc.is_object()) tc = json::object();
  std::unordered_map<std::string, int32_t> id_of;
  for (size_t i = 0; i < spec.tokens.size(); ++i) id_of.emplace(spec.tokens[i], static_cast<int32_t>(i));
  auto resolve = [&](const char* key, int32_t* id) {
    const std::string text = TokenConfigText(tc, key);
    if (auto it = id_of.find(text); !text.empty() && it != id_of.end()) *id = it->second;
  };
  resolve("bos_token", &spec.bos_id);
  resolve("eos_token", &spec.eos_id);
  resolve("unk_token", &spec.unk_id);
  resolve("pad_token", &spec.pad_id);
  if (spec.bos_id < 0) spec.bos_id = static_cast<int32_t>(ConfigId(config_json, "bos_token_id"));
  if (spec.eos_id < 0) spec.eos_id = static_cast<int32_t>(ConfigId(config_json, "eos_token_id"));
  if (auto it = tc.find("add_bos_token"); it != tc.end() && it->is_boolean()) spec.add_bos = it->get<bool>();
  if (auto it = tc.find("add_eos_token"); it != tc.end() && it->is_boolean()) spec.add_eos = it->get<bool>();

  // Validates the whole spec (ids in range, regexes compile) before writing.
  {
    Result<std::unique_ptr<Tokenizer>> check = Tokenizer::Create(spec);
    if (!check.ok()) return check.status().WithContext(tok_path);
  }

  ConvertTokenizerInfo info;
  const bool spm = spec.algorithm == TokenizerAlgorithm::kSpm;
  info.model = spm ? "llama" : "gpt2";
  if (!spm) {
    Result<std::string> pre = DetectPreTokenizer(spec);
    if (!pre.ok()) return pre.status().WithContext(tok_path);
    info.pre = *pre;
  }

  // The embedding may have more rows than the tokenizer has tokens (padded
  // for speed): llama.cpp's converter fills the gap with "[PAD<id>]" tokens.
  const int64_t n_tok = static_cast<int64_t>(spec.tokens.size());
  if (n_tok > config.vocab_size) {
    return Status::InvalidArgument(tok_path + ": " + std::to_string(n_tok) + " tokens, but config.json's "
                                   "vocab_size (the embedding's rows) is " + std::to_string(config.vocab_size));
  }
  std::vector<std::string> tokens = std::move(spec.tokens);
  std::vector<int32_t> types;
  types.reserve(static_cast<size_t>(config.vocab_size));
  for (size_t i = 0; i < tokens.size(); ++i) {
    TokenType t = spec.types.empty() ? TokenType::kNormal : spec.types[i];
    if (tokens[i].empty()) {  // a hole in the id space
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      t = TokenType::kUnused;
      ++info.n_padding;
    } else if (spm && t == TokenType::kUserDefined) {
      // NOTE: llama.cpp keeps SPM user-defined tokens with real spaces;
      // formiga's reader re-escapes them either way.
      std::string s;
      for (size_t p = 0; p < tokens[i].size();) {
        if (tokens[i].compare(p, 3, kMeta) == 0) {
          s += ' ';
          p += 3;
        } else {
          s += tokens[i][p++];
        }
      }
      tokens[i] = std::move(s);
    }
    types.push_back(static_cast<int32_t>(t));
  }
  for (int64_t i = n_tok; i < config.vocab_size; ++i) {
    tokens.push_back("[PAD" + std::to_string(i) + "]");
    types.push_back(static_cast<int32_t>(TokenType::kUnused));
    ++info.n_padding;
  }

  std::vector<std::string> merges;
  merges.reserve(spec.merges.size());
  for (const auto& [a, b] : spec.merges) merges.push_back(a + " " + b);
  info.n_merges = static_cast<int64_t>(merges.size());

  w.SetString("tokenizer.ggml.model", info.model);
  if (!spm) w.SetString("tokenizer.ggml.pre", info.pre);
  if (spm) {
    // NOTE: SentencePiece-style tokenizers merge by score in llama.cpp. A
    // tokenizer.json carries merges instead; the score of the token a merge
    // produces is minus its rank, so "highest score first" is "lowest rank
    // first". Tokens no merge produces keep 0.
    std::vector<float> scores(tokens.size(), 0.0f);
    std::unordered_map<std::string, size_t> index;
    index.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) index.emplace(tokens[i], i);
    for (size_t r = spec.merges.size(); r-- > 0;) {  // reverse: the best rank wins
      auto it = index.find(spec.merges[r].first + spec.merges[r].second);
      if (it != index.end()) scores[it->second] = -static_cast<float>(r + 1);
    }
    w.SetFloat32Array("tokenizer.ggml.scores", std::move(scores));
  }
  info.n_tokens = static_cast<int64_t>(tokens.size());
  w.SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
  w.SetInt32Array("tokenizer.ggml.token_type", std::move(types));
  if (!merges.empty()) w.SetStringArray("tokenizer.ggml.merges", std::move(merges));
  auto set_id = [&](const char* key, int32_t id) {
    if (id >= 0 && id < config.vocab_size) w.SetUint32(key, static_cast<uint32_t>(id));
  };
  set_id("tokenizer.ggml.bos_token_id", spec.bos_id);
  set_id("tokenizer.ggml.eos_token_id", spec.eos_id);
  set_id("tokenizer.ggml.unknown_token_id", spec.unk_id);
  set_id("tokenizer.ggml.padding_token_id", spec.pad_id);
  w.SetBool("tokenizer.ggml.add_bos_token", spec.add_bos);
  w.SetBool("tokenizer.ggml.add_eos_token", spec.add_eos);
  if (spm) w.SetBool("tokenizer.ggml.add_space_prefix", spec.add_space_prefix);

  // Chat template: tokenizer_config.json's chat_template (a string, or named
  // templates of which "default" is the main one), else chat_template.jinja.
  std::string chat_template;
  if (auto it = tc.find("chat_template"); it != tc.end()) {
    if (it->is_string()) {
      chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      for (const json& t : *it) {
        if (!t.is_object() || !t.contains("name") || !t.contains("template")) continue;
        if (!t["name"].is_string() || !t["template"].is_string()) continue;
        const std::string name = t["name"].get<std::string>();
        if (name == "default") {
          chat_template = t["template"].get<std::string>();
        } else {
          w.SetString("tokenizer.chat_template." + name, t["template"].get<std::string>());
        }
      }
    }
  }
  if (chat_template.empty()) {
    std::ifstream in(dir + "/chat_template.jinja", std::ios::binary);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      chat_template = ss.str();
    }
  }
  if (!chat_template.empty()) {
    w.SetString("tokenizer.chat_template", chat_template);
    info.chat_template = true;
  }
  return info;
}

}  // namespace formiga
