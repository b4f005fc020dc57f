// Memory formulas: KV cache, formiga's CPU engine as it really allocates
// (what `formiga run` will have resident), and training (weights, gradients,
// optimizer states, activations) after the ZeRO and Korthikanti et al.
// papers. Sources and measured accuracy: docs/planner.md.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"
#include "planner/weights.h"

namespace formiga::planner {

// ---- KV cache -------------------------------------------------------------

// Bytes of K and V for one token position in one layer: 2 * kv_heads * head_dim
// elements of `type` (q8_0 rows as blocks). Uses kv_heads, never heads.
uint64_t KvBytesPerTokenLayer(const ModelConfig& c, DType type);
// KV bytes for `tokens` positions (summed over sequences) in every layer.
// `cap_sliding`: sliding-window layers hold at most window positions per
// sequence (`seqs` sequences of tokens/seqs each) — what a runtime with SWA
// caches allocates. formiga's engine allocates full-length KV in every layer
// today, so its own figure uses cap_sliding = false.
uint64_t KvBytes(const ModelConfig& c, DType type, int64_t tokens, int64_t seqs, bool cap_sliding);
// Same, for one layer.
uint64_t KvBytesLayer(const ModelConfig& c, int64_t layer, DType type, int64_t tokens, int64_t seqs, bool cap_sliding);

// ---- formiga's CPU engine (`formiga run/chat/serve`) ----------------------

struct EngineShape {
  int64_t n_ctx = 4096;
  int64_t max_seqs = 1;
  int64_t block_size = 16;
  int64_t n_blocks = 0;             // 0: max_seqs full contexts (as Engine::Create)
  int64_t max_batch_tokens = 512;
  DType kv_type = DType::kF16;
  int64_t prompt_tokens = 0;        // 0: worst case (a prompt filling a whole batch)
};

// Resident memory (RSS) of a formiga process running the model, by part.
struct CpuRunMemory {
  uint64_t weights = 0;      // mapped tensor pages the forward pass touches
  uint64_t file_header = 0;  // GGUF metadata pages (read while parsing)
  uint64_t tokenizer = 0;    // parsed metadata + tokenizer tables
  uint64_t kv_cache = 0;     // the engine's block pool, zero-filled at creation
  uint64_t scratch = 0;      // Scratch activations + backend buffers
  uint64_t logits = 0;
  uint64_t runtime = 0;      // binary, libraries, threads
  uint64_t total() const { return weights + file_header + tokenizer + kv_cache + scratch + logits + runtime; }
};

// `metadata_bytes`: the GGUF header size (GgufFile::data_offset()); 0 for a
// preset, estimated from the vocabulary.
CpuRunMemory PredictCpuRun(const ModelConfig& c, const ModelWeights& w, const EngineShape& e, uint64_t metadata_bytes);

// Resident pages of token_embd when only its rows are read (get_rows of the
// prompt's tokens, each fault mapping up to 64 KiB around it).
uint64_t EmbeddingBytesTouched(const ModelConfig& c, const ModelWeights& w, const EngineShape& e);

// Scratch (Scratch::Reserve for T tokens) + backend buffers, in bytes.
uint64_t CpuScratchBytes(const ModelConfig& c, int64_t tokens, int64_t logit_rows);

// ---- training -------------------------------------------------------------

enum class TrainMethod { kFull, kLora, kQlora };
enum class Precision { kFp32, kBf16Mixed, kFp16Mixed };
enum class Optimizer { kAdamW, kAdamW8bit, kSgdMomentum, kSgd };

Result<TrainMethod> ParseTrainMethod(const std::string& s);
Result<Precision> ParsePrecision(const std::string& s);
Result<Optimizer> ParseOptimizer(const std::string& s);
const char* TrainMethodName(TrainMethod m);
const char* PrecisionName(Precision p);
const char* OptimizerName(Optimizer o);

struct TrainingShape {
  TrainMethod method = TrainMethod::kFull;
  int64_t lora_rank = 16;
  Optimizer optimizer = Optimizer::kAdamW;
  Precision precision = Precision::kBf16Mixed;
  int64_t micro_batch = 1;
  int64_t seq_len = 2048;
  int64_t grad_accum = 1;             // does not change memory (gradients are accumulated in place)
  bool checkpointing = false;         // activation (gradient) checkpointing, full recompute
  bool flash_attention = false;       // no s^2 attention scores kept
  bool offload_optimizer = false;     // optimizer states (and fp32 master) in CPU RAM
  int64_t data_parallel = 1;          // GPUs holding replicas / shards
  int zero_stage = 0;                 // 0..3 (DeepSpeed ZeRO / FSDP)
};

struct TrainingMemory {
  int64_t parameters = 0;          // model
  int64_t trainable = 0;           // full: all; LoRA: adapters
  uint64_t weights = 0;            // per GPU: frozen/working copy (+ adapters)
  uint64_t master_weights = 0;     // fp32 master copy (mixed precision), per GPU
  uint64_t gradients = 0;          // per GPU
  uint64_t optimizer = 0;          // per GPU (0 when offloaded)
  uint64_t activations = 0;        // per GPU, one micro-batch
  uint64_t logits = 0;             // fp32 logits of a micro-batch (often the largest spike)
  uint64_t runtime = 0;            // CUDA context + allocator slack
  uint64_t offloaded = 0;          // bytes moved to CPU RAM (optimizer offload)
  uint64_t per_gpu() const { return weights + master_weights + gradients + optimizer + activations + logits + runtime; }
};

// Per-GPU memory of one training step. `storage` is the base weights' type
// (bf16 for full/LoRA; nf4 for QLoRA) — from WeightsForConfig.
TrainingMemory PredictTraining(const ModelConfig& c, const ModelWeights& storage, const TrainingShape& t,
                               uint64_t runtime_overhead);

// Korthikanti et al. 2022 (fp16 activations, no sequence parallelism): bytes
// kept for backward by one transformer layer: s*b*h*(34 + 5*a*s/h). With
// flash attention the 5*a*s/h score term is not stored.
uint64_t LayerActivationBytes(const ModelConfig& c, int64_t seq, int64_t batch, bool flash_attention);

}  // namespace formiga::planner
