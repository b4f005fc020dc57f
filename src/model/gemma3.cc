// Gemma 3 (text): RMSNorm "sandwich" blocks (a norm before and after both
// attention and MLP), per-head RMSNorm on q and k, GeGLU feed-forward, scaled
// embeddings, and interleaved local (sliding-window, RoPE base 10k) and global
// (full attention, RoPE base 1M) layers — every `sliding_window_pattern`-th
// layer is global.
//
//   x = embed(tokens) * sqrt(C)
//   for each layer:
//     x = x + post_attn_norm(Wo · attention(rope(qnorm(Wq·n)), rope(knorm(Wk·n)), Wv·n))   n = norm(x)
//     x = x + post_ffw_norm(Wdown · (gelu_tanh(Wgate·m) * Wup·m))                        m = norm(x)
//   logits = softcap(Wembedᵀ · norm(x))
//
// NOTE: HF stores Gemma norm weights as w with the scale (1 + w); llama.cpp's
// converter already adds the 1, so GGUF norm weights are used as they are.
#include <cmath>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/model.h"
#include "model/placement_buffers.h"
#include "model/transformer.h"
#include "model/weights.h"

namespace formiga {
namespace {

struct Gemma3Layer {
  const float* attn_norm = nullptr;
  AttentionWeights attn;
  const float* post_attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  WeightView gate, up, down;
  const float* post_ffw_norm = nullptr;
  bool local = false;  // sliding-window layer
};

class Gemma3Model final : public Model {
 public:
  Gemma3Model(const GgufFile& file, ModelConfig config, const ModelPlacement& placement)
      : Model(std::move(config), placement), loader_(file), stages_(placement) {}

