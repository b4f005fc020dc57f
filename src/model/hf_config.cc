// ConfigFromHfJson / ConfigFromHfDir: ModelConfig from a Hugging Face
// config.json. Reads both the transformers 4.x spelling (rope_theta,
// rope_scaling, rope_local_base_freq, sliding_window_pattern) and the 5.x one
// (rope_parameters, possibly per layer type; layer_types), and the two falcon
// generations (RefinedWeb* with n_head/n_layer, and "falcon").
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace formiga {
namespace {

using json = nlohmann::json;

constexpr const char* kSupportedTypes =
    "llama, mistral, qwen2, gemma3_text, gemma3, falcon, RefinedWeb, RefinedWebModel, gpt2";

// First present, non-null key among `keys`, as T; `def` when none is.
template <class T>
Result<T> Get(const json& j, std::initializer_list<const char*> keys, T def) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) continue;
    try {
      return it->get<T>();
    } catch (const json::exception& e) {
      return Status::InvalidArgument(std::string("config.json: key '") + k + "' has the wrong type (" +
                                     it->type_name() + "): " + e.what());
    }
  }
  return def;
}

template <class T>
Result<T> Require(const json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end() && !it->is_null()) return Get<T>(j, {k}, T{});
  }
  std::string names;
  for (const char* k : keys) names += (names.empty() ? "'" : " or '") + std::string(k) + "'";
  return Status::InvalidArgument("config.json: missing required key " + names);
}

// Reads a rope scaling object ({"rope_type"/"type": ..., "factor": ...}).
Status ReadRopeScaling(const json& rs, ModelConfig* c) {
  if (!rs.is_object()) return Status::Ok();
  FORMIGA_ASSIGN_OR_RETURN(std::string type, Get<std::string>(rs, {"rope_type", "type"}, "default"));
  if (type == "default" || type.empty()) return Status::Ok();
  if (type == "linear") c->rope_scaling = RopeScaling::kLinear;
  else if (type == "yarn") c->rope_scaling = RopeScaling::kYarn;
  else if (type == "llama3") c->rope_scaling = RopeScaling::kLlama3;
  else return Status::Unsupported("config.json: rope scaling type '" + type + "' (supported: linear, yarn, llama3)");
  FORMIGA_ASSIGN_OR_RETURN(c->rope_scaling_factor, Get<double>(rs, {"factor"}, 1.0));
  FORMIGA_ASSIGN_OR_RETURN(c->rope_original_context, Get<int64_t>(rs, {"original_max_position_embeddings"}, 0));
  FORMIGA_ASSIGN_OR_RETURN(c->rope_low_freq_factor, Get<double>(rs, {"low_freq_factor"}, 1.0));
  FORMIGA_ASSIGN_OR_RETURN(c->rope_high_freq_factor, Get<double>(rs, {"high_freq_factor"}, 4.0));
  return Status::Ok();
}

// rope_theta and rope scaling: transformers 5 nests them in rope_parameters
// (per layer type for gemma3: "full_attention" / "sliding_attention").
Status ReadRope(const json& j, ModelConfig* c) {
  FORMIGA_ASSIGN_OR_RETURN(c->rope_theta, Get<double>(j, {"rope_theta"}, c->rope_theta));
  FORMIGA_ASSIGN_OR_RETURN(c->rope_theta_local, Get<double>(j, {"rope_local_base_freq"}, c->rope_theta_local));
  if (auto it = j.find("rope_scaling"); it != j.end()) FORMIGA_RETURN_IF_ERROR(ReadRopeScaling(*it, c));
  auto rp = j.find("rope_parameters");
  if (rp == j.end() || !rp->is_object()) return Status::Ok();
  const json* global = &*rp;
  if (auto full = rp->find("full_attention"); full != rp->end() && full->is_object()) {
    global = &*full;
    if (auto local = rp->find("sliding_attention"); local != rp->end() && local->is_object()) {
      FORMIGA_ASSIGN_OR_RETURN(c->rope_theta_local, Get<double>(*local, {"rope_theta"}, c->rope_theta_local));
    }
  }
  FORMIGA_ASSIGN_OR_RETURN(c->rope_theta, Get<double>(*global, {"rope_theta"}, c->rope_theta));
  return ReadRopeScaling(*global, c);
}

