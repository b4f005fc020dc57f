// WriteArchMetadata: ModelConfig -> "<arch>.*" GGUF keys (see gguf_metadata.h).
#include "model/gguf_metadata.h"

#include <string>

namespace formiga {

void WriteArchMetadata(const ModelConfig& c, GgufWriter& w) {
  const std::string p = std::string(ArchName(c.arch)) + ".";
  auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w.SetUint32(p + "context_length", u32(c.context_length));
  w.SetUint32(p + "embedding_length", u32(c.hidden_size));
  w.SetUint32(p + "block_count", u32(c.n_layers));
  w.SetUint32(p + "feed_forward_length", u32(c.ffn_size));
  w.SetUint32(p + "attention.head_count", u32(c.n_heads));
  w.SetUint32(p + "attention.head_count_kv", u32(c.n_kv_heads));
  if (c.arch == Arch::kFalcon || c.arch == Arch::kGpt2) {
    w.SetFloat32(p + "attention.layer_norm_epsilon", static_cast<float>(c.norm_eps));
  } else {
    w.SetFloat32(p + "attention.layer_norm_rms_epsilon", static_cast<float>(c.norm_eps));
  }
  if (c.arch != Arch::kGpt2) {
    w.SetFloat32(p + "rope.freq_base", static_cast<float>(c.rope_theta));
    w.SetUint32(p + "rope.dimension_count", u32(c.head_dim));
  }
  if (c.arch == Arch::kGemma3 || c.head_dim * c.n_heads != c.hidden_size) {
    w.SetUint32(p + "attention.key_length", u32(c.head_dim));
    w.SetUint32(p + "attention.value_length", u32(c.head_dim));
  }
  if (c.sliding_window > 0) w.SetUint32(p + "attention.sliding_window", u32(c.sliding_window));
  if (c.arch == Arch::kGemma3 && c.sliding_window_pattern > 0 && c.sliding_window_pattern != 6) {
    w.SetUint32(p + "attention.sliding_window_pattern", u32(c.sliding_window_pattern));
  }
  if (c.arch == Arch::kLlama) w.SetUint32(p + "vocab_size", u32(c.vocab_size));
  if (c.rope_scaling == RopeScaling::kLinear || c.rope_scaling == RopeScaling::kYarn) {
    w.SetString(p + "rope.scaling.type", c.rope_scaling == RopeScaling::kLinear ? "linear" : "yarn");
    w.SetFloat32(p + "rope.scaling.factor", static_cast<float>(c.rope_scaling_factor));
    if (c.rope_original_context > 0) {
      w.SetUint32(p + "rope.scaling.original_context_length", u32(c.rope_original_context));
    }
  }
  if (c.final_logit_softcap > 0) w.SetFloat32(p + "final_logit_softcapping", static_cast<float>(c.final_logit_softcap));
  if (c.attn_logit_softcap > 0) w.SetFloat32(p + "attn_logit_softcapping", static_cast<float>(c.attn_logit_softcap));
}

}  // namespace formiga
