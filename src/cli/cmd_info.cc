// formiga info MODEL [--json]: what a model file holds.
//
// GGUF: file facts, architecture hyper-parameters (<arch>.* keys), general.*,
// a tokenizer summary, the chat template, the tensor table and totals (params,
// bytes, bits per weight, per type). Safetensors (a file, an index .json or a
// Hugging Face checkpoint directory): tensors, dtypes, shapes, totals and the
// main config.json fields. Large arrays are summarized, never dumped.
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/terminal.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"

namespace formiga::cli {
namespace {

// NOTE: ordered_json keeps metadata in file order (a std::map would sort it).
using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

// Arrays up to this length appear whole in --json's "metadata"; longer ones
// show their first kArrayPreview items.
constexpr size_t kArrayFull = 64;
constexpr size_t kArrayPreview = 8;
constexpr int kTemplateLines = 4;

// llama.cpp's llama_ftype numbering of general.file_type.
const char* FileTypeName(int64_t ft) {
  switch (ft) {
    case 0: return "ALL_F32";
    case 1: return "MOSTLY_F16";
    case 2: return "MOSTLY_Q4_0";
    case 3: return "MOSTLY_Q4_1";
    case 7: return "MOSTLY_Q8_0";
    case 8: return "MOSTLY_Q5_0";
    case 9: return "MOSTLY_Q5_1";
    case 10: return "MOSTLY_Q2_K";
    case 11: return "MOSTLY_Q3_K_S";
    case 12: return "MOSTLY_Q3_K_M";
    case 13: return "MOSTLY_Q3_K_L";
    case 14: return "MOSTLY_Q4_K_S";
    case 15: return "MOSTLY_Q4_K_M";
    case 16: return "MOSTLY_Q5_K_S";
    case 17: return "MOSTLY_Q5_K_M";
    case 18: return "MOSTLY_Q6_K";
    case 19: return "MOSTLY_IQ2_XXS";
    case 20: return "MOSTLY_IQ2_XS";
    case 21: return "MOSTLY_Q2_K_S";
    case 22: return "MOSTLY_IQ3_XS";
    case 23: return "MOSTLY_IQ3_XXS";
    case 24: return "MOSTLY_IQ1_S";
    case 25: return "MOSTLY_IQ4_NL";
    case 26: return "MOSTLY_IQ3_S";
    case 27: return "MOSTLY_IQ3_M";
    case 28: return "MOSTLY_IQ2_S";
    case 29: return "MOSTLY_IQ2_M";
    case 30: return "MOSTLY_IQ4_XS";
    case 31: return "MOSTLY_IQ1_M";
    case 32: return "MOSTLY_BF16";
    case 36: return "MOSTLY_TQ1_0";
    case 37: return "MOSTLY_TQ2_0";
    case 38: return "MOSTLY_MXFP4_MOE";
    default: return "unknown";
  }
}

std::string HumanCount(uint64_t n) {
  char buf[64];
  if (n >= 1000000000ull) std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  else if (n >= 1000000ull) std::snprintf(buf, sizeof(buf), "%.2f M", n / 1e6);
  else if (n >= 1000ull) std::snprintf(buf, sizeof(buf), "%.2f K", n / 1e3);
  else std::snprintf(buf, sizeof(buf), "%" PRIu64, n);
  return buf;
}

// Makes text safe for one terminal line: control bytes as escapes.
std::string Escape(const std::string& s, size_t max_len = 120) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

std::string FormatDouble(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// ---- GGUF values as JSON and text -------------------------------------------

json ScalarJson(const GgufValue& v) {
  if (v.type == GgufType::kBool) return v.u != 0;
  if (v.is_unsigned()) return v.u;
  if (v.is_signed()) return v.i;
  if (v.is_float()) return v.f;
  if (v.type == GgufType::kString) return v.str;
  return nullptr;
}

// Scalars as plain JSON; arrays as {"type": "array", "elem_type", "length",
// "value": [items...], "truncated"} with at most kArrayFull items.
json ValueJson(const GgufValue& v) {
  if (v.type != GgufType::kArray) return ScalarJson(v);
  json items = json::array();
  const bool truncated = v.size() > kArrayFull;
  const size_t n = truncated ? kArrayPreview : v.size();
  for (size_t k = 0; k < n; ++k) items.push_back(ValueJson(v.At(k)));
  return json{{"type", "array"},
              {"elem_type", GgufTypeName(v.elem_type)},
              {"length", v.size()},
              {"value", std::move(items)},
              {"truncated", truncated}};
}

json TypedValueJson(const GgufValue& v) {
  if (v.type == GgufType::kArray) return ValueJson(v);
  return json{{"type", GgufTypeName(v.type)}, {"value", ScalarJson(v)}};
}

std::string ValueText(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kBool: return v.u != 0 ? "true" : "false";
    case GgufType::kString: return "\"" + Escape(v.str) + "\"";
    case GgufType::kFloat32:
    case GgufType::kFloat64: return FormatDouble(v.f);
    case GgufType::kArray: {
      std::string s = std::string("[") + GgufTypeName(v.elem_type) + " x " + std::to_string(v.size()) + "]";
      if (v.size() <= kArrayPreview) {
        s += " {";
        for (size_t k = 0; k < v.size(); ++k) s += (k ? ", " : "") + ValueText(v.At(k));
        s += "}";
      }
      return s;
    }
    default: return v.is_signed() ? std::to_string(v.i) : std::to_string(v.u);
  }
}

struct TypeTotals {
  uint64_t tensors = 0;
  uint64_t params = 0;
  uint64_t bytes = 0;
};

json TotalsJson(uint64_t params, uint64_t bytes, const std::map<std::string, TypeTotals>& by_type, size_t n) {
  json j{{"tensors", n}, {"parameters", params}, {"data_bytes", bytes},
         {"bits_per_weight", params ? bytes * 8.0 / static_cast<double>(params) : 0.0}};
  json bt = json::object();
  for (const auto& [name, t] : by_type) {
    bt[name] = json{{"tensors", t.tensors}, {"parameters", t.params}, {"bytes", t.bytes},
                    {"bits_per_weight", t.params ? t.bytes * 8.0 / static_cast<double>(t.params) : 0.0}};
  }
  j["by_type"] = std::move(bt);
  return j;
}

void PrintTotals(uint64_t params, uint64_t bytes, const std::map<std::string, TypeTotals>& by_type) {
  std::printf("\ntotals\n");
  std::printf("  parameters     %s (%" PRIu64 ")\n", HumanCount(params).c_str(), params);
  std::printf("  data           %s (%" PRIu64 " bytes)\n", HumanBytes(bytes).c_str(), bytes);
  if (params > 0) std::printf("  bits/weight    %.3f\n", bytes * 8.0 / static_cast<double>(params));
  std::printf("  %-8s %8s %16s %14s %8s\n", "type", "tensors", "parameters", "bytes", "bpw");
  for (const auto& [name, t] : by_type) {
    std::printf("  %-8s %8" PRIu64 " %16" PRIu64 " %14s %8.3f\n", name.c_str(), t.tensors, t.params,
                HumanBytes(t.bytes).c_str(), t.params ? t.bytes * 8.0 / static_cast<double>(t.params) : 0.0);
  }
}

// ---- GGUF -----------------------------------------------------------------

struct TokenizerSummary {
  json j = json::object();
  std::vector<std::pair<std::string, std::string>> rows;  // for the table
};

TokenizerSummary SummarizeTokenizer(const GgufFile& f) {
  TokenizerSummary s;
  auto add = [&](const std::string& key, json value, std::string text) {
    s.j[key] = std::move(value);
    s.rows.emplace_back(key, std::move(text));
  };
  for (const char* key : {"model", "pre"}) {
    Result<std::string> v = f.GetString(std::string("tokenizer.ggml.") + key);
    if (v.ok()) add(key, *v, *v);
  }
  const GgufValue* tokens = f.Find("tokenizer.ggml.tokens");
  const bool have_tokens = tokens != nullptr && tokens->type == GgufType::kArray;
  if (have_tokens) add("vocab_size", tokens->size(), std::to_string(tokens->size()) + " tokens");
  const GgufValue* merges = f.Find("tokenizer.ggml.merges");
  if (merges != nullptr && merges->type == GgufType::kArray) {
    add("merges", merges->size(), std::to_string(merges->size()));
  }
  if (f.Find("tokenizer.ggml.scores") != nullptr) add("has_scores", true, "yes");
  for (const char* which : {"bos", "eos", "eot", "eom", "unknown", "padding", "seperator", "mask"}) {
    Result<int64_t> id = f.GetInt(std::string("tokenizer.ggml.") + which + "_token_id");
    if (!id.ok()) continue;
    std::string text;
    if (have_tokens && *id >= 0 && static_cast<uint64_t>(*id) < tokens->size()) {
      text = tokens->At(static_cast<size_t>(*id)).str;
    }
    s.j[std::string(which) + "_token_id"] = *id;
    s.j[std::string(which) + "_token"] = text;
    s.rows.emplace_back(std::string(which) + " token", std::to_string(*id) + " '" + Escape(text) + "'");
  }
  for (const char* which : {"add_bos_token", "add_eos_token", "add_sep_token", "add_space_prefix"}) {
    Result<bool> b = f.GetBool(std::string("tokenizer.ggml.") + which);
    if (b.ok()) add(which, *b, *b ? "true" : "false");
  }
  return s;
}

json GgufJson(const GgufFile& f) {
  json j;
  j["file"] = json{{"path", f.path()}, {"format", "gguf"}, {"size", f.file_size()}, {"version", f.version()},
                   {"alignment", f.alignment()}, {"data_offset", f.data_offset()}};
  const std::string arch = f.architecture();
  j["architecture"] = arch;
  json hparams = json::object();
  json general = json::object();
  json metadata = json::object();
  for (const auto& [key, value] : f.metadata()) {
    metadata[key] = TypedValueJson(value);
    if (!arch.empty() && key.rfind(arch + ".", 0) == 0) hparams[key.substr(arch.size() + 1)] = ValueJson(value);
    if (key.rfind("general.", 0) == 0) general[key.substr(8)] = ValueJson(value);
  }
  if (Result<int64_t> ft = f.GetInt("general.file_type"); ft.ok()) general["file_type_name"] = FileTypeName(*ft);
  j["hparams"] = std::move(hparams);
  j["general"] = std::move(general);
  TokenizerSummary tok = SummarizeTokenizer(f);
  if (Result<std::string> t = f.GetString("tokenizer.chat_template"); t.ok()) tok.j["chat_template"] = *t;
  j["tokenizer"] = std::move(tok.j);
  json tensors = json::array();
  uint64_t params = 0, bytes = 0;
  std::map<std::string, TypeTotals> by_type;
  for (const GgufTensorInfo& t : f.tensors()) {
    tensors.push_back(json{{"name", t.name}, {"shape", t.shape}, {"type", DTypeName(t.type)},
                           {"bytes", t.nbytes}, {"offset", t.offset}});
    TypeTotals& tt = by_type[DTypeName(t.type)];
    ++tt.tensors;
    tt.params += static_cast<uint64_t>(t.n_elements());
    tt.bytes += t.nbytes;
    params += static_cast<uint64_t>(t.n_elements());
    bytes += t.nbytes;
  }
  j["tensors"] = std::move(tensors);
  j["totals"] = TotalsJson(params, bytes, by_type, f.tensors().size());
  j["metadata"] = std::move(metadata);
  return j;
}

void PrintGguf(const GgufFile& f) {
  std::printf("file           %s\n", f.path().c_str());
  std::printf("size           %s (%" PRIu64 " bytes)\n", HumanBytes(f.file_size()).c_str(), f.file_size());
  std::printf("format         GGUF v%u, alignment %" PRIu64 ", tensor data at offset %" PRIu64 "\n", f.version(),
              f.alignment(), f.data_offset());
  const std::string arch = f.architecture();
  std::printf("\ngeneral\n");
  for (const auto& [key, value] : f.metadata()) {
    if (key.rfind("general.", 0) != 0) continue;
    std::string text = ValueText(value);
    if (key == "general.file_type" && value.is_integer()) {
      text += std::string(" (") + FileTypeName(*value.AsInt()) + ")";
    }
    std::printf("  %-28s %s\n", key.substr(8).c_str(), text.c_str());
  }
  std::printf("\narchitecture   %s\n", arch.empty() ? "(general.architecture missing)" : arch.c_str());
  for (const auto& [key, value] : f.metadata()) {
    if (arch.empty() || key.rfind(arch + ".", 0) != 0) continue;
    std::printf("  %-40s %s\n", key.substr(arch.size() + 1).c_str(), ValueText(value).c_str());
  }
  TokenizerSummary tok = SummarizeTokenizer(f);
  if (!tok.rows.empty()) {
    std::printf("\ntokenizer\n");
    for (const auto& [k, v] : tok.rows) std::printf("  %-18s %s\n", k.c_str(), v.c_str());
  }
  // Other keys (neither general, arch nor the summarized tokenizer arrays).
  bool header = false;
  for (const auto& [key, value] : f.metadata()) {
    if (key.rfind("general.", 0) == 0 || (!arch.empty() && key.rfind(arch + ".", 0) == 0) ||
        key.rfind("tokenizer.", 0) == 0) {
      continue;
    }
    if (!header) std::printf("\nother metadata\n");
    header = true;
    std::printf("  %-40s %s\n", key.c_str(), ValueText(value).c_str());
  }
  if (Result<std::string> t = f.GetString("tokenizer.chat_template"); t.ok()) {
    std::printf("\nchat template  (%zu chars; full text with --json)\n", t->size());
    std::istringstream lines(*t);
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
      if (n++ == kTemplateLines) {
        std::printf("  ...\n");
        break;
      }
      std::printf("  %s\n", Escape(line).c_str());
    }
  }
  std::printf("\ntensors        %zu\n", f.tensors().size());
  std::printf("  %-40s %-26s %-8s %12s\n", "name", "shape (ne0 first)", "type", "bytes");
  uint64_t params = 0, bytes = 0;
  std::map<std::string, TypeTotals> by_type;
  for (const GgufTensorInfo& t : f.tensors()) {
    std::printf("  %-40s %-26s %-8s %12" PRIu64 "\n", Escape(t.name, 60).c_str(), ShapeString(t.shape).c_str(),
                DTypeName(t.type), t.nbytes);
    TypeTotals& tt = by_type[DTypeName(t.type)];
    ++tt.tensors;
    tt.params += static_cast<uint64_t>(t.n_elements());
    tt.bytes += t.nbytes;
    params += static_cast<uint64_t>(t.n_elements());
    bytes += t.nbytes;
  }
  PrintTotals(params, bytes, by_type);
}

// ---- safetensors ------------------------------------------------------------

json ConfigSummary(const std::string& dir) {
  fs::path p = fs::path(dir.empty() ? "." : dir) / "config.json";
  std::ifstream in(p);
  if (!in) return nullptr;
  json cfg = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!cfg.is_object()) return nullptr;
  // Multimodal configs keep the language model's fields under text_config.
  const json& text = cfg.contains("text_config") && cfg["text_config"].is_object() ? cfg["text_config"] : cfg;
  json out = json::object();
  if (cfg.contains("model_type")) out["model_type"] = cfg["model_type"];
  if (cfg.contains("architectures")) out["architectures"] = cfg["architectures"];
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings", "rope_theta",
                          "rms_norm_eps", "torch_dtype", "tie_word_embeddings", "sliding_window"}) {
    if (text.contains(key)) out[key] = text[key];
  }
  return out;
}

