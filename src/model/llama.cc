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
  LlamaModel(const GgufFile& file, ModelConfig config, Backend& backend)
      : Model(std::move(config)), backend_(backend), loader_(file) {}

  Status Load() {
    const ModelConfig& c = config_;
    FORMIGA_RETURN_IF_ERROR(CheckRopeSupported(c));
    const int64_t C = c.hidden_size, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    FORMIGA_RETURN_IF_ERROR(LoadEmbeddings(loader_, c, &embed_, &output_));
    FORMIGA_ASSIGN_OR_RETURN(output_norm_, loader_.Vector("output_norm.weight", C));
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
    }
    // qwen2 GGUFs keep HF's NeoX layout; llama GGUFs are permuted to adjacent pairs.
    setup_.rope = MakeRope(c, c.arch == Arch::kQwen2 ? RopeStyle::kNeox : RopeStyle::kNormal, false);
    setup_.params = AttentionParams{c.n_heads, c.n_kv_heads, c.head_dim,
                                    static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim))), 0.0f,
                                    c.sliding_window};
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
    float* x = scratch_.x.data();  // (T, C) residual stream
    float* h = scratch_.h.data();  // (T, C) normed input of a sub-block
    float* o = scratch_.o.data();  // (T, C) sub-block output
    FORMIGA_RETURN_IF_ERROR(be.GetRows(embed_, b.tokens, T, x));
    for (int64_t il = 0; il < c.n_layers; ++il) {
      const LlamaLayer& L = layers_[il];
      be.RmsNorm(x, L.attn_norm, h, T, C, eps);
      FORMIGA_RETURN_IF_ERROR(RunAttention(be, c, L.attn, setup_, h, b.attn, kv.layer(il), scratch_, o));
      be.Add(x, o, x, T * C);
      be.RmsNorm(x, L.ffn_norm, h, T, C, eps);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.gate, h, scratch_.gate.data(), T));  // (T, F)
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.up, h, scratch_.up.data(), T));      // (T, F)
      be.SiluMul(scratch_.gate.data(), scratch_.up.data(), scratch_.gate.data(), T * F);
      FORMIGA_RETURN_IF_ERROR(be.MatMul(L.down, scratch_.gate.data(), o, T));  // (T, C)
      be.Add(x, o, x, T * C);
    }
    return RunLogits(be, c, x, b, output_norm_, nullptr, true, output_, scratch_, logits);
  }

 private:
  Backend& backend_;
  WeightLoader loader_;
  WeightView embed_, output_;
  const float* output_norm_ = nullptr;
  std::vector<LlamaLayer> layers_;
  AttentionSetup setup_;
  Scratch scratch_;
};

}  // namespace

Result<std::unique_ptr<Model>> LoadLlama(const GgufFile& file, const ModelConfig& config, Backend& backend) {
  auto model = std::make_unique<LlamaModel>(file, config, backend);
  FORMIGA_RETURN_IF_ERROR(model->Load().WithContext("loading " + std::string(ArchName(config.arch)) + " model"));
  return std::unique_ptr<Model>(std::move(model));
}

// NOTE: qwen2 is llama plus q/k/v biases and NeoX RoPE: the same file serves
// it (config.qkv_bias selects the biases) rather than duplicating the block.
Result<std::unique_ptr<Model>> LoadQwen2(const GgufFile& file, const ModelConfig& config, Backend& backend) {
  return LoadLlama(file, config, backend);
}

}  // namespace formiga
