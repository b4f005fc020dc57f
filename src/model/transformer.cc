#include "model/transformer.h"

#include "model/weights.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace formiga {

void Scratch::Reserve(const ModelConfig& c, int64_t T, int64_t n_logit_rows) {
  const int64_t need = std::max(T, n_logit_rows);
  if (need <= capacity) return;
  capacity = need;
  const auto n = [&](int64_t width) { return static_cast<size_t>(need * width); };
  const int64_t qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
  x.resize(n(c.hidden_size));
  h.resize(n(c.hidden_size));
  h2.resize(n(c.hidden_size));
  q.resize(n(qd));
  k.resize(n(kvd));
  v.resize(n(kvd));
  att.resize(n(qd));
  o.resize(n(std::max(c.hidden_size, qd)));
  gate.resize(n(c.ffn_size));
  up.resize(n(c.ffn_size));
  rows.resize(n(c.hidden_size));
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
  FORMIGA_RETURN_IF_ERROR(be.MatMul(w.wq, h, q, T));
  FORMIGA_RETURN_IF_ERROR(be.MatMul(w.wk, h, k, T));
  FORMIGA_RETURN_IF_ERROR(be.MatMul(w.wv, h, v, T));
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
