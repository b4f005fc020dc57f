// HF -> GGUF tensor names, shapes and transforms (see hf_names.h).
#include "model/hf_names.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace formiga {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Removes the first matching prefix; true if one matched.
bool StripPrefix(std::string_view* s, std::initializer_list<std::string_view> prefixes) {
  for (std::string_view p : prefixes) {
    if (StartsWith(*s, p)) {
      s->remove_prefix(p.size());
      return true;
    }
  }
  return false;
}

// "layers.12.self_attn.q_proj.weight" with stem "layers." -> il 12, rest "self_attn.q_proj.weight".
bool SplitLayer(std::string_view s, std::string_view stem, int64_t* il, std::string_view* rest) {
  if (!StartsWith(s, stem)) return false;
  s.remove_prefix(stem.size());
  size_t dot = s.find('.');
  if (dot == 0 || dot == std::string_view::npos) return false;
  int64_t v = 0;
  for (char ch : s.substr(0, dot)) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
    if (v > (1 << 20)) return false;
  }
  *il = v;
  *rest = s.substr(dot + 1);
  return true;
}

struct NameRule {
  const char* hf;    // suffix after the layer prefix (or the whole global name)
  const char* gguf;  // GGUF suffix after "blk.N." (or the whole global name)
  HfTransform transform;
};

// Per-layer names of llama / mistral / qwen2 ("model.layers.N.<hf>").
constexpr NameRule kLlamaLayer[] = {
    {"input_layernorm.weight", "attn_norm.weight", HfTransform::kNone},
    {"self_attn.q_proj.weight", "attn_q.weight", HfTransform::kPermuteRope},
    {"self_attn.k_proj.weight", "attn_k.weight", HfTransform::kPermuteRope},
    {"self_attn.v_proj.weight", "attn_v.weight", HfTransform::kNone},
    {"self_attn.o_proj.weight", "attn_output.weight", HfTransform::kNone},
    {"self_attn.q_proj.bias", "attn_q.bias", HfTransform::kNone},
    {"self_attn.k_proj.bias", "attn_k.bias", HfTransform::kNone},
    {"self_attn.v_proj.bias", "attn_v.bias", HfTransform::kNone},
    {"post_attention_layernorm.weight", "ffn_norm.weight", HfTransform::kNone},
    {"mlp.gate_proj.weight", "ffn_gate.weight", HfTransform::kNone},
    {"mlp.up_proj.weight", "ffn_up.weight", HfTransform::kNone},
    {"mlp.down_proj.weight", "ffn_down.weight", HfTransform::kNone},
    {"self_attn.rotary_emb.inv_freq", "", HfTransform::kSkip},
};

constexpr NameRule kGemma3Layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", HfTransform::kAddOne},
    {"self_attn.q_proj.weight", "attn_q.weight", HfTransform::kNone},
    {"self_attn.k_proj.weight", "attn_k.weight", HfTransform::kNone},
    {"self_attn.v_proj.weight", "attn_v.weight", HfTransform::kNone},
    {"self_attn.o_proj.weight", "attn_output.weight", HfTransform::kNone},
    {"self_attn.q_norm.weight", "attn_q_norm.weight", HfTransform::kAddOne},
    {"self_attn.k_norm.weight", "attn_k_norm.weight", HfTransform::kAddOne},
    {"post_attention_layernorm.weight", "post_attention_norm.weight", HfTransform::kAddOne},
    {"pre_feedforward_layernorm.weight", "ffn_norm.weight", HfTransform::kAddOne},
    {"post_feedforward_layernorm.weight", "post_ffw_norm.weight", HfTransform::kAddOne},
    {"mlp.gate_proj.weight", "ffn_gate.weight", HfTransform::kNone},
    {"mlp.up_proj.weight", "ffn_up.weight", HfTransform::kNone},
    {"mlp.down_proj.weight", "ffn_down.weight", HfTransform::kNone},
};