int InfoSafetensors(const std::string& path, bool as_json) {
  Result<SafetensorsCheckpoint> ckpt = SafetensorsCheckpoint::Open(path);
  if (!ckpt.ok()) return ReportError(ckpt.status());
  uint64_t params = 0, bytes = 0, file_bytes = 0;
  std::map<std::string, TypeTotals> by_type;
  json tensors = json::array();
  std::vector<const SafetensorsTensor*> all;
  for (const std::string& name : ckpt->TensorNames()) all.push_back(ckpt->Find(name));
  for (const SafetensorsTensor* t : all) {
    TypeTotals& tt = by_type[SafetensorsDTypeName(t->dtype)];
    ++tt.tensors;
    tt.params += static_cast<uint64_t>(t->n_elements());
    tt.bytes += t->nbytes;
    params += static_cast<uint64_t>(t->n_elements());
    bytes += t->nbytes;
    tensors.push_back(json{{"name", t->name}, {"shape", t->shape}, {"dtype", SafetensorsDTypeName(t->dtype)},
                           {"bytes", t->nbytes}});
  }
  json shards = json::array();
  for (const SafetensorsFile& s : ckpt->shards()) {
    file_bytes += s.file_size();
    shards.push_back(json{{"path", s.path()}, {"size", s.file_size()}, {"tensors", s.tensors().size()}});
  }
  json config = ConfigSummary(ckpt->directory());
  if (as_json) {
    json j;
    j["file"] = json{{"path", path}, {"format", "safetensors"}, {"size", file_bytes}, {"shards", std::move(shards)}};
    if (!ckpt->shards().empty() && !ckpt->shards()[0].metadata().empty()) {
      j["metadata"] = ckpt->shards()[0].metadata();
    }
    if (!config.is_null()) j["config"] = config;
    j["tensors"] = std::move(tensors);
    j["totals"] = TotalsJson(params, bytes, by_type, all.size());
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("file           %s\n", path.c_str());
  std::printf("format         safetensors, %zu shard(s), %s (%" PRIu64 " bytes)\n", ckpt->shards().size(),
              HumanBytes(file_bytes).c_str(), file_bytes);
  if (!config.is_null()) {
    std::printf("\nconfig.json\n");
    for (auto it = config.begin(); it != config.end(); ++it) {
      std::printf("  %-26s %s\n", it.key().c_str(), it->dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    }
  }
  std::printf("\ntensors        %zu\n", all.size());
  std::printf("  %-48s %-24s %-8s %12s\n", "name", "shape (outermost first)", "dtype", "bytes");
  for (const SafetensorsTensor* t : all) {
    std::printf("  %-48s %-24s %-8s %12" PRIu64 "\n", Escape(t->name, 60).c_str(), ShapeString(t->shape).c_str(),
                SafetensorsDTypeName(t->dtype), t->nbytes);
  }
  PrintTotals(params, bytes, by_type);
  return 0;
}

bool LooksLikeSafetensors(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return true;
  const std::string ext = fs::path(path).extension().string();
  return ext == ".safetensors" || ext == ".json";
}

int RunInfo(const std::string& model_arg, bool as_json) {
  std::string path = model_arg.empty() ? DefaultModelPath() : model_arg;
  if (path.empty()) {
    return ReportError(Status::InvalidArgument("no model given and no default model found: pass MODEL "
                                               "(a .gguf file, a .safetensors file or a checkpoint directory)"));
  }
  if (LooksLikeSafetensors(path)) return InfoSafetensors(path, as_json);
  Result<GgufFile> f = GgufFile::Open(path);
  if (!f.ok()) {
    // A file with another extension may still be safetensors: try it before giving up.
    if (f.status().IsCorruption() && f.status().message().find("bad magic") != std::string::npos) {
      if (SafetensorsFile::Open(path).ok()) return InfoSafetensors(path, as_json);
      return ReportError(Status::InvalidArgument(path + ": neither a GGUF nor a safetensors file"));
    }
    return ReportError(f.status());
  }
  if (as_json) {
    std::printf("%s\n", GgufJson(*f).dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    PrintGguf(*f);
  }
  return 0;
}

}  // namespace

void RegisterInfo(CLI::App& app, CommandContext& ctx) {
  CLI::App* cmd = app.add_subcommand(
      "info", "Show what a model file holds: metadata, hyper-parameters, tokenizer, tensors and sizes");
  auto model = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  cmd->add_option("model", *model,
                  "a .gguf file, a .safetensors file, or a Hugging Face checkpoint directory "
                  "(default: $FORMIGA_MODEL or the bundled SmolLM2)");
  cmd->add_flag("--json", *as_json, "print JSON (full chat template; large arrays summarized)");
  cmd->callback([&ctx, model, as_json] { ctx.exit_code = RunInfo(*model, *as_json); });
}

}  // namespace formiga::cli
