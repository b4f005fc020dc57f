// Pieces every decoder-only architecture shares: scratch buffers, the
// attention sub-block (projections, optional biases and q/k norms, RoPE, KV
// store, paged attention, output projection) and the final norm + logits.
// Architecture files compose these; anything an architecture does
// differently stays in its own file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/model.h"

namespace formiga {

// One activation array carved out of a Scratch allocation.
struct ScratchArray {
  float* p = nullptr;
  float* data() const { return p; }
};

// Activation buffers for up to `capacity` tokens, in one allocation from the
// backend that computes on them (host memory for ref/cpu); grown (never
// shrunk) before a forward pass so that the ops themselves never allocate.
// `logits` (R, vocab) exists only when asked for: a device backend running
// the output head writes logits there before they are copied to the host.
struct Scratch {
  int64_t capacity = 0;
  int64_t logit_capacity = 0;
  ScratchArray x, h, h2, q, k, v, att, o, gate, up, rows, logits;
  BackendBuffer memory;

  // ResourceExhausted (naming `device`) when the backend has no memory left.
  Status Reserve(Backend& be, const ModelConfig& c, int64_t T, int64_t n_logit_rows, bool with_logits,
                 const std::string& device);
  // Bytes of the one allocation Reserve makes for `capacity` token rows and
  // `logit_capacity` logits rows (the planner's device prediction uses it).
  static uint64_t BytesFor(const ModelConfig& c, int64_t capacity, int64_t logit_capacity);
};

struct AttentionWeights {
  WeightView wq, wk, wv, wo;
  const float* bq = nullptr;      // qwen2 / falcon-style biases, or null
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* bo = nullptr;
  const float* q_norm = nullptr;  // gemma3 per-head RMSNorm weights (D), or null
  const float* k_norm = nullptr;
};

struct AttentionSetup {
  RopeParams rope;
  AttentionParams params;
  float norm_eps = 1e-6f;  // for the q/k norms
};

class WeightLoader;

// token_embd.weight (vocab x C) and the output projection: output.weight, or
// token_embd again when the model ties them.
Status LoadEmbeddings(WeightLoader& loader, const ModelConfig& c, WeightView* embed, WeightView* output);

// blk.N.attn_{q,k,v,output}.weight of layer `prefix` ("blk.N.") into `w`.
Status LoadAttentionProjections(WeightLoader& loader, const ModelConfig& c, const std::string& prefix,
                                AttentionWeights* w);

// The usual RoPE of a config: `style` as the GGUF converter laid out q/k,
// `local` selects the sliding-window base (gemma3). Unsupported scaling types
// are refused at load by CheckRopeSupported.
RopeParams MakeRope(const ModelConfig& c, RopeStyle style, bool local);
Status CheckRopeSupported(const ModelConfig& c);

// out (T, C) = attention sub-block of h (T, C); K/V of the batch go to `kv`.
Status RunAttention(Backend& be, const ModelConfig& c, const AttentionWeights& w, const AttentionSetup& s,
                    const float* h, const AttentionBatch& batch, const KvLayerView& kv, Scratch& scratch,
                    float* out);

// logits (R, V) = output · norm(x[rows]); `rms` picks RMSNorm (else LayerNorm
// with `norm_bias`); softcap > 0 caps the logits.
Status RunLogits(Backend& be, const ModelConfig& c, const float* x, const ForwardBatch& batch,
                 const float* norm_weight, const float* norm_bias, bool rms, const WeightView& output,
                 Scratch& scratch, float* logits);

// Checks the batch against the config (token ids, rows) before any op runs.
Status ValidateBatch(const ModelConfig& c, const ForwardBatch& batch);

}  // namespace formiga