Status ReadLlamaLike(const json& j, ModelConfig* c) {
  FORMIGA_ASSIGN_OR_RETURN(c->vocab_size, Require<int64_t>(j, {"vocab_size"}));
  FORMIGA_ASSIGN_OR_RETURN(c->hidden_size, Require<int64_t>(j, {"hidden_size"}));
  FORMIGA_ASSIGN_OR_RETURN(c->n_layers, Require<int64_t>(j, {"num_hidden_layers"}));
  FORMIGA_ASSIGN_OR_RETURN(c->n_heads, Require<int64_t>(j, {"num_attention_heads"}));
  FORMIGA_ASSIGN_OR_RETURN(c->n_kv_heads, Get<int64_t>(j, {"num_key_value_heads"}, c->n_heads));
  const int64_t def_head_dim = c->n_heads > 0 ? c->hidden_size / c->n_heads : 0;
  FORMIGA_ASSIGN_OR_RETURN(c->head_dim, Get<int64_t>(j, {"head_dim"}, def_head_dim));
  FORMIGA_ASSIGN_OR_RETURN(c->ffn_size, Require<int64_t>(j, {"intermediate_size"}));
  FORMIGA_ASSIGN_OR_RETURN(c->context_length, Get<int64_t>(j, {"max_position_embeddings"}, 0));
  FORMIGA_ASSIGN_OR_RETURN(c->norm_eps, Get<double>(j, {"rms_norm_eps"}, 1e-6));
  return ReadRope(j, c);
}

Result<ModelConfig> FromLlama(const json& j, bool mistral) {
  ModelConfig c;
  c.arch = Arch::kLlama;  // llama.cpp converts mistral checkpoints to arch "llama"
  FORMIGA_RETURN_IF_ERROR(ReadLlamaLike(j, &c));
  FORMIGA_ASSIGN_OR_RETURN(c.tied_embeddings, Get<bool>(j, {"tie_word_embeddings"}, false));
  if (mistral) {
    FORMIGA_ASSIGN_OR_RETURN(c.sliding_window, Get<int64_t>(j, {"sliding_window"}, 0));
  }
  return c;
}

Result<ModelConfig> FromQwen2(const json& j) {
  ModelConfig c;
  c.arch = Arch::kQwen2;
  c.qkv_bias = true;
  FORMIGA_RETURN_IF_ERROR(ReadLlamaLike(j, &c));
  FORMIGA_ASSIGN_OR_RETURN(c.tied_embeddings, Get<bool>(j, {"tie_word_embeddings"}, false));
  // NOTE: Qwen2 configs carry sliding_window even when it is off; only
  // use_sliding_window=true turns it on.
  FORMIGA_ASSIGN_OR_RETURN(bool use_swa, Get<bool>(j, {"use_sliding_window"}, false));
  if (use_swa) {
    FORMIGA_ASSIGN_OR_RETURN(c.sliding_window, Get<int64_t>(j, {"sliding_window"}, 0));
  }
  return c;
}

Result<ModelConfig> FromGemma3(const json& j) {
  ModelConfig c;
  c.arch = Arch::kGemma3;
  c.rope_theta = 1e6;
  c.rope_theta_local = 10000.0;
  FORMIGA_RETURN_IF_ERROR(ReadLlamaLike(j, &c));
  FORMIGA_ASSIGN_OR_RETURN(c.tied_embeddings, Get<bool>(j, {"tie_word_embeddings"}, true));
  FORMIGA_ASSIGN_OR_RETURN(c.sliding_window, Get<int64_t>(j, {"sliding_window"}, 4096));
  FORMIGA_ASSIGN_OR_RETURN(c.sliding_window_pattern,
                           Get<int64_t>(j, {"sliding_window_pattern", "_sliding_window_pattern"}, 6));
  // transformers 5 lists layer types; the pattern is the distance between global layers.
  if (auto lt = j.find("layer_types"); lt != j.end() && lt->is_array() && !lt->empty()) {
    int64_t first_global = -1;
    for (size_t i = 0; i < lt->size(); ++i) {
      if ((*lt)[i] == "full_attention") {
        first_global = static_cast<int64_t>(i);
        break;
      }
    }
    c.sliding_window_pattern = first_global < 0 ? 0 : first_global + 1;
    for (size_t i = 0; i < lt->size(); ++i) {
      const bool global = (*lt)[i] == "full_attention";
      if (global == c.IsSlidingLayer(static_cast<int64_t>(i))) {
        return Status::Unsupported("config.json: gemma3 layer_types is not a regular 'every Nth layer is "
                                   "global' pattern (layer " + std::to_string(i) + ")");
      }
    }
  }
  FORMIGA_ASSIGN_OR_RETURN(c.query_pre_attn_scalar,
                           Get<double>(j, {"query_pre_attn_scalar"}, static_cast<double>(c.head_dim)));
  FORMIGA_ASSIGN_OR_RETURN(c.attn_logit_softcap, Get<double>(j, {"attn_logit_softcapping"}, 0.0));
  FORMIGA_ASSIGN_OR_RETURN(c.final_logit_softcap, Get<double>(j, {"final_logit_softcapping"}, 0.0));
  c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
  return c;
}

