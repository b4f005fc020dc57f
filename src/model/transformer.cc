#include "model/transformer.h"

#include "model/weights.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <iterator>
#include <string>

namespace formiga {

namespace {
// Floats per token row of each Scratch array, in Reserve's order (logits last, sized apart).
std::array<int64_t, 12> ScratchWidths(const ModelConfig& c) {
  const int64_t qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  return {c.hidden_size, c.hidden_size, c.hidden_size, qd, kvd, kvd, qd,
          std::max(c.hidden_size, qd), c.ffn_size, c.ffn_size, c.hidden_size, 0};
}
// Each array starts on a 64-byte boundary (16 floats).
int64_t Padded(int64_t n) { return (n + 15) / 16 * 16; }
}  // namespace

uint64_t Scratch::BytesFor(const ModelConfig& c, int64_t capacity, int64_t logit_capacity) {
  int64_t total = Padded(logit_capacity * c.vocab_size);
  for (int64_t w : ScratchWidths(c)) total += Padded(capacity * w);
  return static_cast<uint64_t>(total) * sizeof(float);
}

Status Scratch::Reserve(Backend& be, const ModelConfig& c, int64_t T, int64_t n_logit_rows, bool with_logits,
                        const std::string& device) {
  const int64_t need = std::max({T, n_logit_rows, capacity});
  const int64_t need_logits = with_logits ? std::max(n_logit_rows, logit_capacity) : 0;
  if (need <= capacity && need_logits <= logit_capacity && memory.backend() == &be) return Status::Ok();
  ScratchArray* arrays[] = {&x, &h, &h2, &q, &k, &v, &att, &o, &gate, &up, &rows, &logits};
  const std::array<int64_t, 12> widths = ScratchWidths(c);
  const int64_t total = static_cast<int64_t>(BytesFor(c, need, need_logits) / sizeof(float));
  memory.Reset();
  Result<BackendBuffer> mem = BackendBuffer::Allocate(be, static_cast<size_t>(total) * sizeof(float));
  if (!mem.ok()) {
    capacity = logit_capacity = 0;
    return Status::ResourceExhausted("activations for " + std::to_string(need) + " tokens (" +
                                     std::to_string(total * 4 / (1 << 20)) + " MiB) do not fit on " + device +
                                     " (" + mem.status().message() +
                                     "): use a smaller batch, or fewer layers on " + device);
  }
  memory = std::move(*mem);
  float* p = static_cast<float*>(memory.data());
  // NOTE: host scratch is zero-filled (as the std::vectors it replaced were):
  // it touches the pages now, so --verbose's resident size counts them.
  if (be.IsHost()) std::memset(p, 0, static_cast<size_t>(total) * sizeof(float));
  for (size_t i = 0; i < std::size(arrays); ++i) {  // logits (width 0 here) last
    arrays[i]->p = p;
    p += Padded(need * widths[i]);
  }
  if (need_logits == 0) logits.p = nullptr;
  capacity = need;
  logit_capacity = need_logits;
  return Status::Ok();
}

Status LoadEmbeddings(WeightLoader& loader, const ModelConfig& c, WeightView* embed, WeightView* output) {
  FORMIGA_ASSIGN_OR_RETURN(*embed, loader.Matrix("token_embd.weight", c.hidden_size, c.vocab_size));
  if (loader.Has("output.weight")) {
    FORMIGA_ASSIGN_OR_RETURN(*output, loader.Matrix("output.weight", c.hidden_size, c.vocab_size));
  } else {
    *output = *embed;  // tied embeddings
  }
  return Status::Ok();
}

Status LoadAttentionProjections(WeightLoader& loader, const ModelConfig& c, const std::string& prefix,
                                AttentionWeights* w) {
  const int64_t C = c.hidden_size, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  FORMIGA_ASSIGN_OR_RETURN(w->wq, loader.Matrix(prefix + "attn_q.weight", C, qd));
  FORMIGA_ASSIGN_OR_RETURN(w->wk, loader.Matrix(prefix + "attn_k.weight", C, kvd));
  FORMIGA_ASSIGN_OR_RETURN(w->wv, loader.Matrix(prefix + "attn_v.weight", C, kvd));
  FORMIGA_ASSIGN_OR_RETURN(w->wo, loader.Matrix(prefix + "attn_output.weight", qd, C));
  return Status::Ok();
}

Status CheckRopeSupported(const ModelConfig& c) {
  if (c.rope_scaling == RopeScaling::kNone || c.rope_scaling == RopeScaling::kLinear) return Status::Ok();
  return Status::Unsupported(std::string("RoPE scaling of this model (") +
                             (c.rope_scaling == RopeScaling::kYarn ? "yarn" : "llama3") +
                             ") is not implemented yet");
}

RopeParams MakeRope(const ModelConfig& c, RopeStyle style, bool local) {
  RopeParams r;
  r.style = style;
  r.n_rot = c.head_dim;
  r.freq_base = static_cast<float>(local && c.rope_theta_local > 0 ? c.rope_theta_local : c.rope_theta);
  // NOTE: gemma3's linear scaling (if any) applies to global layers only, as in HF.
  r.freq_scale = c.rope_scaling == RopeScaling::kLinear && !local ? static_cast<float>(1.0 / c.rope_scaling_factor)
                                                                   : 1.0f;
  return r;
}

Status RunAttention(Backend& be, const ModelConfig& c, const AttentionWeights& w, const AttentionSetup& s,
                    const float* h, const AttentionBatch& batch, const KvLayerView& kv, Scratch& sc,
                    float* out) {
  const int64_t T = batch.n_tokens, H = c.n_heads, KH = c.n_kv_heads, D = c.head_dim;
  float* q = sc.q.data();
  float* k = sc.k.data();
  float* v = sc.v.data();
  // q (T, H*D), k and v (T, KH*D)
  const WeightView qkv[] = {w.wq, w.wk, w.wv};
  float* const qkv_out[] = {q, k, v};
  FORMIGA_RETURN_IF_ERROR(be.MatMulShared(qkv, qkv_out, 3, h, T));
  if (w.bq != nullptr) be.AddBias(q, w.bq, q, T, H * D);
  if (w.bk != nullptr) be.AddBias(k, w.bk, k, T, KH * D);
  if (w.bv != nullptr) be.AddBias(v, w.bv, v, T, KH * D);
  if (w.q_norm != nullptr) be.RmsNorm(q, w.q_norm, q, T * H, D, s.norm_eps);
  if (w.k_norm != nullptr) be.RmsNorm(k, w.k_norm, k, T * KH, D, s.norm_eps);
  be.Rope(q, batch.positions, T, H, D, s.rope);
  be.Rope(k, batch.positions, T, KH, D, s.rope);
  be.StoreKv(k, v, batch, kv);
  be.Attention(q, kv, batch, s.params, sc.att.data());
  // out (T, C)
  FORMIGA_RETURN_IF_ERROR(be.MatMul(w.wo, sc.att.data(), out, T));
  if (w.bo != nullptr) be.AddBias(out, w.bo, out, T, c.hidden_size);
  return Status::Ok();
}

Status RunLogits(Backend& be, const ModelConfig& c, const float* x, const ForwardBatch& batch,
                 const float* norm_weight, const float* norm_bias, bool rms, const WeightView& output,
                 Scratch& sc, float* logits) {
  const int64_t R = batch.n_logit_rows, C = c.hidden_size;
  float* rows = sc.rows.data();
  be.CopyRows(x, batch.logit_rows, R, C, rows);
  if (rms) {
    be.RmsNorm(rows, norm_weight, rows, R, C, static_cast<float>(c.norm_eps));
  } else {
    be.LayerNorm(rows, norm_weight, norm_bias, rows, R, C, static_cast<float>(c.norm_eps));
  }
  FORMIGA_RETURN_IF_ERROR(be.MatMul(output, rows, logits, R));
  if (c.final_logit_softcap > 0) {
    be.SoftCap(logits, logits, R * c.vocab_size, static_cast<float>(c.final_logit_softcap));
  }
  return Status::Ok();
}

Status ValidateBatch(const ModelConfig& c, const ForwardBatch& b) {
  const int64_t T = b.attn.n_tokens;
  if (T <= 0) return Status::InvalidArgument("empty batch");
  for (int64_t t = 0; t < T; ++t) {
    if (b.tokens[t] < 0 || b.tokens[t] >= c.vocab_size) {
      return Status::OutOfRange("token id " + std::to_string(b.tokens[t]) + " outside the vocabulary (" +
                                std::to_string(c.vocab_size) + ")");
    }
    if (b.attn.positions[t] < 0) return Status::InvalidArgument("negative position");
  }
  for (int64_t r = 0; r < b.n_logit_rows; ++r) {
    if (b.logit_rows[r] < 0 || b.logit_rows[r] >= T) return Status::InvalidArgument("logit row outside the batch");
  }
  return Status::Ok();
}

}  // namespace formiga
