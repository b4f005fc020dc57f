// ConfigFromHfJson / ConfigFromHfDir on the tiny random checkpoints of
// tests/data/hf (made by scripts/golden/make_tiny_hf_models.py) and on
// published config.json files, and the HF -> GGUF tensor-name mapping: every
// tensor of each checkpoint maps onto exactly the tensors ModelTensors lists.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/test_models.h"
#include "model/config.h"
#include "model/hf_names.h"

namespace formiga {
namespace {

using json = nlohmann::json;

std::string HfDir(const std::string& arch) { return (testing::SourceDir() / "tests/data/hf" / arch).string(); }

// Tensor names and shapes of a checkpoint, from the listing the generator
// wrote beside it (tensors.json).
// TODO(model): read the safetensors headers directly once formats/safetensors lands.
std::map<std::string, std::vector<int64_t>> HfTensors(const std::string& arch) {
  std::ifstream in(HfDir(arch) + "/tensors.json");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str());
  std::map<std::string, std::vector<int64_t>> out;
  for (auto& [k, v] : j.items()) out[k] = v.get<std::vector<int64_t>>();
  return out;
}

void ExpectMappingCoversModel(const std::string& arch) {
  SCOPED_TRACE(arch);
  Result<ModelConfig> c = ConfigFromHfDir(HfDir(arch));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto hf = HfTensors(arch);
  ASSERT_FALSE(hf.empty());
  std::map<std::string, std::vector<int64_t>> mapped;
  for (const auto& [name, shape] : hf) {
    Result<HfTensorMapping> m = MapHfTensor(*c, name, shape);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    if (m->transform == HfTransform::kSkip) continue;
    EXPECT_FALSE(mapped.count(m->gguf_name)) << "two HF tensors map to " << m->gguf_name;
    mapped[m->gguf_name] = m->gguf_shape;
  }
  std::map<std::string, std::vector<int64_t>> spec;
  for (const TensorSpec& t : ModelTensors(*c)) spec[t.name] = t.shape;
  EXPECT_EQ(mapped, spec);
}

TEST(HfConfigTest, TinyLlama) {
  Result<ModelConfig> c = ConfigFromHfDir(HfDir("llama"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->vocab_size, 320);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->n_layers, 2);
  EXPECT_EQ(c->n_heads, 4);
  EXPECT_EQ(c->n_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->ffn_size, 160);
  EXPECT_EQ(c->context_length, 256);
  EXPECT_FALSE(c->tied_embeddings);
  EXPECT_NEAR(c->norm_eps, 1e-5, 1e-12);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  ExpectMappingCoversModel("llama");
}

TEST(HfConfigTest, TinyLlamaSharded) {
  Result<ModelConfig> c = ConfigFromHfDir(HfDir("llama-sharded"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_layers, 2);
  ExpectMappingCoversModel("llama-sharded");
}

TEST(HfConfigTest, TinyQwen2) {
  Result<ModelConfig> c = ConfigFromHfDir(HfDir("qwen2"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kQwen2);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_TRUE(c->tied_embeddings);
  EXPECT_EQ(c->n_kv_heads, 2);
  EXPECT_EQ(c->sliding_window, 0);  // use_sliding_window is false
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  ExpectMappingCoversModel("qwen2");
}

TEST(HfConfigTest, TinyGemma3) {
  Result<ModelConfig> c = ConfigFromHfDir(HfDir("gemma3"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kGemma3);
  EXPECT_EQ(c->n_layers, 3);
  EXPECT_EQ(c->n_heads, 4);
  EXPECT_EQ(c->n_kv_heads, 1);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->ffn_size, 128);
  EXPECT_EQ(c->sliding_window, 4);
  EXPECT_EQ(c->sliding_window_pattern, 3);  // from layer_types, not the stale _sliding_window_pattern
  EXPECT_TRUE(c->IsSlidingLayer(0));
  EXPECT_FALSE(c->IsSlidingLayer(2));
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(c->rope_theta_local, 10000.0);
  EXPECT_DOUBLE_EQ(c->query_pre_attn_scalar, 32.0);
  EXPECT_DOUBLE_EQ(c->embedding_scale, 8.0);
  EXPECT_TRUE(c->tied_embeddings);
  ExpectMappingCoversModel("gemma3");
}

TEST(HfConfigTest, TinyFalconNewArch) {
  Result<ModelConfig> c = ConfigFromHfDir(HfDir("falcon"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kFalcon);
  EXPECT_TRUE(c->falcon_new_arch);
  EXPECT_TRUE(c->parallel_attn);
  EXPECT_EQ(c->n_heads, 4);
  EXPECT_EQ(c->n_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->ffn_size, 256);
  EXPECT_TRUE(c->tied_embeddings);
  ExpectMappingCoversModel("falcon");
}

// Published config.json files (abridged to the keys that matter).
TEST(HfConfigTest, Falcon7bRefinedWebModel) {
  // tiiuae/falcon-7b (remote-code era config)
  json j = json::parse(R"({"alibi": false, "bias": false, "hidden_size": 4544, "layer_norm_epsilon": 1e-05,
    "model_type": "RefinedWebModel", "multi_query": true, "n_head": 71, "n_layer": 32,
    "parallel_attn": true, "vocab_size": 65024})");
  Result<ModelConfig> c = ConfigFromHfJson(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->falcon_new_arch);
  EXPECT_EQ(c->n_kv_heads, 1);
  EXPECT_EQ(c->n_heads, 71);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->ffn_size, 4 * 4544);
  EXPECT_EQ(c->context_length, 2048);
}

TEST(HfConfigTest, Falcon40bRefinedWeb) {
  // tiiuae/falcon-40b (remote-code era config)
  json j = json::parse(R"({"alibi": false, "bias": false, "hidden_size": 8192, "layer_norm_epsilon": 1e-05,
    "model_type": "RefinedWeb", "n_head": 128, "n_head_kv": 8, "n_layer": 60, "parallel_attn": true,
    "vocab_size": 65024})");
  Result<ModelConfig> c = ConfigFromHfJson(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->falcon_new_arch);
  EXPECT_EQ(c->n_kv_heads, 8);
  EXPECT_EQ(c->ffn_size, 32768);
  ModelConfig p = *FindPreset("falcon-40b");
  c->tied_embeddings = p.tied_embeddings;  // the preset follows the stored checkpoint (see presets.cc)
  EXPECT_EQ(CountParameters(*c), CountParameters(p));
}

TEST(HfConfigTest, FalconTransformersSpelling) {
  // tiiuae/falcon-7b after the move to transformers' "falcon" model_type
  json j = json::parse(R"({"model_type": "falcon", "hidden_size": 4544, "num_attention_heads": 71,
    "num_hidden_layers": 32, "multi_query": true, "new_decoder_architecture": false, "num_kv_heads": 71,
    "parallel_attn": true, "bias": false, "alibi": false, "vocab_size": 65024})");
  Result<ModelConfig> c = ConfigFromHfJson(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_kv_heads, 1);  // multi_query wins over num_kv_heads in the old architecture
}

