// ConfigFromGguf and ModelTensors against the two real test models: the
// numbers (checked by hand with gguf-py) and the exact tensor list (names and
// shapes) of each file.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "model/config.h"

namespace formiga {
namespace {

using ShapeMap = std::map<std::string, std::vector<int64_t>>;

ShapeMap FileTensors(const GgufFile& f) {
  ShapeMap m;
  for (const GgufTensorInfo& t : f.tensors()) m[t.name] = t.shape;
  return m;
}
ShapeMap SpecTensors(const ModelConfig& c) {
  ShapeMap m;
  for (const TensorSpec& t : ModelTensors(c)) m[t.name] = t.shape;
  return m;
}

void ExpectSameTensors(const ShapeMap& file, const ShapeMap& spec) {
  for (const auto& [name, shape] : file) {
    auto it = spec.find(name);
    if (it == spec.end()) {
      ADD_FAILURE() << "file has " << name << ", ModelTensors does not";
    } else {
      EXPECT_EQ(it->second, shape) << name;
    }
  }
  for (const auto& [name, shape] : spec) {
    EXPECT_TRUE(file.count(name)) << "ModelTensors has " << name << ", the file does not";
  }
  EXPECT_EQ(file.size(), spec.size());
}

TEST(GgufConfigTest, SmolLM2) {
  FORMIGA_REQUIRE_MODEL(path, testing::kSmolLM2);
  Result<GgufFile> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  Result<ModelConfig> c = ConfigFromGguf(*f);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kLlama);
  EXPECT_EQ(c->hidden_size, 576);
  EXPECT_EQ(c->n_layers, 30);
  EXPECT_EQ(c->n_heads, 9);
  EXPECT_EQ(c->n_kv_heads, 3);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->ffn_size, 1536);
  EXPECT_EQ(c->vocab_size, 49152);
  EXPECT_EQ(c->context_length, 8192);
  EXPECT_TRUE(c->tied_embeddings);
  EXPECT_DOUBLE_EQ(c->rope_theta, 100000.0);
  EXPECT_NEAR(c->norm_eps, 1e-5, 1e-10);
  EXPECT_EQ(c->sliding_window, 0);
  ExpectSameTensors(FileTensors(*f), SpecTensors(*c));
  // The preset describes the same model.
  EXPECT_EQ(CountParameters(*c), CountParameters(*FindPreset("smollm2-135m")));
}

TEST(GgufConfigTest, Gemma3) {
  FORMIGA_REQUIRE_MODEL(path, testing::kGemma3);
  Result<GgufFile> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  Result<ModelConfig> c = ConfigFromGguf(*f);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->arch, Arch::kGemma3);
  EXPECT_EQ(c->hidden_size, 640);
  EXPECT_EQ(c->n_layers, 18);
  EXPECT_EQ(c->n_heads, 4);
  EXPECT_EQ(c->n_kv_heads, 1);
  EXPECT_EQ(c->head_dim, 256);
  EXPECT_EQ(c->ffn_size, 2048);
  EXPECT_EQ(c->vocab_size, 262144);
  EXPECT_EQ(c->context_length, 32768);
  EXPECT_TRUE(c->tied_embeddings);
  EXPECT_EQ(c->sliding_window, 512);
  EXPECT_EQ(c->sliding_window_pattern, 6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1e6);
  EXPECT_DOUBLE_EQ(c->rope_theta_local, 10000.0);
  EXPECT_DOUBLE_EQ(c->query_pre_attn_scalar, 256.0);
  EXPECT_NEAR(c->norm_eps, 1e-6, 1e-12);
  EXPECT_FALSE(c->IsSlidingLayer(5));
  EXPECT_TRUE(c->IsSlidingLayer(4));
  ExpectSameTensors(FileTensors(*f), SpecTensors(*c));
  EXPECT_EQ(CountParameters(*c), CountParameters(*FindPreset("gemma3-270m")));
}

}  // namespace
}  // namespace formiga