  Status Load() {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(CheckRopeSupported(c));
    const int64_t C = c.hidden_size, D = c.head_dim;
    FORMIGA_RETURN_IF_ERROR(LoadEmbeddings(loader_, c, &embed_, &output_));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_, loader_.Vector("output_norm.weight", C));
    FORMIGA_RETURN_IF_ERROR(placed_.PlaceTable(placement_.embed, &embed_, "token_embd"));
    FORMIGA_RETURN_IF_ERROR(placed_.Place(placement_.output, &output_, "output"));
    FORMIGA_RETURN_IF_ERROR(placed_.Place(placement_.output, &output_norm_, C, "output_norm"));
    layers_.resize(static_cast<size_t>(c.n_layers));
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const std::string p = "blk." + std::to_string(il) + ".";
      Gemma3Layer& L = layers_[il];
      FORMIGA_ASSIGN_OR_RETURN(L.attn_norm, loader_.Vector(p + "attn_norm.weight", C));
      FORMIGA_RETURN_IF_ERROR(LoadAttentionProjections(loader_, c, p, &L.attn));
      FORMIGA_ASSIGN_OR_RETURN(L.attn.q_norm, loader_.Vector(p + "attn_q_norm.weight", D));
      FORMIGA_ASSIGN_OR_RETURN(L.attn.k_norm, loader_.Vector(p + "attn_k_norm.weight", D));
      FORMIGA_ASSIGN_OR_RETURN(L.post_attn_norm, loader_.Vector(p + "post_attention_norm.weight", C));
      FORMIGA_ASSIGN_OR_RETURN(L.ffn_norm, loader_.Vector(p + "ffn_norm.weight", C));
      FORMIGA_ASSIGN_OR_RETURN(L.gate, loader_.Matrix(p + "ffn_gate.weight", C, c.ffn_size));
      FORMIGA_ASSIGN_OR_RETURN(L.up, loader_.Matrix(p + "ffn_up.weight", C, c.ffn_size));
      FORMIGA_ASSIGN_OR_RETURN(L.down, loader_.Matrix(p + "ffn_down.weight", c.ffn_size, C));
      FORMIGA_ASSIGN_OR_RETURN(L.post_ffw_norm, loader_.Vector(p + "post_ffw_norm.weight", C));
      L.local = c.IsSlidingLayer(il);
      const ModelPlacement::Part& part = placement_.layers[il];
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.attn_norm, C, p + "attn_norm"));
      FORMIGA_RETURN_IF_ERROR(placed_.PlaceAttention(part, c, &L.attn, p));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.post_attn_norm, C, p + "post_attention_norm"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.ffn_norm, C, p + "ffn_norm"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.gate, p + "ffn_gate"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.up, p + "ffn_up"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.down, p + "ffn_down"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.post_ffw_norm, C, p + "post_ffw_norm"));
    }
    const double scalar = c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar : static_cast<double>(D);
    for (int local = 0; local < 2; ++local) {
      AttentionSetup& s = setup_[local];
      s.rope = MakeRope(c, RopeStyle::kNeox, local == 1);
      s.params = AttentionParams{c.n_heads, c.n_kv_heads, D, static_cast<float>(1.0 / std::sqrt(scalar)),
                                 static_cast<float>(c.attn_logit_softcap), local == 1 ? c.sliding_window : 0};
      s.norm_eps = static_cast<float>(c.norm_eps);
    }
    pack_note_ = placed_.FinishPacking();
    return Status::Ok();
  }

  uint64_t packed_weight_bytes() const override { return placed_.packed_bytes(); }
  std::string packed_weight_note() const override { return pack_note_; }

  Status Forward(const ForwardBatch& b, KvCache& kv, float* logits) override {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(ValidateBatch(c, b));
    const int64_t T = b.attn.n_tokens, C = c.hidden_size, F = c.ffn_size;
    const float eps = static_cast<float>(c.norm_eps);
    // Each part runs on its stage's backend, scratch and batch copy (model/placement_buffers.h).
    FORMIGA_ASSIGN_OR_RETURN(Stage* s, stages_.Begin(c, b, kv));
    FORMIGA_RETURN_IF_ERROR(s->be->GetRows(embed_, s->batch.tokens, T, s->x()));
    s->be->Scale(s->x(), static_cast<float>(c.embedding_scale), T * C);
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const Gemma3Layer& L = layers_[il];
      FORMIGA_ASSIGN_OR_RETURN(s, stages_.EnterLayer(il));
      Backend& be = *s->be;
      Scratch& sc = s->scratch;
      float* x = sc.x.data();  // (T, C)
      float* h = sc.h.data();  // (T, C)
      float* o = sc.o.data();  // (T, C)
      be.RmsNorm(x, L.attn_norm, h, T, C, eps);
      FORMIGA_RETURN_IF_ERROR(
          RunAttention(be, c, L.attn, setup_[L.local ? 1 : 0], h, s->batch.attn, kv.layer(il), sc, o));
      be.RmsNorm(o, L.post_attn_norm, o, T, C, eps);
      be.Add(x, o, x, T * C);
      be.RmsNorm(x, L.ffn_norm, h, T, C, eps);
      const WeightView gate_up[] = {L.gate, L.up};
      float* const gate_up_out[] = {sc.gate.data(), sc.up.data()};
      FORMIGA_RETURN_IF_ERROR(be.MatMulShared(gate_up, gate_up_out, 2, h, T));  // (T, F) each
      be.GeluMul(sc.gate.data(), sc.up.data(), sc.gate.data(), T * F);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.down, sc.gate.data(), o, T));  // (T, C)
      be.RmsNorm(o, L.post_ffw_norm, o, T, C, eps);
      be.Add(x, o, x, T * C);
    }
    FORMIGA_ASSIGN_OR_RETURN(s, stages_.EnterOutput());
    FORMIGA_RETURN_IF_ERROR(RunLogits(*s->be, c, s->x(), s->batch, output_norm_, nullptr, true, output_, s->scratch,
                                      stages_.LogitsOut(logits)));
    return stages_.Finish(logits);
  }

 private:
  WeightLoader loader_;
  PlacedWeights placed_{&loader_.file(), placement_.pack_cache_dir};
  std::string pack_note_;
  ForwardStages stages_;
  WeightView embed_, output_;
  const float* output_norm_ = nullptr;
  std::vector<Gemma3Layer> layers_;
  AttentionSetup setup_[2];  // [0] global, [1] local (sliding window)
};

}  // namespace

Result<std::unique_ptr<Model>> LoadGemma3(const GgufFile& file, const ModelConfig& config,
                                          const ModelPlacement& placement) {
  auto model = std::make_unique<Gemma3Model>(file, config, placement);
  FORMIGA_RETURN_IF_ERROR(model->Load().WithContext("loading gemma3 model"));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace formiga
