// LLaMA (1/2/3), SmolLM2, TinyLlama, Mistral: pre-norm decoder with RMSNorm,
// rotary embeddings, grouped-query attention and a SwiGLU feed-forward.
//
//   x = embed(tokens)
//   for each layer:
//     x = x + Wo · attention(rope(Wq·n), rope(Wk·n), Wv·n)   n = rmsnorm(x)
//     x = x + Wdown · (silu(Wgate·m) * Wup·m)               m = rmsnorm(x)
//   logits = Wout · rmsnorm(x)
//
// NOTE: llama.cpp's converter permutes Wq/Wk rows so that RoPE rotates
// adjacent pairs (RopeStyle::kNormal); HF checkpoints keep the NeoX halves.
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

struct LlamaLayer {
  const float* attn_norm = nullptr;
  AttentionWeights attn;
  const float* ffn_norm = nullptr;
  WeightView gate, up, down;
};

class LlamaModel final : public Model {
 public:
  LlamaModel(const GgufFile& file, ModelConfig config, const ModelPlacement& placement)
      : Model(std::move(config), placement), loader_(file), stages_(placement) {}

  Status Load() {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(CheckRopeSupported(c));
    const int64_t C = c.hidden_size, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    FORMIGA_RETURN_IF_ERROR(LoadEmbeddings(loader_, c, &embed_, &output_));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_, loader_.Vector("output_norm.weight", C));
    FORMIGA_RETURN_IF_ERROR(placed_.PlaceTable(placement_.embed, &embed_, "token_embd"));
    FORMIGA_RETURN_IF_ERROR(placed_.Place(placement_.output, &output_, "output"));
    FORMIGA_RETURN_IF_ERROR(placed_.Place(placement_.output, &output_norm_, C, "output_norm"));
    layers_.resize(static_cast<size_t>(c.n_layers));
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const std::string p = "blk." + std::to_string(il) + ".";
      LlamaLayer& L = layers_[il];
      FORMIGA_ASSIGN_OR_RETURN(L.attn_norm, loader_.Vector(p + "attn_norm.weight", C));
      FORMIGA_RETURN_IF_ERROR(LoadAttentionProjections(loader_, c, p, &L.attn));
      if (c.qkv_bias) {
        FORMIGA_ASSIGN_OR_RETURN(L.attn.bq, loader_.Vector(p + "attn_q.bias", qd));
        FORMIGA_ASSIGN_OR_RETURN(L.attn.bk, loader_.Vector(p + "attn_k.bias", kvd));
        FORMIGA_ASSIGN_OR_RETURN(L.attn.bv, loader_.Vector(p + "attn_v.bias", kvd));
      }
      FORMIGA_ASSIGN_OR_RETURN(L.ffn_norm, loader_.Vector(p + "ffn_norm.weight", C));
      FORMIGA_ASSIGN_OR_RETURN(L.gate, loader_.Matrix(p + "ffn_gate.weight", C, c.ffn_size));
      FORMIGA_ASSIGN_OR_RETURN(L.up, loader_.Matrix(p + "ffn_up.weight", C, c.ffn_size));
      FORMIGA_ASSIGN_OR_RETURN(L.down, loader_.Matrix(p + "ffn_down.weight", c.ffn_size, C));
      const ModelPlacement::Part& part = placement_.layers[il];
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.attn_norm, C, p + "attn_norm"));
      FORMIGA_RETURN_IF_ERROR(placed_.PlaceAttention(part, c, &L.attn, p));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.ffn_norm, C, p + "ffn_norm"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.gate, p + "ffn_gate"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.up, p + "ffn_up"));
      FORMIGA_RETURN_IF_ERROR(placed_.Place(part, &L.down, p + "ffn_down"));
    }
    // qwen2 GGUFs keep HF's NeoX layout; llama GGUFs are permuted to adjacent pairs.
    setup_.rope = MakeRope(c, c.arch == Arch::kQwen2 ? RopeStyle::kNeox : RopeStyle::kNormal, false);
    setup_.params = AttentionParams{c.n_heads, c.n_kv_heads, c.head_dim,
                                    static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))), 0.0f,
                                    c.sliding_window};
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
      const LlamaLayer& L = layers_[il];
      FORMIGA_ASSIGN_OR_RETURN(s, stages_.EnterLayer(il));
      Backend& be = *s->be;
      Scratch& sc = s->scratch;
      float* x = sc.x.data();  // (T, C) residual stream
      float* h = sc.h.data();  // (T, C) normed input of a sub-block
      float* o = sc.o.data();  // (T, C) sub-block output
      be.RmsNorm(x, L.attn_norm, h, T, C, eps);
      FORMIGA_RETURN_IF_ERROR(RunAttention(be, c, L.attn, setup_, h, s->batch.attn, kv.layer(il), sc, o));
      be.Add(x, o, x, T * C);
      be.RmsNorm(x, L.ffn_norm, h, T, C, eps);
      const WeightView gate_up[] = {L.gate, L.up};
      float* const gate_up_out[] = {sc.gate.data(), sc.up.data()};
      FORMIGA_RETURN_IF_ERROR(be.MatMulShared(gate_up, gate_up_out, 2, h, T));  // (T, F) each
      be.SiluMul(sc.gate.data(), sc.up.data(), sc.gate.data(), T * F);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.down, sc.gate.data(), o, T));  // (T, C)
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
  std::vector<LlamaLayer> layers_;
  AttentionSetup setup_;
};

}  // namespace

Result<std::unique_ptr<Model>> LoadLlama(const GgufFile& file, const ModelConfig& config,
                                         const ModelPlacement& placement) {
  auto model = std::make_unique<LlamaModel>(file, config, placement);
  FORMIGA_RETURN_IF_ERROR(model->Load().WithContext("loading " + std::string(ArchName(config.arch)) + " model"));
  return std::unique_ptr<Model>(std::move(model));
}

// NOTE: qwen2 is llama plus q/k/v biases and NeoX RoPE: the same file serves
// it (config.qkv_bias selects the biases) rather than duplicating the block.
Result<std::unique_ptr<Model>> LoadQwen2(const GgufFile& file, const ModelConfig& config,
                                         const ModelPlacement& placement) {
  return LoadLlama(file, config, placement);
}

}  // namespace formiga
