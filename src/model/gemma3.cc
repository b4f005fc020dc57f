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
  Gemma3Model(const GgufFile& file, ModelConfig config, Backend& backend)
      : Model(std::move(config)), backend_(backend), loader_(file) {}

  Status Load() {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(CheckRopeSupported(c));
    const int64_t C = c.hidden_size, D = c.head_dim;
    FORMIGA_RETURN_IF_ERROR(LoadEmbeddings(loader_, c, &embed_, &output_));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_, loader_.Vector("output_norm.weight", C));
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
    }
    const double scalar = c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar : static_cast<double>(D);
    for (int local = 0; local < 2; ++local) {
      AttentionSetup& s = setup_[local];
      s.rope = MakeRope(c, RopeStyle::kNeox, local == 1);
      s.params = AttentionParams{c.n_heads, c.n_kv_heads, D, static_cast<float>(1.0 / std::sqrt(scalar)),
                                 static_cast<float>(c.attn_logit_softcap), local == 1 ? c.sliding_window : 0};
      s.norm_eps = static_cast<float>(c.norm_eps);
    }
    return Status::Ok();
  }

  Status Forward(const ForwardBatch& b, KvCache& kv, float* logits) override {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(ValidateBatch(c, b));
    const int64_t T = b.attn.n_tokens, C = c.hidden_size, F = c.ffn_size;
    const float eps = static_cast<float>(c.norm_eps);
    Backend& be = backend_;
    scratch_.Reserve(c, T, b.n_logit_rows);
    float* x = scratch_.x.data();  // (T, C)
    float* h = scratch_.h.data();  // (T, C)
    float* o = scratch_.o.data();  // (T, C)
    FORMIGA_RETURN_IF_ERROR(be.GetRows(embed_, b.tokens, T, x));
    be.Scale(x, static_cast<float>(c.embedding_scale), T * C);
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const Gemma3Layer& L = layers_[il];
      be.RmsNorm(x, L.attn_norm, h, T, C, eps);
      FORMIGA_RETURN_IF_ERROR(
          RunAttention(be, c, L.attn, setup_[L.local ? 1 : 0], h, b.attn, kv.layer(il), scratch_, o));
      be.RmsNorm(o, L.post_attn_norm, o, T, C, eps);
      be.Add(x, o, x, T * C);
      be.RmsNorm(x, L.ffn_norm, h, T, C, eps);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.gate, h, scratch_.gate.data(), T));  // (T, F)
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.up, h, scratch_.up.data(), T));      // (T, F)
      be.GeluMul(scratch_.gate.data(), scratch_.up.data(), scratch_.gate.data(), T * F);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.down, scratch_.gate.data(), o, T));  // (T, C)
      be.RmsNorm(o, L.post_ffw_norm, o, T, C, eps);
      be.Add(x, o, x, T * C);
    }
    return RunLogits(be, c, x, b, output_norm_, nullptr, true, output_, scratch_, logits);
  }

 private:
  Backend& backend_;
  WeightLoader loader_;
  WeightView embed_, output_;
  const float* output_norm_ = nullptr;
  std::vector<Gemma3Layer> layers_;
  AttentionSetup setup_[2];  // [0] global, [1] local (sliding window)
  Scratch scratch_;
};

}  // namespace

Result<std::unique_ptr<Model>> LoadGemma3(const GgufFile& file, const ModelConfig& config, Backend& backend) {
  auto model = std::make_unique<Gemma3Model>(file, config, backend);
  FORMIGA_RETURN_IF_ERROR(model->Load().WithContext("loading gemma3 model"));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace formiga