// Falcon: the "falcon" model_type (transformers) and the original remote-code
// "RefinedWebModel" (7B: multi-query, one norm) / "RefinedWeb" (40B/180B: new
// decoder architecture, grouped KV heads, two norms).
Result<ModelConfig> FromFalcon(const json& j, const std::string& model_type) {
  ModelConfig c;
  c.arch = Arch::kFalcon;
  FORMIGA_ASSIGN_OR_RETURN(c.vocab_size, Require<int64_t>(j, {"vocab_size"}));
  FORMIGA_ASSIGN_OR_RETURN(c.hidden_size, Require<int64_t>(j, {"hidden_size", "n_embed"}));
  FORMIGA_ASSIGN_OR_RETURN(c.n_layers, Require<int64_t>(j, {"num_hidden_layers", "n_layer"}));
  FORMIGA_ASSIGN_OR_RETURN(c.n_heads, Require<int64_t>(j, {"num_attention_heads", "n_head"}));
  FORMIGA_ASSIGN_OR_RETURN(bool alibi, Get<bool>(j, {"alibi"}, false));
  if (alibi) {
    return Status::Unsupported("config.json: falcon with alibi positions (falcon-rw-*) is not supported; "
                               "only rotary falcon models (7B/40B/180B) are");
  }
  FORMIGA_ASSIGN_OR_RETURN(c.falcon_new_arch,
                           Get<bool>(j, {"new_decoder_architecture"}, model_type == "RefinedWeb"));
  FORMIGA_ASSIGN_OR_RETURN(bool multi_query, Get<bool>(j, {"multi_query"}, model_type != "RefinedWeb"));
  FORMIGA_ASSIGN_OR_RETURN(int64_t kv, Get<int64_t>(j, {"num_kv_heads", "n_head_kv"}, c.n_heads));
  // NOTE: same rule as transformers' FalconAttention: the new architecture
  // uses num_kv_heads; otherwise multi_query means one KV head.
  c.n_kv_heads = c.falcon_new_arch ? kv : (multi_query ? 1 : c.n_heads);
  c.head_dim = c.n_heads > 0 ? c.hidden_size / c.n_heads : 0;
  FORMIGA_ASSIGN_OR_RETURN(c.ffn_size, Get<int64_t>(j, {"ffn_hidden_size"}, 4 * c.hidden_size));
  FORMIGA_ASSIGN_OR_RETURN(c.context_length, Get<int64_t>(j, {"max_position_embeddings"}, 2048));
  FORMIGA_ASSIGN_OR_RETURN(c.norm_eps, Get<double>(j, {"layer_norm_epsilon"}, 1e-5));
  FORMIGA_ASSIGN_OR_RETURN(c.parallel_attn, Get<bool>(j, {"parallel_attn"}, true));
  FORMIGA_ASSIGN_OR_RETURN(c.qkv_bias, Get<bool>(j, {"bias"}, false));
  if (c.qkv_bias) {
    return Status::Unsupported("config.json: falcon with bias=true is not supported (llama.cpp's falcon "
                               "has no matmul biases)");
  }
  if (!c.parallel_attn) {
    return Status::Unsupported("config.json: falcon with parallel_attn=false is not supported");
  }
  FORMIGA_ASSIGN_OR_RETURN(c.tied_embeddings, Get<bool>(j, {"tie_word_embeddings"}, true));
  FORMIGA_RETURN_IF_ERROR(ReadRope(j, &c));
  return c;
}

