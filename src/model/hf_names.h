// Hugging Face parameter names -> GGUF tensor names (as llama.cpp's
// convert_hf_to_gguf.py names them), with the shape and the data transform
// that turns the HF tensor into the GGUF one.
//
// Shapes: HF lists a PyTorch Linear weight as [out, in] (row-major, `in`
// contiguous); GGUF lists the same bytes as ne {in, out}. So for most tensors
// the GGUF shape is the HF shape reversed and the bytes are unchanged.
//
// NOTE: rope layout. llama.cpp's converter permutes the rows of llama's (and
// mistral's) q_proj / k_proj so that each rotary pair is two ADJACENT
// elements ("normal" rope), while HF keeps the pair halves head_dim/2 apart
// (NeoX style). formiga permutes at load time too (HfTransform::kPermuteRope),
// so one llama code path with normal rope serves GGUF and HF checkpoints
// alike and a HF-loaded model matches the GGUF one bit for bit. qwen2, gemma3
// and falcon use NeoX-style rope in llama.cpp: their q/k are not permuted.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/config.h"

namespace formiga {

enum class HfTransform {
  kNone,         // same bytes
  kSkip,         // not a model weight formiga loads (rotary inv_freq buffers,
                 // a tied lm_head, a multimodal model's vision tower)
  kPermuteRope,  // llama q/k: rows regrouped per head from NeoX halves to
                 // adjacent pairs (heads = n_heads for q, n_kv_heads for k)
  kAddOne,       // gemma norms: HF stores w and computes x * (1 + w); GGUF stores 1 + w
  kFalconQkv,    // falcon new-arch fused QKV: HF groups rows per KV head
                 // [q.. q, k, v] x n_kv; GGUF has all q rows, then all k, then all v
  kTranspose,    // gpt2 Conv1D: HF stores [in, out]; GGUF wants [out][in] rows
};

const char* HfTransformName(HfTransform t);

struct HfTensorMapping {
  std::string gguf_name;            // "" when transform == kSkip
  std::vector<int64_t> gguf_shape;  // GGUF order (ne[0] first)
  HfTransform transform = HfTransform::kNone;
  int64_t rope_heads = 0;           // kPermuteRope: number of heads in the matrix
};

// Maps one HF parameter (name and shape as stored in the safetensors file).
// InvalidArgument naming the tensor if the name is not one this architecture
// has, or its shape does not match the config.
Result<HfTensorMapping> MapHfTensor(const ModelConfig& config, const std::string& hf_name,
                                    const std::vector<int64_t>& hf_shape);

// Applies `m.transform` to a row-major f32 tensor in HF layout (`hf_shape`),
// writing the GGUF-layout tensor into `out` (same element count).
// REQUIRES: m came from MapHfTensor for this config; m.transform != kSkip.
Status ApplyHfTransform(const ModelConfig& config, const HfTensorMapping& m,
                        const std::vector<int64_t>& hf_shape, const float* in, float* out);

}  // namespace formiga