TEST(HfConfigTest, Gpt2) {
  // openai-community/gpt2
  json j = json::parse(R"({"model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_inner": null,
    "n_layer": 12, "n_positions": 1024, "layer_norm_epsilon": 1e-05, "vocab_size": 50257})");
  Result<ModelConfig> c = ConfigFromHfJson(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ffn_size, 3072);
  EXPECT_EQ(CountParameters(*c), 124439808);
  Result<HfTensorMapping> m = MapHfTensor(*c, "h.3.attn.c_attn.weight", {768, 2304});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->gguf_name, "blk.3.attn_qkv.weight");
  EXPECT_EQ(m->transform, HfTransform::kTranspose);
  EXPECT_EQ(m->gguf_shape, (std::vector<int64_t>{768, 2304}));
}

TEST(HfConfigTest, Llama31RopeScalingOldAndNewSpelling) {
  const char* old_spelling = R"({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})";
  const char* new_spelling = R"({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
    "rope_parameters": {"rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                        "original_max_position_embeddings": 8192, "rope_type": "llama3"}})";
  for (const char* text : {old_spelling, new_spelling}) {
    Result<ModelConfig> c = ConfigFromHfJson(json::parse(text));
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->rope_scaling, RopeScaling::kLlama3);
    EXPECT_DOUBLE_EQ(c->rope_scaling_factor, 8.0);
    EXPECT_EQ(c->rope_original_context, 8192);
    EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  }
}

