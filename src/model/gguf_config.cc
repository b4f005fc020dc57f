// ConfigFromGguf: ModelConfig from GGUF metadata as llama.cpp writes it
// ("<arch>.embedding_length", ...), plus the facts llama.cpp does not store as
// keys but infers (tied embeddings from a missing output.weight, gemma3's
// sliding-window pattern and local rope base).
#include <cmath>
#include <string>

#include "formats/gguf.h"
#include "model/config.h"

namespace formiga {
namespace {

// Reads an optional integer key; `def` when absent; an error when of a wrong type.
Result<int64_t> OptInt(const GgufFile& f, const std::string& key, int64_t def) {
  if (f.Find(key) == nullptr) return def;
  return f.GetInt(key);
}
Result<double> OptFloat(const GgufFile& f, const std::string& key, double def) {
  if (f.Find(key) == nullptr) return def;
  return f.GetFloat(key);
}

}  // namespace

Result<ModelConfig> ConfigFromGguf(const GgufFile& f) {
  const std::string where = f.path().empty() ? std::string("GGUF file") : f.path();
  const std::string arch_name = f.architecture();
  if (arch_name.empty()) {
    return Status::InvalidArgument(where + ": no general.architecture key; is this a model GGUF?");
  }
  Result<Arch> arch = ParseArch(arch_name);
  if (!arch.ok()) return arch.status().WithContext(where);

  ModelConfig c;
  c.arch = *arch;
  const std::string p = arch_name + ".";
  auto required = [&](const char* key) -> Result<int64_t> {
    Result<int64_t> v = f.GetInt(p + key);
    if (!v.ok()) return v.status().WithContext(where + ": required key " + p + key);
    return v;
  };
  if (const GgufValue* v = f.Find("general.name"); v != nullptr && v->type == GgufType::kString) {
    c.name = v->str;
  }

  FORMIGA_ASSIGN_OR_RETURN(c.hidden_size, required("embedding_length"));
  FORMIGA_ASSIGN_OR_RETURN(c.n_layers, required("block_count"));
  FORMIGA_ASSIGN_OR_RETURN(c.n_heads, required("attention.head_count"));
  FORMIGA_ASSIGN_OR_RETURN(c.ffn_size, required("feed_forward_length"));
  FORMIGA_ASSIGN_OR_RETURN(c.context_length, OptInt(f, p + "context_length", 0));
  FORMIGA_ASSIGN_OR_RETURN(c.n_kv_heads, OptInt(f, p + "attention.head_count_kv", c.n_heads));
  const int64_t default_head_dim = c.n_heads > 0 ? c.hidden_size / c.n_heads : 0;
  FORMIGA_ASSIGN_OR_RETURN(c.head_dim, OptInt(f, p + "attention.key_length", default_head_dim));

  // RMSNorm architectures store layer_norm_rms_epsilon, LayerNorm ones layer_norm_epsilon.
  if (f.Find(p + "attention.layer_norm_rms_epsilon") != nullptr) {
    FORMIGA_ASSIGN_OR_RETURN(c.norm_eps, f.GetFloat(p + "attention.layer_norm_rms_epsilon"));
  } else {
    FORMIGA_ASSIGN_OR_RETURN(c.norm_eps, OptFloat(f, p + "attention.layer_norm_epsilon", 1e-5));
  }
  FORMIGA_ASSIGN_OR_RETURN(c.rope_theta, OptFloat(f, p + "rope.freq_base", 10000.0));

  // Rope scaling: "rope.scaling.type" (none/linear/yarn); llama3-style scaling
  // is not a key but a rope_freqs.weight tensor holding the per-pair factors.
  if (const GgufValue* v = f.Find(p + "rope.scaling.type"); v != nullptr && v->type == GgufType::kString) {
    if (v->str == "linear") c.rope_scaling = RopeScaling::kLinear;
    else if (v->str == "yarn") c.rope_scaling = RopeScaling::kYarn;
    else if (v->str == "none" || v->str.empty()) c.rope_scaling = RopeScaling::kNone;
    else return Status::Unsupported(where + ": rope scaling type '" + v->str + "' (supported: none, linear, yarn)");
  }
  FORMIGA_ASSIGN_OR_RETURN(c.rope_scaling_factor, OptFloat(f, p + "rope.scaling.factor", 1.0));
  FORMIGA_ASSIGN_OR_RETURN(c.rope_original_context, OptInt(f, p + "rope.scaling.original_context_length", 0));
  if (c.rope_scaling == RopeScaling::kNone && f.FindTensor("rope_freqs.weight") != nullptr) {
    c.rope_scaling = RopeScaling::kLlama3;
  }
  if (c.rope_scaling == RopeScaling::kNone) c.rope_scaling_factor = 1.0;

  FORMIGA_ASSIGN_OR_RETURN(c.sliding_window, OptInt(f, p + "attention.sliding_window", 0));
  FORMIGA_ASSIGN_OR_RETURN(c.attn_logit_softcap, OptFloat(f, p + "attn_logit_softcapping", 0.0));
  FORMIGA_ASSIGN_OR_RETURN(c.final_logit_softcap, OptFloat(f, p + "final_logit_softcapping", 0.0));

  // Vocabulary: the tokenizer's token list is authoritative (llama.cpp takes
  // n_vocab from it); fall back to <arch>.vocab_size, then the embedding rows.
  if (const GgufValue* v = f.Find("tokenizer.ggml.tokens"); v != nullptr && v->type == GgufType::kArray) {
    c.vocab_size = static_cast<int64_t>(v->size());
  } else if (f.Find(p + "vocab_size") != nullptr) {
    FORMIGA_ASSIGN_OR_RETURN(c.vocab_size, f.GetInt(p + "vocab_size"));
  } else if (const GgufTensorInfo* t = f.FindTensor("token_embd.weight"); t != nullptr && t->shape.size() == 2) {
    c.vocab_size = t->shape[1];
  }
  // NOTE: llama.cpp has no "tied" key: a model without output.weight reuses
  // token_embd for the output projection.
  c.tied_embeddings = f.FindTensor("output.weight") == nullptr;

  switch (c.arch) {
    case Arch::kLlama:
      break;
    case Arch::kQwen2:
      c.qkv_bias = true;  // llama.cpp requires the q/k/v biases for qwen2
      break;
    case Arch::kGemma3: {
      // NOTE: llama.cpp hard-codes these for gemma3 (no GGUF keys): every 6th
      // layer is global, local layers use rope base 10000, embeddings are
      // scaled by sqrt(n_embd), and the attention scale is 1/sqrt(head_dim)
      // except for the 27B model (62 layers) which uses 1/sqrt(n_embd/n_head).
      FORMIGA_ASSIGN_OR_RETURN(c.sliding_window_pattern, OptInt(f, p + "attention.sliding_window_pattern", 6));
      c.rope_theta_local = 10000.0;
      c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
      c.query_pre_attn_scalar = c.n_layers == 62 && c.n_heads > 0
                                    ? static_cast<double>(c.hidden_size / c.n_heads)
                                    : static_cast<double>(c.head_dim);
      break;
    }
    case Arch::kFalcon:
      // llama.cpp's falcon graph is always parallel attention + MLP; the
      // 40B/180B "new decoder architecture" shows as a second norm per layer.
      c.parallel_attn = true;
      c.falcon_new_arch = f.FindTensor("blk.0.attn_norm_2.weight") != nullptr;
      c.qkv_bias = f.FindTensor("blk.0.attn_qkv.bias") != nullptr;
      break;
    case Arch::kGpt2:
      c.qkv_bias = true;
      break;
  }

  Status valid = c.Validate();
  if (!valid.ok()) return valid.WithContext(where);
  return c;
}

}  // namespace formiga
