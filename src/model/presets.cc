// Built-in model presets: the shapes of well-known models, for `formiga synth`
// and the planner. Numbers are from each model's published config.json (see
// docs/models.md for sources); parameter counts are checked against the
// published totals in presets_test.cc.
#include <cmath>
#include <string>
#include <vector>

#include "model/config.h"

namespace formiga {
namespace {

struct Shape {
  const char* name;
  Arch arch;
  int64_t vocab, hidden, layers, heads, kv_heads, head_dim, ffn, ctx;
  double eps, rope_theta;
  bool tied;
};

ModelConfig FromShape(const Shape& s) {
  ModelConfig c;
  c.name = s.name;
  c.arch = s.arch;
  c.vocab_size = s.vocab;
  c.hidden_size = s.hidden;
  c.n_layers = s.layers;
  c.n_heads = s.heads;
  c.n_kv_heads = s.kv_heads;
  c.head_dim = s.head_dim;
  c.ffn_size = s.ffn;
  c.context_length = s.ctx;
  c.norm_eps = s.eps;
  c.rope_theta = s.rope_theta;
  c.tied_embeddings = s.tied;
  if (s.arch == Arch::kQwen2 || s.arch == Arch::kGpt2) c.qkv_bias = true;
  if (s.arch == Arch::kFalcon) c.parallel_attn = true;
  return c;
}

std::vector<ModelConfig> BuildPresets() {
  // NOTE: falcon presets are untied: the official tiiuae checkpoints store
  // lm_head.weight, so llama.cpp's converter writes output.weight and the
  // GGUF (and its memory) holds both matrices. Published sizes (7.22B, 41.8B,
  // 179.5B) count it too.
  // clang-format off
  const Shape shapes[] = {
    // name              arch          vocab   hidden layers heads kv  hdim  ffn    ctx    eps    rope     tied
    {"gpt2-124m",        Arch::kGpt2,   50257,   768,  12,  12,  12,  64,  3072,  1024, 1e-5, 10000.0,  true},
    {"smollm2-135m",     Arch::kLlama,  49152,   576,  30,   9,   3,  64,  1536,  8192, 1e-5, 100000.0, true},
    {"gemma3-270m",      Arch::kGemma3, 262144,  640,  18,   4,   1, 256,  2048, 32768, 1e-6, 1e6,      true},
    {"qwen2.5-0.5b",     Arch::kQwen2,  151936,  896,  24,  14,   2,  64,  4864, 32768, 1e-6, 1e6,      true},
    {"tinyllama-1.1b",   Arch::kLlama,  32000,  2048,  22,  32,   4,  64,  5632,  2048, 1e-5, 10000.0,  false},
    {"llama-7b",         Arch::kLlama,  32000,  4096,  32,  32,  32, 128, 11008,  2048, 1e-6, 10000.0,  false},
    {"llama-13b",        Arch::kLlama,  32000,  5120,  40,  40,  40, 128, 13824,  2048, 1e-6, 10000.0,  false},
    {"llama-33b",        Arch::kLlama,  32000,  6656,  60,  52,  52, 128, 17920,  2048, 1e-6, 10000.0,  false},
    {"llama-65b",        Arch::kLlama,  32000,  8192,  80,  64,  64, 128, 22016,  2048, 1e-5, 10000.0,  false},
    {"llama-2-7b",       Arch::kLlama,  32000,  4096,  32,  32,  32, 128, 11008,  4096, 1e-5, 10000.0,  false},
    {"llama-2-13b",      Arch::kLlama,  32000,  5120,  40,  40,  40, 128, 13824,  4096, 1e-5, 10000.0,  false},
    {"llama-2-70b",      Arch::kLlama,  32000,  8192,  80,  64,   8, 128, 28672,  4096, 1e-5, 10000.0,  false},
    {"llama-3-8b",       Arch::kLlama,  128256, 4096,  32,  32,   8, 128, 14336,  8192, 1e-5, 500000.0, false},
    {"llama-3-70b",      Arch::kLlama,  128256, 8192,  80,  64,   8, 128, 28672,  8192, 1e-5, 500000.0, false},
    {"mistral-7b",       Arch::kLlama,  32000,  4096,  32,  32,   8, 128, 14336, 32768, 1e-5, 10000.0,  false},
    {"qwen2.5-7b",       Arch::kQwen2,  152064, 3584,  28,  28,   4, 128, 18944, 32768, 1e-6, 1e6,      false},
    {"falcon-7b",        Arch::kFalcon, 65024,  4544,  32,  71,   1,  64, 18176,  2048, 1e-5, 10000.0,  false},
    {"falcon-40b",       Arch::kFalcon, 65024,  8192,  60, 128,   8,  64, 32768,  2048, 1e-5, 10000.0,  false},
    {"falcon-180b",      Arch::kFalcon, 65024, 14848,  80, 232,   8,  64, 59392,  2048, 1e-5, 10000.0,  false},
  };
  // clang-format on
  std::vector<ModelConfig> out;
  for (const Shape& s : shapes) {
    ModelConfig c = FromShape(s);
    const std::string n = c.name;
    if (n == "gemma3-270m") {
      c.rope_theta_local = 10000.0;
      c.sliding_window = 512;
      c.sliding_window_pattern = 6;
      c.query_pre_attn_scalar = 256;
      c.embedding_scale = std::sqrt(640.0);
    } else if (n == "mistral-7b") {
      c.sliding_window = 4096;  // Mistral-7B-v0.1
    } else if (n == "falcon-40b" || n == "falcon-180b") {
      c.falcon_new_arch = true;
    }
    out.push_back(std::move(c));
  }
  return out;
}

const std::vector<ModelConfig>& Presets() {
  static const std::vector<ModelConfig> presets = BuildPresets();
  return presets;
}

}  // namespace

Result<ModelConfig> FindPreset(const std::string& name) {
  for (const ModelConfig& c : Presets()) {
    if (c.name == name) return c;
  }
  std::string names;
  for (const std::string& n : PresetNames()) names += (names.empty() ? "" : ", ") + n;
  return Status::NotFound("no model preset named '" + name + "' (presets: " + names + ")");
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const ModelConfig& c : Presets()) names.push_back(c.name);
  return names;
}

}  // namespace formiga
