// Weight bytes of a model, tensor by tensor, for a given storage type: exact
// for GGUF quantization mixes (llama.cpp's per-tensor rules through
// PlanQuantization, not an average bits-per-weight), or as stored in a GGUF.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"

namespace formiga {
class GgufFile;
}

namespace formiga::planner {

struct TensorBytes {
  std::string name;
  int64_t layer = -1;  // blk.N -> N; -1 for token_embd / output / output_norm
  DType type = DType::kF32;
  int64_t elements = 0;
  uint64_t bytes = 0;
};

struct ModelWeights {
  std::string type;                   // "q4_k_m", "f16", ..., "nf4", or "file" (as stored)
  std::vector<TensorBytes> tensors;   // file order
  std::vector<uint64_t> layer_bytes;  // per block
  uint64_t embedding_bytes = 0;       // token_embd.weight
  uint64_t output_bytes = 0;          // output.weight (0 when tied) + output_norm
  uint64_t total_bytes = 0;
  int64_t parameters = 0;
  bool tied_embeddings = false;

  double bits_per_weight() const {
    return parameters ? 8.0 * static_cast<double>(total_bytes) / static_cast<double>(parameters) : 0;
  }
};

// The weight types the planner knows: GGUF presets (q8_0, q6_k, q5_k_m,
// q4_k_m, q4_0, q3_k_m, q2_k, f16, bf16, f32, ...) and "nf4" (bitsandbytes
// 4-bit as QLoRA stores it: 4 bits + an absmax per 64 weights, double-
// quantized to 8 bits = 4.127 bpw, on the block matrices only).
// Best quality first, as `--quant auto` tries them.
std::vector<std::string> AutoQuantCandidates();

// Tensors of `config` (ModelTensors) stored as `type`: a GGUF preset planned
// by PlanQuantization from an f16 original (1-D tensors f32), or nf4.
Result<ModelWeights> WeightsForConfig(const ModelConfig& config, const std::string& type);
// The tensors of a GGUF file as stored (`type` empty or "file"), or as
// re-quantized to a preset.
Result<ModelWeights> WeightsFromGguf(const GgufFile& file, const ModelConfig& config, const std::string& type);

// Parameters of the adapted block matrices for LoRA rank r: r * (d_in + d_out)
// for every 2-D weight of every block (attention and MLP projections, as the
// QLoRA paper adapts all linear layers).
int64_t LoraParameters(const ModelConfig& config, int64_t rank);

// Layer index of a GGUF tensor name ("blk.12.attn_q.weight" -> 12), or -1.
int64_t LayerOfTensor(const std::string& name);

}  // namespace formiga::planner
