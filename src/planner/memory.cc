#include "planner/memory.h"

#include <algorithm>

#include "planner/units.h"

namespace formiga::planner {
namespace {

// NOTE: calibration of the CPU engine's fixed costs, measured with
// bench/plan-accuracy on formiga's own runs (docs/planner.md#calibration):
// the binary, its libraries, thread stacks and allocator arenas at a
// tiny context, and the parsed GGUF metadata + tokenizer tables per
// vocabulary entry (compact GGUF arrays viewing the file, the tokenizer's
// text buffer, hash slots, scores and types: ~20 bytes a token since the
// compact forms; 384 before). Fitted on SmolLM2 (49152 tokens) and Gemma-3
// (262144): residuals +0.8 MB and +0.2 MB; synth TinyLlama (32000) -2.4 MB.
constexpr uint64_t kCpuRuntimeBytes = 16'000'000;
constexpr uint64_t kTokenizerBytesPerToken = 20;
// Fault-around: touching one embedding row maps up to 64 KiB of the file.
constexpr uint64_t kFaultAroundBytes = 64 * 1024;

}  // namespace

uint64_t KvBytesPerTokenLayer(const ModelConfig& c, DType type) {
  return 2 * DTypeRowBytes(type, static_cast<uint64_t>(c.n_kv_heads * c.head_dim));
}

uint64_t KvBytesLayer(const ModelConfig& c, int64_t layer, DType type, int64_t tokens, int64_t seqs,
                      bool cap_sliding) {
  int64_t held = tokens;
  if (cap_sliding && c.sliding_window > 0 && c.IsSlidingLayer(layer)) {
    seqs = std::max<int64_t>(seqs, 1);
    const int64_t per_seq = (tokens + seqs - 1) / seqs;
    held = std::min(per_seq, c.sliding_window) * seqs;
  }
  return KvBytesPerTokenLayer(c, type) * static_cast<uint64_t>(held);
}

uint64_t KvBytes(const ModelConfig& c, DType type, int64_t tokens, int64_t seqs, bool cap_sliding) {
  uint64_t total = 0;
  for (int64_t il = 0; il < c.n_layers; ++il) total += KvBytesLayer(c, il, type, tokens, seqs, cap_sliding);
  return total;
}

uint64_t CpuScratchBytes(const ModelConfig& c, int64_t tokens, int64_t logit_rows) {
  // Scratch::Reserve (model/transformer.cc): x, h, h2, rows (C each), q, att
  // (H*D), k, v (KH*D), o (max(C, H*D)), gate, up (F), per token.
  const int64_t qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  const int64_t per_token = 4 * c.hidden_size + 2 * qd + 2 * kvd + std::max(c.hidden_size, qd) + 2 * c.ffn_size;
  const int64_t n = std::max(tokens, logit_rows);
  uint64_t bytes = static_cast<uint64_t>(n * per_token) * sizeof(float);
  // CPU backend: the current MatMul's quantized activations (<= 1.14 bytes per
  // input element, q8_K) for the widest input (F).
  bytes += static_cast<uint64_t>(static_cast<double>(n * std::max(c.hidden_size, c.ffn_size)) * 1.14);
  return bytes;
}

uint64_t EmbeddingBytesTouched(const ModelConfig& c, const ModelWeights& w, const EngineShape& e) {
  const uint64_t row = w.embedding_bytes / static_cast<uint64_t>(std::max<int64_t>(c.vocab_size, 1));
  const int64_t prompt = e.prompt_tokens > 0 ? e.prompt_tokens : std::min(e.max_batch_tokens, e.n_ctx);
  return std::min<uint64_t>(w.embedding_bytes, static_cast<uint64_t>(prompt) * std::max(row, kFaultAroundBytes));
}

CpuRunMemory PredictCpuRun(const ModelConfig& c, const ModelWeights& w, const EngineShape& e, uint64_t metadata_bytes) {
  CpuRunMemory m;
  // Weights: every block tensor and the output projection are read each
  // token. token_embd is read by rows only (get_rows) unless it is also the
  // output projection (tied): then all of it.
  m.weights = w.total_bytes;
  if (!w.tied_embeddings) m.weights -= w.embedding_bytes - EmbeddingBytesTouched(c, w, e);
  if (metadata_bytes == 0) {
    // A preset: GGUF tokenizer arrays are ~25 bytes per token (text, score,
    // type) plus BPE merges (~1 per token, ~12 bytes).
    metadata_bytes = static_cast<uint64_t>(c.vocab_size) * 37;
  }
  m.file_header = metadata_bytes;
  m.tokenizer = static_cast<uint64_t>(c.vocab_size) * kTokenizerBytesPerToken;
  const int64_t blocks = e.n_blocks > 0 ? e.n_blocks : e.max_seqs * ((e.n_ctx + e.block_size - 1) / e.block_size);
  m.kv_cache = KvBytesPerTokenLayer(c, e.kv_type) * static_cast<uint64_t>(c.n_layers) *
               static_cast<uint64_t>(blocks * e.block_size);
  const int64_t step_tokens =
      e.prompt_tokens > 0 ? std::min(e.prompt_tokens, e.max_batch_tokens) : std::min(e.max_batch_tokens, e.n_ctx - 1);
  m.scratch = CpuScratchBytes(c, std::max<int64_t>(step_tokens, 1), e.max_seqs);
  m.logits = static_cast<uint64_t>(e.max_seqs * c.vocab_size) * sizeof(float);
  m.runtime = kCpuRuntimeBytes;
  return m;
}

// ---- training -------------------------------------------------------------

Result<TrainMethod> ParseTrainMethod(const std::string& s) {
  if (s == "full") return TrainMethod::kFull;
  if (s == "lora") return TrainMethod::kLora;
  if (s == "qlora") return TrainMethod::kQlora;
  return Status::InvalidArgument("--train must be full, lora or qlora, not '" + s + "'");
}
Result<Precision> ParsePrecision(const std::string& s) {
  if (s == "fp32" || s == "f32") return Precision::kFp32;
  if (s == "bf16-mixed" || s == "bf16") return Precision::kBf16Mixed;
  if (s == "fp16-mixed" || s == "fp16" || s == "f16") return Precision::kFp16Mixed;
  return Status::InvalidArgument("--precision must be fp32, bf16-mixed or fp16-mixed, not '" + s + "'");
}
Result<Optimizer> ParseOptimizer(const std::string& s) {
  if (s == "adamw" || s == "adam") return Optimizer::kAdamW;
  if (s == "adamw-8bit" || s == "adam8bit") return Optimizer::kAdamW8bit;
  if (s == "sgd-momentum") return Optimizer::kSgdMomentum;
  if (s == "sgd") return Optimizer::kSgd;
  return Status::InvalidArgument("--optimizer must be adamw, adamw-8bit, sgd-momentum or sgd, not '" + s + "'");
}
const char* TrainMethodName(TrainMethod m) {
  switch (m) {
    case TrainMethod::kFull: return "full";
    case TrainMethod::kLora: return "lora";
    case TrainMethod::kQlora: return "qlora";
  }
  return "full";
}
const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kBf16Mixed: return "bf16-mixed";
    case Precision::kFp16Mixed: return "fp16-mixed";
  }
  return "fp32";
}
const char* OptimizerName(Optimizer o) {
  switch (o) {
    case Optimizer::kAdamW: return "adamw";
    case Optimizer::kAdamW8bit: return "adamw-8bit";
    case Optimizer::kSgdMomentum: return "sgd-momentum";
    case Optimizer::kSgd: return "sgd";
  }
  return "adamw";
}

