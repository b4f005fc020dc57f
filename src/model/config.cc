// ModelConfig basics: architecture names, sliding-window layers, validation.
#include "model/config.h"

#include <string>

namespace formiga {

const char* ArchName(Arch arch) {
  switch (arch) {
    case Arch::kLlama: return "llama";
    case Arch::kQwen2: return "qwen2";
    case Arch::kGemma3: return "gemma3";
    case Arch::kFalcon: return "falcon";
    case Arch::kGpt2: return "gpt2";
  }
  return "unknown";
}

Result<Arch> ParseArch(const std::string& name) {
  for (Arch a : {Arch::kLlama, Arch::kQwen2, Arch::kGemma3, Arch::kFalcon, Arch::kGpt2}) {
    if (name == ArchName(a)) return a;
  }
  return Status::Unsupported("architecture '" + name +
                             "' is not supported (supported: llama, qwen2, gemma3, falcon, gpt2)");
}

bool ModelConfig::IsSlidingLayer(int64_t il) const {
  if (sliding_window <= 0) return false;
  // NOTE: gemma3 counts layers from 0 and makes layer il global when
  // (il + 1) % pattern == 0 (layers 5, 11, 17 for pattern 6), as llama.cpp and
  // transformers do. Without a pattern (mistral) every layer slides.
  if (sliding_window_pattern <= 0) return true;
  return (il + 1) % sliding_window_pattern != 0;
}

Status ModelConfig::Validate() const {
  auto bad = [this](const std::string& what) {
    return Status::InvalidArgument("model config '" + name + "' (" + ArchName(arch) + "): " + what);
  };
  if (vocab_size <= 0) return bad("vocab_size must be positive, got " + std::to_string(vocab_size));
  if (hidden_size <= 0) return bad("hidden_size must be positive, got " + std::to_string(hidden_size));
  if (n_layers <= 0) return bad("n_layers must be positive, got " + std::to_string(n_layers));
  if (n_heads <= 0) return bad("n_heads must be positive, got " + std::to_string(n_heads));
  if (n_kv_heads <= 0) return bad("n_kv_heads must be positive, got " + std::to_string(n_kv_heads));
  if (n_heads % n_kv_heads != 0) {
    return bad("n_heads (" + std::to_string(n_heads) + ") must be a multiple of n_kv_heads (" +
               std::to_string(n_kv_heads) + ")");
  }
  if (head_dim <= 0) return bad("head_dim must be positive, got " + std::to_string(head_dim));
  if (ffn_size <= 0) return bad("ffn_size must be positive, got " + std::to_string(ffn_size));
  if (context_length < 0) return bad("context_length must not be negative");
  if (!(norm_eps > 0)) return bad("norm_eps must be positive");
  if (!(rope_theta > 0)) return bad("rope_theta must be positive");
  if (sliding_window < 0 || sliding_window_pattern < 0) return bad("sliding window values must not be negative");
  if (arch == Arch::kGpt2 && context_length <= 0) {
    return bad("gpt2 needs context_length (the learned position table has one row per position)");
  }
  if ((arch == Arch::kGpt2 || arch == Arch::kFalcon) && n_heads * head_dim != hidden_size) {
    return bad("n_heads * head_dim must equal hidden_size for " + std::string(ArchName(arch)));
  }
  return Status::Ok();
}

}  // namespace formiga