constexpr NameRule kFalconLayer[] = {
    {"input_layernorm.weight", "attn_norm.weight", HfTransform::kNone},  // 7B: one norm
    {"input_layernorm.bias", "attn_norm.bias", HfTransform::kNone},
    // 40B/180B: two norms. NOTE: llama.cpp names the MLP's norm (ln_mlp)
    // attn_norm and the attention's (ln_attn) attn_norm_2; falcon.cc reads them so.
    {"ln_mlp.weight", "attn_norm.weight", HfTransform::kNone},
    {"ln_mlp.bias", "attn_norm.bias", HfTransform::kNone},
    {"ln_attn.weight", "attn_norm_2.weight", HfTransform::kNone},
    {"ln_attn.bias", "attn_norm_2.bias", HfTransform::kNone},
    {"self_attention.query_key_value.weight", "attn_qkv.weight", HfTransform::kFalconQkv},
    {"self_attention.dense.weight", "attn_output.weight", HfTransform::kNone},
    {"mlp.dense_h_to_4h.weight", "ffn_up.weight", HfTransform::kNone},
    {"mlp.dense_4h_to_h.weight", "ffn_down.weight", HfTransform::kNone},
    {"self_attention.rotary_emb.inv_freq", "", HfTransform::kSkip},
};

constexpr NameRule kGpt2Layer[] = {
    {"ln_1.weight", "attn_norm.weight", HfTransform::kNone},
    {"ln_1.bias", "attn_norm.bias", HfTransform::kNone},
    {"attn.c_attn.weight", "attn_qkv.weight", HfTransform::kTranspose},
    {"attn.c_attn.bias", "attn_qkv.bias", HfTransform::kNone},
    {"attn.c_proj.weight", "attn_output.weight", HfTransform::kTranspose},
    {"attn.c_proj.bias", "attn_output.bias", HfTransform::kNone},
    {"ln_2.weight", "ffn_norm.weight", HfTransform::kNone},
    {"ln_2.bias", "ffn_norm.bias", HfTransform::kNone},
    {"mlp.c_fc.weight", "ffn_up.weight", HfTransform::kTranspose},
    {"mlp.c_fc.bias", "ffn_up.bias", HfTransform::kNone},
    {"mlp.c_proj.weight", "ffn_down.weight", HfTransform::kTranspose},
    {"mlp.c_proj.bias", "ffn_down.bias", HfTransform::kNone},
    {"attn.bias", "", HfTransform::kSkip},         // causal-mask buffer of old checkpoints
    {"attn.masked_bias", "", HfTransform::kSkip},
};

template <size_t N>
const NameRule* FindRule(const NameRule (&rules)[N], std::string_view name) {
  for (const NameRule& r : rules) {
    if (name == r.hf) return &r;
  }
  return nullptr;
}