uint64_t LayerActivationBytes(const ModelConfig& c, int64_t seq, int64_t batch, bool flash_attention) {
  const double s = static_cast<double>(seq), b = static_cast<double>(batch), h = static_cast<double>(c.hidden_size);
  const double a = static_cast<double>(c.n_heads);
  const double per = 34.0 + (flash_attention ? 0.0 : 5.0 * a * s / h);
  return static_cast<uint64_t>(s * b * h * per);
}

TrainingMemory PredictTraining(const ModelConfig& c, const ModelWeights& storage, const TrainingShape& t,
                               uint64_t runtime_overhead) {
  TrainingMemory m;
  m.parameters = storage.parameters;
  const double n = static_cast<double>(std::max<int64_t>(t.data_parallel, 1));
  const auto part = [&](uint64_t bytes, int min_stage) {
    return t.zero_stage >= min_stage ? static_cast<uint64_t>(static_cast<double>(bytes) / n) : bytes;
  };
  const double state_bytes = t.optimizer == Optimizer::kAdamW       ? 8.0
                             : t.optimizer == Optimizer::kAdamW8bit ? 2.0
                             : t.optimizer == Optimizer::kSgdMomentum ? 4.0
                                                                      : 0.0;
  if (t.method == TrainMethod::kFull) {
    const uint64_t p = static_cast<uint64_t>(m.parameters);
    m.trainable = m.parameters;
    const bool mixed = t.precision != Precision::kFp32;
    m.weights = part(p * (mixed ? 2 : 4), 3);
    m.master_weights = mixed ? part(p * 4, 1) : 0;
    m.gradients = part(p * (mixed ? 2 : 4), 2);
    m.optimizer = part(static_cast<uint64_t>(static_cast<double>(p) * state_bytes), 1);
  } else {
    // Frozen base at its storage type (bf16 for LoRA, nf4 for QLoRA). LoRA
    // adapters are fp32 (PEFT's default); QLoRA keeps them, and their
    // gradients, in bf16 (Dettmers et al. 2023, sec. 3); Adam states fp32.
    const uint64_t a = static_cast<uint64_t>(LoraParameters(c, t.lora_rank));
    const uint64_t ab = t.method == TrainMethod::kQlora ? 2 : 4;
    m.trainable = static_cast<int64_t>(a);
    m.weights = part(storage.total_bytes, 3) + a * ab;
    m.gradients = part(a * ab, 2);
    m.optimizer = part(static_cast<uint64_t>(static_cast<double>(a) * state_bytes), 1);
  }
  if (t.offload_optimizer) {
    m.offloaded = m.optimizer + m.master_weights;
    m.optimizer = 0;
    m.master_weights = 0;
  }
  // Activations of one micro-batch (fp16/bf16; fp32 training doubles them).
  const uint64_t layer = LayerActivationBytes(c, t.seq_len, t.micro_batch, t.flash_attention);
  const uint64_t scale = t.precision == Precision::kFp32 ? 2 : 1;
  if (t.checkpointing) {
    const uint64_t inputs = 2ull * static_cast<uint64_t>(t.seq_len * t.micro_batch * c.hidden_size);
    m.activations = scale * (inputs * static_cast<uint64_t>(c.n_layers) + layer);
  } else {
    m.activations = scale * layer * static_cast<uint64_t>(c.n_layers);
  }
  m.logits = static_cast<uint64_t>(c.vocab_size * t.seq_len * t.micro_batch) * 4;
  m.runtime = runtime_overhead;
  return m;
}

}  // namespace formiga::planner
