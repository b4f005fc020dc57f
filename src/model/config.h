// ModelConfig: the hyper-parameters of a transformer, whatever file it came
// from (GGUF metadata, a Hugging Face config.json, or a built-in preset), and
// the list of tensors (GGUF names and shapes) that architecture has.
//
// The engine, the planner and `formiga synth` all read this one struct.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/dtype.h"
#include "core/status.h"

namespace formiga {

class GgufFile;

enum class Arch { kLlama, kQwen2, kGemma3, kFalcon, kGpt2 };

const char* ArchName(Arch arch);                 // GGUF general.architecture: "llama", "qwen2", "gemma3", "falcon", "gpt2"
Result<Arch> ParseArch(const std::string& name); // inverse of ArchName

enum class RopeScaling { kNone, kLinear, kYarn, kLlama3 };

struct ModelConfig {
  Arch arch = Arch::kLlama;
  std::string name;            // "SmolLM2-135M-Instruct", preset name, ...

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;     // n_embd
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;      // == n_heads without GQA; 1 for MQA
  int64_t head_dim = 0;        // usually hidden_size / n_heads; gemma3: 256
  int64_t ffn_size = 0;        // intermediate size
  int64_t context_length = 0;  // trained context

  double norm_eps = 1e-5;      // RMSNorm or LayerNorm epsilon
  double rope_theta = 10000.0; // rope frequency base (global layers)
  double rope_theta_local = 0; // gemma3 sliding-window layers (10000); 0 = same as rope_theta
  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_scaling_factor = 1.0;
  int64_t rope_original_context = 0;  // yarn / llama3
  double rope_low_freq_factor = 1.0;  // llama3
  double rope_high_freq_factor = 4.0; // llama3

  int64_t sliding_window = 0;         // 0 = none; mistral 4096; gemma3 512 on local layers
  int64_t sliding_window_pattern = 0; // gemma3: every Nth layer is global (6); 0 = all layers same

  bool tied_embeddings = false;  // output projection shares token_embd
  bool qkv_bias = false;         // qwen2: bias on q, k, v projections
  bool parallel_attn = false;    // falcon: attention and MLP read the same normed input
  bool falcon_new_arch = false;  // falcon-40b/180b: separate ln_attn / ln_mlp norms
  double attn_logit_softcap = 0; // gemma2-style soft-capping, 0 = off
  double final_logit_softcap = 0;
  double query_pre_attn_scalar = 0;  // gemma3 attention scale = 1/sqrt(this); 0 = head_dim
  double embedding_scale = 1.0;      // gemma3: sqrt(hidden_size)

  // True if layer `il` uses the sliding window (gemma3 local layers, mistral all layers).
  bool IsSlidingLayer(int64_t il) const;
  // Checks that the numbers are consistent (positive sizes, heads divide, ...).
  Status Validate() const;
};

// One tensor of an architecture, with its GGUF name and shape (ne[0] first,
// i.e. the contiguous dimension first, as GGUF stores it).
struct TensorSpec {
  std::string name;            // "token_embd.weight", "blk.3.attn_q.weight", ...
  std::vector<int64_t> shape;  // GGUF order: {n_in, n_out} for a matrix
  bool is_matrix = false;      // a 2-D weight a matmul reads (quantizable)
};

// The tensors a model of this config has, in the order llama.cpp writes them.
std::vector<TensorSpec> ModelTensors(const ModelConfig& config);

// Total parameter count (sum of ModelTensors element counts).
int64_t CountParameters(const ModelConfig& config);

// From GGUF metadata ("<arch>.embedding_length", ...).
Result<ModelConfig> ConfigFromGguf(const GgufFile& file);
// From a Hugging Face config.json (parsed).
Result<ModelConfig> ConfigFromHfJson(const nlohmann::json& config_json);
// From a Hugging Face checkpoint folder (reads DIR/config.json).
Result<ModelConfig> ConfigFromHfDir(const std::string& dir);

// Built-in presets ("smollm2-135m", "llama-7b", "falcon-180b", ...).
Result<ModelConfig> FindPreset(const std::string& name);
std::vector<std::string> PresetNames();

}  // namespace formiga
