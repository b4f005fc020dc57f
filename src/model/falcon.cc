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
#include "model/placement_buffers.h"
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
  FalconModel(const GgufFile& file, ModelConfig config, const ModelPlacement& placement)
      : Model(std::move(config), placement), loader_(file), stages_(placement) {}

  Status Load() {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(CheckRopeSupported(c));
    const int64_t C = c.hidden_size, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    FORMIGA_RETURN_IF_ERROR(LoadEmbeddings(loader_, c, &embed_, &output_));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_, loader_.Vector("output_norm.weight", C));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_b_, loader_.Vector("output_norm.bias", C));
    FORMIGA_RETURN_IF_ERROR(placed_.PlaceTable(placement_.embed, &embed_, "token_embd"));
    FORMIGA_RETURN_IF_ERROR(placed_.Place(placement_.output, &output_, "output"));
    FORMIGA_RETURN_IF_ERROR(placed_.Place(placement_.output, &output_norm_, C, "output_norm"));
    FORMIGA_RETURN_IF_ERROR(placed_.Place(placement_.output, &output_norm_b_, C, "output_norm.bias"));
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
      const ModelPlacement::Part& part = placement_.layers[il];
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.attn_norm, C, p + "attn_norm"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.attn_norm_b, C, p + "attn_norm.bias"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.attn_norm_2, C, p + "attn_norm_2"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.attn_norm_2_b, C, p + "attn_norm_2.bias"));
      FORMIGA_RETURN_IF_ERROR(placed_.PlaceAttention(part, c, &L.attn, p));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.up, p + "ffn_up"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.up_b, c.ffn_size, p + "ffn_up.bias"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.down, p + "ffn_down"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.down_b, C, p + "ffn_down.bias"));
    }
    setup_.rope = MakeRope(c, RopeStyle::kNeox, false);
    setup_.params = AttentionParams{c.n_heads, c.n_kv_heads, c.head_dim,
                                    static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))), 0.0f, 0};
    setup_.norm_eps = static_cast<float>(c.norm_eps);
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
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const FalconLayer& L = layers_[il];
      FORMIGA_ASSIGN_OR_RETURN(s, stages_.EnterLayer(il));
      Backend& be = *s->be;
      Scratch& sc = s->scratch;
      float* x = sc.x.data();   // (T, C)
      float* n = sc.h.data();   // (T, C) MLP input (and attention input, old arch)
      float* m = sc.h2.data();  // (T, C) attention input (new arch)
      float* o = sc.o.data();   // (T, C)
      float* u = sc.up.data();  // (T, F)
      be.LayerNorm(x, L.attn_norm, L.attn_norm_b, n, T, C, eps);
      const float* attn_in = n;
      if (c.falcon_new_arch) {
        be.LayerNorm(x, L.attn_norm_2, L.attn_norm_2_b, m, T, C, eps);
        attn_in = m;
      }
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.up, n, u, T));
      if (L.up_b != nullptr) be.AddBias(u, L.up_b, u, T, F);
      be.Gelu(u, u, T * F, /*tanh_approx=*/false);
      FORMIGA_RETURN_IF_ERROR(RunAttention(be, c, L.attn, setup_, attn_in, s->batch.attn, kv.layer(il), sc, o));
      be.Add(x, o, x, T * C);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.down, u, o, T));
      if (L.down_b != nullptr) be.AddBias(o, L.down_b, o, T, C);
      be.Add(x, o, x, T * C);
    }
    FORMIGA_ASSIGN_OR_RETURN(s, stages_.EnterOutput());
    FORMIGA_RETURN_IF_ERROR(RunLogits(*s->be, c, s->x(), s->batch, output_norm_, output_norm_b_, false, output_,
                                      s->scratch, stages_.LogitsOut(logits)));
    return stages_.Finish(logits);
  }

 private:
  WeightLoader loader_;
  PlacedWeights placed_{&loader_.file(), placement_.pack_cache_dir};
  std::string pack_note_;
  ForwardStages stages_;
  WeightView embed_, output_;
  const float* output_norm_ = nullptr;
  const float* output_norm_b_ = nullptr;
  std::vector<FalconLayer> layers_;
  AttentionSetup setup_;
};

}  // namespace

Result<std::unique_ptr<Model>> LoadFalcon(const GgufFile& file, const ModelConfig& config,
                                          const ModelPlacement& placement) {
  auto model = std::make_unique<FalconModel>(file, config, placement);
  FORMIGA_RETURN_IF_ERROR(model->Load().WithContext("loading falcon model"));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace formiga
