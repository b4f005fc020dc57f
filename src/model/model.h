// Model: one transformer architecture, written once against the Backend ops
// (DESIGN.md: one file per architecture — llama.cc (llama, mistral and
// qwen2, which only adds q/k/v biases), gemma3.cc, falcon.cc — readable like
// the paper).
//
// A forward pass takes a ragged batch (prefill chunks and decode tokens of
// many sequences, flattened) and writes logits only for the rows asked for.
//
// Ownership: a Model keeps views into the GgufFile it was loaded from (weights
// stay in the mapping); the file must outlive the model. Thread safety: one
// Forward at a time per Model (it owns its scratch buffers).
#pragma once

#include <cstdint>
#include <memory>

#include "core/status.h"
#include "kernels/backend.h"
#include "kernels/kv_cache.h"
#include "model/config.h"

namespace formiga {

class GgufFile;

struct ForwardBatch {
  const int32_t* tokens = nullptr;   // [T]
  AttentionBatch attn;               // positions, sequences, block tables, KV slots; attn.n_tokens = T
  const int32_t* logit_rows = nullptr;  // [R] which of the T tokens need logits (ascending)
  int64_t n_logit_rows = 0;          // R
};

class Model {
 public:
  virtual ~Model() = default;

  const ModelConfig& config() const { return config_; }

  // logits (R, vocab) for the batch's logit_rows. K/V of the batch's tokens
  // are written into `kv` at their slots.
  virtual Status Forward(const ForwardBatch& batch, KvCache& kv, float* logits) = 0;

  // The KV layout this model needs (KH, D) with the given block size and type.
  KvLayout kv_layout(int64_t block_size, DType type) const {
    return KvLayout{block_size, config_.n_kv_heads, config_.head_dim, type};
  }

 protected:
  explicit Model(ModelConfig config) : config_(std::move(config)) {}
  ModelConfig config_;
};

// Loads the architecture named by the file's metadata. `backend` must outlive
// the model. Unsupported architectures get an error naming them and the list
// of supported ones.
Result<std::unique_ptr<Model>> LoadModel(const GgufFile& file, Backend& backend);

// Per-architecture constructors (each in its own file).
Result<std::unique_ptr<Model>> LoadLlama(const GgufFile& file, const ModelConfig& config, Backend& backend);
Result<std::unique_ptr<Model>> LoadQwen2(const GgufFile& file, const ModelConfig& config, Backend& backend);
Result<std::unique_ptr<Model>> LoadGemma3(const GgufFile& file, const ModelConfig& config, Backend& backend);
Result<std::unique_ptr<Model>> LoadFalcon(const GgufFile& file, const ModelConfig& config, Backend& backend);

}  // namespace formiga
