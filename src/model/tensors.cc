// ModelTensors / CountParameters: the GGUF tensor list of each architecture,
// named and shaped exactly as llama.cpp names them (llama-arch.cpp) and
// creates them (llama-model.cpp load_tensors).
//
// Shapes are in GGUF order: ne[0] (contiguous) first, so a matmul weight that
// maps n_in -> n_out is {n_in, n_out} (the transpose of PyTorch's [out, in]
// listing of the same bytes).
#include <string>
#include <vector>

#include "model/config.h"

namespace formiga {
namespace {

class TensorListBuilder {
 public:
  explicit TensorListBuilder(std::vector<TensorSpec>* out) : out_(out) {}
  void Vec(std::string name, int64_t n) { out_->push_back({std::move(name), {n}, false}); }
  void Mat(std::string name, int64_t n_in, int64_t n_out) {
    out_->push_back({std::move(name), {n_in, n_out}, true});
  }

 private:
  std::vector<TensorSpec>* out_;
};

std::string Blk(int64_t il, const char* suffix) { return "blk." + std::to_string(il) + "." + suffix; }

}  // namespace

std::vector<TensorSpec> ModelTensors(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  TensorListBuilder b(&out);
  const int64_t n_embd = c.hidden_size;
  const int64_t n_q = c.n_heads * c.head_dim;      // query width (gemma3: != n_embd)
  const int64_t n_kv = c.n_kv_heads * c.head_dim;  // key/value width (GQA/MQA)

  b.Mat("token_embd.weight", n_embd, c.vocab_size);
  if (c.arch == Arch::kGpt2) b.Mat("position_embd.weight", n_embd, c.context_length);
  // NOTE: llama.cpp writes rope_freqs for llama3-style scaling (Llama 3.1+):
  // one factor per rotary dimension pair.
  if (c.arch == Arch::kLlama && c.rope_scaling == RopeScaling::kLlama3) {
    b.Vec("rope_freqs.weight", c.head_dim / 2);
  }

  for (int64_t il = 0; il < c.n_layers; ++il) {
    switch (c.arch) {
      case Arch::kLlama:
      case Arch::kQwen2:
      case Arch::kGemma3: {
        b.Vec(Blk(il, "attn_norm.weight"), n_embd);
        b.Mat(Blk(il, "attn_q.weight"), n_embd, n_q);
        b.Mat(Blk(il, "attn_k.weight"), n_embd, n_kv);
        b.Mat(Blk(il, "attn_v.weight"), n_embd, n_kv);
        if (c.qkv_bias) {
          b.Vec(Blk(il, "attn_q.bias"), n_q);
          b.Vec(Blk(il, "attn_k.bias"), n_kv);
          b.Vec(Blk(il, "attn_v.bias"), n_kv);
        }
        if (c.arch == Arch::kGemma3) {
          b.Vec(Blk(il, "attn_q_norm.weight"), c.head_dim);
          b.Vec(Blk(il, "attn_k_norm.weight"), c.head_dim);
        }
        b.Mat(Blk(il, "attn_output.weight"), n_q, n_embd);
        if (c.arch == Arch::kGemma3) b.Vec(Blk(il, "post_attention_norm.weight"), n_embd);
        b.Vec(Blk(il, "ffn_norm.weight"), n_embd);
        b.Mat(Blk(il, "ffn_gate.weight"), n_embd, c.ffn_size);
        b.Mat(Blk(il, "ffn_up.weight"), n_embd, c.ffn_size);
        b.Mat(Blk(il, "ffn_down.weight"), c.ffn_size, n_embd);
        if (c.arch == Arch::kGemma3) b.Vec(Blk(il, "post_ffw_norm.weight"), n_embd);
        break;
      }
      case Arch::kFalcon: {
        // LayerNorm with bias; one fused QKV matmul; GELU MLP without gate;
        // no biases on the matmuls (falcon "bias": false).
        b.Vec(Blk(il, "attn_norm.weight"), n_embd);
        b.Vec(Blk(il, "attn_norm.bias"), n_embd);
        if (c.falcon_new_arch) {
          b.Vec(Blk(il, "attn_norm_2.weight"), n_embd);
          b.Vec(Blk(il, "attn_norm_2.bias"), n_embd);
        }
        b.Mat(Blk(il, "attn_qkv.weight"), n_embd, n_q + 2 * n_kv);
        if (c.qkv_bias) b.Vec(Blk(il, "attn_qkv.bias"), n_q + 2 * n_kv);
        b.Mat(Blk(il, "attn_output.weight"), n_q, n_embd);
        b.Mat(Blk(il, "ffn_up.weight"), n_embd, c.ffn_size);
        b.Mat(Blk(il, "ffn_down.weight"), c.ffn_size, n_embd);
        break;
      }
      case Arch::kGpt2: {
        b.Vec(Blk(il, "attn_norm.weight"), n_embd);
        b.Vec(Blk(il, "attn_norm.bias"), n_embd);
        b.Mat(Blk(il, "attn_qkv.weight"), n_embd, n_q + 2 * n_kv);
        b.Vec(Blk(il, "attn_qkv.bias"), n_q + 2 * n_kv);
        b.Mat(Blk(il, "attn_output.weight"), n_q, n_embd);
        b.Vec(Blk(il, "attn_output.bias"), n_embd);
        b.Vec(Blk(il, "ffn_norm.weight"), n_embd);
        b.Vec(Blk(il, "ffn_norm.bias"), n_embd);
        b.Mat(Blk(il, "ffn_up.weight"), n_embd, c.ffn_size);
        b.Vec(Blk(il, "ffn_up.bias"), c.ffn_size);
        b.Mat(Blk(il, "ffn_down.weight"), c.ffn_size, n_embd);
        b.Vec(Blk(il, "ffn_down.bias"), n_embd);
        break;
      }
    }
  }

  b.Vec("output_norm.weight", n_embd);
  if (c.arch == Arch::kFalcon || c.arch == Arch::kGpt2) b.Vec("output_norm.bias", n_embd);
  if (!c.tied_embeddings) b.Mat("output.weight", n_embd, c.vocab_size);
  return out;
}

int64_t CountParameters(const ModelConfig& config) {
  int64_t total = 0;
  for (const TensorSpec& t : ModelTensors(config)) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    total += n;
  }
  return total;
}

}  // namespace formiga