std::string ShapeString(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

const char* HfTransformName(HfTransform t) {
  switch (t) {
    case HfTransform::kNone: return "none";
    case HfTransform::kSkip: return "skip";
    case HfTransform::kPermuteRope: return "permute_rope";
    case HfTransform::kAddOne: return "add_one";
    case HfTransform::kFalconQkv: return "falcon_qkv";
    case HfTransform::kTranspose: return "transpose";
  }
  return "?";
}

Result<HfTensorMapping> MapHfTensor(const ModelConfig& c, const std::string& hf_name,
                                    const std::vector<int64_t>& hf_shape) {
  auto unknown = [&] {
    return Status::InvalidArgument("HF tensor '" + hf_name + "' is not a known " + ArchName(c.arch) +
                                   " parameter name");
  };
  HfTensorMapping m;
  std::string_view s = hf_name;
  int64_t il = -1;
  std::string_view rest;
  const NameRule* rule = nullptr;
  std::string global;  // GGUF name of a non-layer tensor

  switch (c.arch) {
    case Arch::kLlama:
    case Arch::kQwen2:
    case Arch::kGemma3: {
      if (c.arch == Arch::kGemma3 &&
          (StartsWith(s, "vision_tower.") || StartsWith(s, "model.vision_tower.") ||
           StartsWith(s, "multi_modal_projector.") || StartsWith(s, "model.multi_modal_projector."))) {
        m.transform = HfTransform::kSkip;
        return m;
      }
      if (s == "lm_head.weight" || s == "language_model.lm_head.weight") {
        if (c.tied_embeddings) {
          m.transform = HfTransform::kSkip;
          return m;
        }
        global = "output.weight";
        break;
      }
      // transformers 5 multimodal gemma3: model.language_model.*; 4.x: language_model.model.*
      StripPrefix(&s, {"model.language_model.", "language_model.model.", "model."});
      if (s == "embed_tokens.weight") {
        global = "token_embd.weight";
      } else if (s == "norm.weight") {
        global = "output_norm.weight";
        if (c.arch == Arch::kGemma3) m.transform = HfTransform::kAddOne;
      } else if (s == "rotary_emb.inv_freq") {
        m.transform = HfTransform::kSkip;
        return m;
      } else if (SplitLayer(s, "layers.", &il, &rest)) {
        rule = c.arch == Arch::kGemma3 ? FindRule(kGemma3Layer, rest) : FindRule(kLlamaLayer, rest);
      } else {
        return unknown();
      }
      break;
    }
    case Arch::kFalcon: {
      if (s == "lm_head.weight") {
        if (c.tied_embeddings) {
          m.transform = HfTransform::kSkip;
          return m;
        }
        global = "output.weight";
        break;
      }
      StripPrefix(&s, {"transformer."});
      if (s == "word_embeddings.weight") global = "token_embd.weight";
      else if (s == "ln_f.weight") global = "output_norm.weight";
      else if (s == "ln_f.bias") global = "output_norm.bias";
      else if (SplitLayer(s, "h.", &il, &rest)) rule = FindRule(kFalconLayer, rest);
      else return unknown();
      break;
    }
    case Arch::kGpt2: {
      if (s == "lm_head.weight") {
        m.transform = HfTransform::kSkip;  // gpt2 always ties lm_head to wte
        return m;
      }
      StripPrefix(&s, {"transformer."});
      if (s == "wte.weight") global = "token_embd.weight";
      else if (s == "wpe.weight") global = "position_embd.weight";
      else if (s == "ln_f.weight") global = "output_norm.weight";
      else if (s == "ln_f.bias") global = "output_norm.bias";
      else if (SplitLayer(s, "h.", &il, &rest)) rule = FindRule(kGpt2Layer, rest);
      else return unknown();
      break;
    }
  }

  if (il >= 0) {
    if (rule == nullptr) return unknown();
    m.transform = rule->transform;
    if (m.transform == HfTransform::kSkip) return m;
    if (il >= c.n_layers) {
      return Status::InvalidArgument("HF tensor '" + hf_name + "': layer " + std::to_string(il) +
                                     " but the config has " + std::to_string(c.n_layers) + " layers");
    }
    m.gguf_name = "blk." + std::to_string(il) + "." + rule->gguf;
  } else {
    m.gguf_name = global;
  }

  // Transform details that depend on the config.
  if (m.transform == HfTransform::kPermuteRope) {
    if (c.arch != Arch::kLlama) {
      m.transform = HfTransform::kNone;  // NeoX rope in llama.cpp: keep HF order
    } else {
      m.rope_heads = rest == "self_attn.q_proj.weight" ? c.n_heads : c.n_kv_heads;
    }
  }
  if (m.transform == HfTransform::kFalconQkv && !c.falcon_new_arch) {
    m.transform = HfTransform::kNone;  // falcon-7b already stores [all q, k, v]
  }

  // Shape: HF lists [out, in]; GGUF {in, out}. gpt2's Conv1D already is [in, out].
  m.gguf_shape = hf_shape;
  if (m.transform != HfTransform::kTranspose) std::reverse(m.gguf_shape.begin(), m.gguf_shape.end());

  // Check against the architecture's tensor list.
  const std::vector<TensorSpec> specs = ModelTensors(c);
  auto it = std::find_if(specs.begin(), specs.end(), [&](const TensorSpec& t) { return t.name == m.gguf_name; });
  if (it == specs.end()) {
    return Status::InvalidArgument("HF tensor '" + hf_name + "' maps to " + m.gguf_name + ", which a " +
                                   ArchName(c.arch) + " model with this config does not have");
  }
  if (it->shape != m.gguf_shape) {
    return Status::InvalidArgument("HF tensor '" + hf_name + "' has shape " + ShapeString(hf_shape) +
                                   " (GGUF " + ShapeString(m.gguf_shape) + "), but the config expects " +
                                   m.gguf_name + " " + ShapeString(it->shape));
  }
  return m;
}

Status ApplyHfTransform(const ModelConfig& c, const HfTensorMapping& m, const std::vector<int64_t>& hf_shape,
                        const float* in, float* out) {
  int64_t n = 1;
  for (int64_t d : hf_shape) n *= d;
  const int64_t rows = hf_shape.empty() ? 1 : hf_shape[0];
  const int64_t cols = rows > 0 ? n / rows : 0;
  switch (m.transform) {
    case HfTransform::kSkip:
      return Status::InvalidArgument("ApplyHfTransform: tensor is skipped, nothing to transform");
    case HfTransform::kNone:
      std::memcpy(out, in, static_cast<size_t>(n) * sizeof(float));
      return Status::Ok();
    case HfTransform::kAddOne:
      for (int64_t i = 0; i < n; ++i) out[i] = in[i] + 1.0f;
      return Status::Ok();
    case HfTransform::kTranspose:  // in [rows][cols] -> out [cols][rows]
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < cols; ++k) out[k * rows + r] = in[r * cols + k];
      }
      return Status::Ok();
    case HfTransform::kPermuteRope: {
      // Rows of each head: HF (half, j) at half * hd/2 + j -> GGUF 2 * j + half.
      const int64_t heads = m.rope_heads;
      if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0) {
        return Status::InvalidArgument("permute_rope: " + std::to_string(rows) + " rows do not split into " +
                                       std::to_string(heads) + " heads of even size");
      }
      const int64_t hd = rows / heads, half = hd / 2;
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t part = 0; part < 2; ++part) {
          for (int64_t j = 0; j < half; ++j) {
            const float* src = in + (h * hd + part * half + j) * cols;
            float* dst = out + (h * hd + 2 * j + part) * cols;
            std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(float));
          }
        }
      }
      return Status::Ok();
    }
    case HfTransform::kFalconQkv: {
      // HF rows: for each KV group g: q_per_kv query heads, 1 key head, 1 value head.
      const int64_t hd = c.head_dim, kv = c.n_kv_heads, qpk = c.n_heads / c.n_kv_heads;
      if (rows != (c.n_heads + 2 * kv) * hd) {
        return Status::InvalidArgument("falcon_qkv: " + std::to_string(rows) + " rows, expected " +
                                       std::to_string((c.n_heads + 2 * kv) * hd));
      }
      const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
      for (int64_t g = 0; g < kv; ++g) {
        const float* group = in + g * (qpk + 2) * hd * cols;
        std::memcpy(out + g * qpk * hd * cols, group, row_bytes * qpk * hd);  // q heads
        std::memcpy(out + (c.n_heads * hd + g * hd) * cols, group + qpk * hd * cols, row_bytes * hd);  // k
        std::memcpy(out + ((c.n_heads + kv) * hd + g * hd) * cols, group + (qpk + 1) * hd * cols,
                    row_bytes * hd);  // v
      }
      return Status::Ok();
    }
  }
  return Status::Internal("ApplyHfTransform: unknown transform");
}

}  // namespace formiga