TEST(HfConfigTest, Gemma3MultimodalUsesTextConfig) {
  json j = json::parse(R"({"model_type": "gemma3", "text_config": {"model_type": "gemma3_text",
    "hidden_size": 2560, "intermediate_size": 10240, "num_hidden_layers": 34, "num_attention_heads": 8,
    "num_key_value_heads": 4, "head_dim": 256, "vocab_size": 262208, "sliding_window": 1024,
    "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "query_pre_attn_scalar": 256}})");
  Result<ModelConfig> c = ConfigFromHfJson(j);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kGemma3);
  EXPECT_EQ(c->n_layers, 34);
  EXPECT_EQ(c->sliding_window_pattern, 6);
  EXPECT_EQ(c->rope_scaling, RopeScaling::kLinear);
  Result<HfTensorMapping> m = MapHfTensor(*c, "model.language_model.layers.0.self_attn.q_norm.weight", {256});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->gguf_name, "blk.0.attn_q_norm.weight");
  EXPECT_EQ(m->transform, HfTransform::kAddOne);
  m = MapHfTensor(*c, "model.vision_tower.vision_model.embeddings.patch_embedding.weight", {1152, 3, 14, 14});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->transform, HfTransform::kSkip);
}

TEST(HfConfigTest, UnknownModelTypeNamesItAndTheSupportedOnes) {
  Result<ModelConfig> c = ConfigFromHfJson(json::parse(R"({"model_type": "mamba", "hidden_size": 8})"));
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsUnsupported());
  EXPECT_NE(c.status().message().find("'mamba'"), std::string::npos) << c.status().ToString();
  EXPECT_NE(c.status().message().find("gemma3_text"), std::string::npos) << c.status().ToString();
  Result<ModelConfig> missing = ConfigFromHfDir("/nonexistent/dir");
  EXPECT_TRUE(missing.status().IsNotFound());
  Result<ModelConfig> no_key = ConfigFromHfJson(json::parse(R"({"model_type": "llama", "hidden_size": 8})"));
  ASSERT_FALSE(no_key.ok());
  EXPECT_NE(no_key.status().message().find("vocab_size"), std::string::npos) << no_key.status().ToString();
}

TEST(HfNamesTest, UnknownNameAndWrongShapeAreErrors) {
  ModelConfig c = *ConfigFromHfDir(HfDir("llama"));
  EXPECT_FALSE(MapHfTensor(c, "model.layers.0.self_attn.qq_proj.weight", {64, 64}).ok());
  EXPECT_FALSE(MapHfTensor(c, "model.layers.7.self_attn.q_proj.weight", {64, 64}).ok());  // 2 layers
  Result<HfTensorMapping> bad = MapHfTensor(c, "model.layers.0.self_attn.k_proj.weight", {64, 64});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("blk.0.attn_k.weight"), std::string::npos) << bad.status().ToString();
}

TEST(HfNamesTest, PermuteRopeMakesPairsAdjacent) {
  // One head of head_dim 4, 2 columns: HF rows r0..r3 (halves {r0,r1},{r2,r3})
  // become r0, r2, r1, r3 (pairs (r0,r2) and (r1,r3) adjacent).
  ModelConfig c = *ConfigFromHfDir(HfDir("llama"));
  HfTensorMapping m;
  m.transform = HfTransform::kPermuteRope;
  m.rope_heads = 1;
  const float in[8] = {0, 0.5f, 1, 1.5f, 2, 2.5f, 3, 3.5f};
  float out[8];
  ASSERT_TRUE(ApplyHfTransform(c, m, {4, 2}, in, out).ok());
  const float want[8] = {0, 0.5f, 2, 2.5f, 1, 1.5f, 3, 3.5f};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], want[i]) << i;
}

TEST(HfNamesTest, FalconQkvRegroupsPerKvHead) {
  // 4 query heads, 2 KV heads, head_dim 1, one column: HF [q0 q1 k0 v0 q2 q3 k1 v1]
  // -> GGUF [q0 q1 q2 q3 k0 k1 v0 v1].
  ModelConfig c = *ConfigFromHfDir(HfDir("falcon"));
  c.head_dim = 1;
  HfTensorMapping m;
  m.transform = HfTransform::kFalconQkv;
  const float in[8] = {10, 11, 20, 30, 12, 13, 21, 31};
  float out[8];
  ASSERT_TRUE(ApplyHfTransform(c, m, {8, 1}, in, out).ok());
  const float want[8] = {10, 11, 12, 13, 20, 21, 30, 31};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], want[i]) << i;
}

}  // namespace
}  // namespace formiga
