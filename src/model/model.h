// Model: one transformer architecture, written once against the Backend ops
// (DESIGN.md: one file per architecture — llama.cc (llama, mistral and
// qwen2, which only adds q/k/v biases), gemma3.cc, falcon.cc — readable like
// the paper).
//
// A forward pass takes a ragged batch (prefill chunks and decode tokens of
// many sequences, flattened) and writes logits only for the rows asked for.
//
// Placement (model/placement.h): each part — embedding, every layer, output
// head — runs on the backend the placement names; layers on a device backend
// have their weights uploaded at load and their KV arrays in its memory
// (NewKvCache), and the residual stream hops between backends.
//
// Ownership: a Model keeps views into the GgufFile it was loaded from (host
// parts' weights stay in the mapping); the file and the placement's backends
// must outlive the model. Thread safety: one Forward at a time per Model (it
// owns its scratch buffers).
#pragma once

#include <cstdint>
#include <memory>

#include "core/status.h"
#include "kernels/backend.h"
#include "kernels/kv_cache.h"
#include "model/config.h"
#include "model/placement.h"

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

  // logits (R, vocab, host memory) for the batch's logit_rows. K/V of the
  // batch's tokens are written into `kv` at their slots. The batch's arrays
  // are host memory; `kv` must come from NewKvCache when a layer is on a
  // device (a host-only model also takes KvCache::Create's).
  virtual Status Forward(const ForwardBatch& batch, KvCache& kv, float* logits) = 0;

  const ModelPlacement& placement() const { return placement_; }
  // Bytes of weights a host backend keeps in its own packed layout
  // (Backend::PackWeight; copied at load, the file's pages released).
  virtual uint64_t packed_weight_bytes() const { return 0; }
  // What packing did at load, for the user ("" when nothing was packed):
  // how much, and whether from, into or without the cache file.
  virtual std::string packed_weight_note() const { return ""; }

  // A KV cache of n_blocks blocks whose layers live in their backends' memory.
  Result<KvCache> NewKvCache(int64_t n_blocks, int64_t block_size, DType type) const {
    return KvCache::Create(n_blocks, kv_layout(block_size, type), placement_.LayerBackends(),
                           placement_.LayerDevices());
  }

  // The KV layout this model needs (KH, D) with the given block size and type.
  KvLayout kv_layout(int64_t block_size, DType type) const {
    return KvLayout{block_size, config_.n_kv_heads, config_.head_dim, type};
  }

 protected:
  Model(ModelConfig config, ModelPlacement placement)
      : config_(std::move(config)), placement_(std::move(placement)) {}
  ModelConfig config_;
  ModelPlacement placement_;
};

// Loads the architecture named by the file's metadata, every part on
// `backend`, which must outlive the model. Unsupported architectures get an
// error naming them and the list of supported ones.
Result<std::unique_ptr<Model>> LoadModel(const GgufFile& file, Backend& backend);
// The same with each part on the backend `placement` names (its layer count
// must be the model's). A device that runs out of memory gives
// ResourceExhausted naming the device, the tensor and what to do.
Result<std::unique_ptr<Model>> LoadModel(const GgufFile& file, const ModelPlacement& placement);

// Per-architecture constructors (each in its own file).
Result<std::unique_ptr<Model>> LoadLlama(const GgufFile& file, const ModelConfig& config, const ModelPlacement& p);
Result<std::unique_ptr<Model>> LoadQwen2(const GgufFile& file, const ModelConfig& config, const ModelPlacement& p);
Result<std::unique_ptr<Model>> LoadGemma3(const GgufFile& file, const ModelConfig& config, const ModelPlacement& p);
Result<std::unique_ptr<Model>> LoadFalcon(const GgufFile& file, const ModelConfig& config, const ModelPlacement& p);

}  // namespace formiga
