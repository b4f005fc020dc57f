// Falcon (7B, 40B, 180B): parallel attention and MLP reading the same
// LayerNorm'd input (40B/180B: two norms, one for each branch), multi-query or
// grouped-query attention from one fused QKV projection, GELU MLP, NeoX RoPE.
//
//   x = embed(tokens)
//   for each layer:
//     n = layernorm(x); m = new_arch ? layernorm_2(x) : n
//     x = x + Wo · attention(rope(q), rope(k), v)  [q k v] = Wqkv · m
//           + Wdown · gelu(Wup · n)
//   logits = Wout · layernorm(x)
//
// NOTE: in the new architecture llama.cpp's attn_norm is HF's ln_mlp (the
// MLP's norm) and attn_norm_2 is ln_attn (the attention's), so layernorm_2
// feeds the attention, as in llama.cpp's graph.
//
// NOTE: llama.cpp's converter reorders HF's per-group interleaved QKV rows
// into [all q | all k | all v], which this file slices as three views.
#include <cmath>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/model.h"
#include "model/transformer.h"
#include "model/weights.h"

namespace formiga {
namespace {

struct FalconLayer {
  const float* attn_norm = nullptr;
  const float* attn_norm_b = nullptr;
  const float* attn_norm_2 = nullptr;    // new architecture only
  const float* attn_norm_2_b = nullptr;
  AttentionWeights attn;
  WeightView up, down;
  const float* up_b = nullptr;
  const float* down_b = nullptr;
};

class FalconModel final : public Model {
 public:
  FalconModel(const GgufFile& file, ModelConfig config, Backend& backend)
      : Model(std::move(config)), backend_(backend), loader_(file) {}

  Status Load() {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(CheckRopeSupported(c));
    const int64_t C = c.hidden_size, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    FORMIGA_RETURN_IF_ERROR(LoadEmbeddings(loader_, c, &embed_, &output_));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_, loader_.Vector("output_norm.weight", C));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_b_, loader_.Vector("output_norm.bias", C));
    layers_.resize(static_cast<size_t>(c.n_layers));
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const std::string p = "blk." + std::to_string(il) + ".";
      FalconLayer& L = layers_[il];
      FORMIGA_ASSIGN_OR_RETURN(L.attn_norm, loader_.Vector(p + "attn_norm.weight", C));
      FORMIGA_ASSIGN_OR_RETURN(L.attn_norm_b, loader_.Vector(p + "attn_norm.bias", C));
      if (c.falcon_new_arch) {
        FORMIGA_ASSIGN_OR_RETURN(L.attn_norm_2, loader_.Vector(p + "attn_norm_2.weight", C));
        FORMIGA_ASSIGN_OR_RETURN(L.attn_norm_2_b, loader_.Vector(p + "attn_norm_2.bias", C));
      }
      WeightView qkv;
      FORMIGA_ASSIGN_OR_RETURN(qkv, loader_.Matrix(p + "attn_qkv.weight", C, qd + 2 * kvd));
      L.attn.wq = SliceRows(qkv, 0, qd);
      L.attn.wk = SliceRows(qkv, qd, kvd);
      L.attn.wv = SliceRows(qkv, qd + kvd, kvd);
      const float* qkv_b = nullptr;
      FORMIGA_ASSIGN_OR_RETURN(qkv_b, loader_.OptionalVector(p + "attn_qkv.bias", qd + 2 * kvd));
      if (qkv_b != nullptr) {
        L.attn.bq = qkv_b;
        L.attn.bk = qkv_b + qd;
        L.attn.bv = qkv_b + qd + kvd;
      }
      FORMIGA_ASSIGN_OR_RETURN(L.attn.wo, loader_.Matrix(p + "attn_output.weight", qd, C));
      FORMIGA_ASSIGN_OR_RETURN(L.attn.bo, loader_.OptionalVector(p + "attn_output.bias", C));
      FORMIGA_ASSIGN_OR_RETURN(L.up, loader_.Matrix(p + "ffn_up.weight", C, c.ffn_size));
      FORMIGA_ASSIGN_OR_RETURN(L.up_b, loader_.OptionalVector(p + "ffn_up.bias", c.ffn_size));
      FORMIGA_ASSIGN_OR_RETURN(L.down, loader_.Matrix(p + "ffn_down.weight", c.ffn_size, C));
      FORMIGA_ASSIGN_OR_RETURN(L.down_b, loader_.OptionalVector(p + "ffn_down.bias", C));
    }
    setup_.rope = MakeRope(c, RopeStyle::kNeox, false);
    setup_.params = AttentionParams{c.n_heads, c.n_kv_heads, c.head_dim,
                                    static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))), 0.0f, 0};
    setup_.norm_eps = static_cast<float>(c.norm_eps);
    return Status::Ok();
  }

  Status Forward(const ForwardBatch& b, KvCache& kv, float* logits) override {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(ValidateBatch(c, b));
    const int64_t T = b.attn.n_tokens, C = c.hidden_size, F = c.ffn_size;
    const float eps = static_cast<float>(c.norm_eps);
    Backend& be = backend_;
    scratch_.Reserve(c, T, b.n_logit_rows);
    float* x = scratch_.x.data();   // (T, C)
    float* n = scratch_.h.data();   // (T, C) MLP input (and attention input, old arch)
    float* m = scratch_.h2.data();  // (T, C) attention input (new arch)
    float* o = scratch_.o.data();   // (T, C)
    float* u = scratch_.up.data();  // (T, F)
    FORMIGA_RETURN_IF_ERROR(be.GetRows(embed_, b.tokens, T, x));
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const FalconLayer& L = layers_[il];
      be.LayerNorm(x, L.attn_norm, L.attn_norm_b, n, T, C, eps);
      const float* attn_in = n;
      if (c.falcon_new_arch) {
        be.LayerNorm(x, L.attn_norm_2, L.attn_norm_2_b, m, T, C, eps);
        attn_in = m;
      }
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.up, n, u, T));
      if (L.up_b != nullptr) be.AddBias(u, L.up_b, u, T, F);
      be.Gelu(u, u, T * F, /*tanh_approx=*/false);
      FORMIGA_RETURN_IF_ERROR(RunAttention(be, c, L.attn, setup_, attn_in, b.attn, kv.layer(il), scratch_, o));
      be.Add(x, o, x, T * C);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.down, u, o, T));
      if (L.down_b != nullptr) be.AddBias(o, L.down_b, o, T, C);
      be.Add(x, o, x, T * C);
    }
    return RunLogits(be, c, x, b, output_norm_, output_norm_b_, false, output_, scratch_, logits);
  }

 private:
  Backend& backend_;
  WeightLoader loader_;
  WeightView embed_, output_;
  const float* output_norm_ = nullptr;
  const float* output_norm_b_ = nullptr;
  std::vector<FalconLayer> layers_;
  AttentionSetup setup_;
  Scratch scratch_;
};

}  // namespace

Result<std::unique_ptr<Model>> LoadFalcon(const GgufFile& file, const ModelConfig& config, Backend& backend) {
  auto model = std::make_unique<FalconModel>(file, config, backend);
  FORMIGA_RETURN_IF_ERROR(model->Load().WithContext("loading falcon model"));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace formiga