Result<ModelConfig> FromGpt2(const json& j) {
  ModelConfig c;
  c.arch = Arch::kGpt2;
  c.qkv_bias = true;
  c.tied_embeddings = true;
  FORMIGA_ASSIGN_OR_RETURN(c.vocab_size, Require<int64_t>(j, {"vocab_size"}));
  FORMIGA_ASSIGN_OR_RETURN(c.hidden_size, Require<int64_t>(j, {"n_embd", "hidden_size"}));
  FORMIGA_ASSIGN_OR_RETURN(c.n_layers, Require<int64_t>(j, {"n_layer", "num_hidden_layers"}));
  FORMIGA_ASSIGN_OR_RETURN(c.n_heads, Require<int64_t>(j, {"n_head", "num_attention_heads"}));
  c.n_kv_heads = c.n_heads;
  c.head_dim = c.n_heads > 0 ? c.hidden_size / c.n_heads : 0;
  FORMIGA_ASSIGN_OR_RETURN(c.ffn_size, Get<int64_t>(j, {"n_inner"}, 4 * c.hidden_size));
  FORMIGA_ASSIGN_OR_RETURN(c.context_length, Require<int64_t>(j, {"n_positions", "n_ctx"}));
  FORMIGA_ASSIGN_OR_RETURN(c.norm_eps, Get<double>(j, {"layer_norm_epsilon"}, 1e-5));
  return c;
}

}  // namespace

Result<ModelConfig> ConfigFromHfJson(const nlohmann::json& config_json) {
  if (!config_json.is_object()) return Status::InvalidArgument("config.json: the top level must be an object");
  std::string model_type;
  if (auto it = config_json.find("model_type"); it != config_json.end() && it->is_string()) {
    model_type = it->get<std::string>();
  }
  if (model_type.empty()) {
    return Status::InvalidArgument(std::string("config.json: no model_type (supported: ") + kSupportedTypes + ")");
  }
  Result<ModelConfig> r = Status::Internal("unreachable");
  if (model_type == "llama") {
    r = FromLlama(config_json, false);
  } else if (model_type == "mistral") {
    r = FromLlama(config_json, true);
  } else if (model_type == "qwen2") {
    r = FromQwen2(config_json);
  } else if (model_type == "gemma3_text") {
    r = FromGemma3(config_json);
  } else if (model_type == "gemma3") {
    // Multimodal Gemma 3: the language model's numbers sit under text_config.
    auto tc = config_json.find("text_config");
    if (tc == config_json.end() || !tc->is_object()) {
      return Status::InvalidArgument("config.json: model_type gemma3 without a text_config object");
    }
    r = FromGemma3(*tc);
  } else if (model_type == "falcon" || model_type == "RefinedWeb" || model_type == "RefinedWebModel") {
    r = FromFalcon(config_json, model_type);
  } else if (model_type == "gpt2") {
    r = FromGpt2(config_json);
  } else {
    return Status::Unsupported("config.json: model_type '" + model_type + "' is not supported (supported: " +
                               kSupportedTypes + ")");
  }
  if (!r.ok()) return r.status();
  ModelConfig c = std::move(r).value();
  if (c.name.empty()) {
    if (auto it = config_json.find("_name_or_path"); it != config_json.end() && it->is_string()) {
      c.name = it->get<std::string>();
    }
  }
  if (c.name.empty()) c.name = model_type;
  FORMIGA_RETURN_IF_ERROR(c.Validate());
  return c;
}

Result<ModelConfig> ConfigFromHfDir(const std::string& dir) {
  const std::string path = dir + "/config.json";
  std::ifstream in(path);
  if (!in) return Status::NotFound(path + ": cannot open (is " + dir + " a Hugging Face checkpoint folder?)");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Corruption(path + ": not valid JSON");
  Result<ModelConfig> r = ConfigFromHfJson(j);
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

}  // namespace formiga
