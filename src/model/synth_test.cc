// formiga synth: tiny llama and gemma3 files (layer override) in f32 and
// q8_0 re-open as GGUF with the preset's config, exactly ModelTensors'
// tensors, and a tokenizer of vocab_size entries; vocabulary resizing keeps
// the tokenizer consistent.
#include "model/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <unistd.h>
#include <string>

#include "core/quant.h"
#include "core/test_models.h"
#include "formats/gguf.h"
#include "model/config.h"

namespace formiga {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("formiga_synth_" + std::to_string(::getpid()) + "_" + name)).string();
}

void ExpectSameConfig(const ModelConfig& a, const ModelConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.n_kv_heads, b.n_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.ffn_size, b.ffn_size);
  EXPECT_EQ(a.context_length, b.context_length);
  EXPECT_NEAR(a.norm_eps, b.norm_eps, 1e-6 * b.norm_eps);
  EXPECT_NEAR(a.rope_theta, b.rope_theta, 1e-6 * b.rope_theta);
  EXPECT_EQ(a.rope_theta_local, b.rope_theta_local);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
  EXPECT_EQ(a.sliding_window_pattern, b.sliding_window_pattern);
  EXPECT_EQ(a.tied_embeddings, b.tied_embeddings);
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.falcon_new_arch, b.falcon_new_arch);
  EXPECT_EQ(a.query_pre_attn_scalar, b.query_pre_attn_scalar);
}

// `vocab` > 0 overrides the preset's vocabulary (keeps test files small:
// gemma3's 262144 x 640 embedding alone is 670 MB in f32).
void CheckSynth(const std::string& preset, const std::string& type, const std::string& donor, int layers,
                int64_t vocab = 0) {
  SCOPED_TRACE(preset + " " + type);
  ModelConfig want = *FindPreset(preset);
  want.n_layers = layers;
  if (vocab > 0) want.vocab_size = vocab;
  SynthOptions o;
  o.type = type;
  o.tokenizer_from = donor;
  o.threads = 2;
  const std::string path = TempPath(preset + "_" + type + ".gguf");
  Result<SynthReport> r = SynthesizeModel(want, o, path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->n_params, CountParameters(want));
  EXPECT_EQ(r->file_bytes, std::filesystem::file_size(path));

  Result<GgufFile> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  Result<ModelConfig> got = ConfigFromGguf(*f);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameConfig(*got, want);

  std::map<std::string, std::vector<int64_t>> spec, file;
  for (const TensorSpec& t : ModelTensors(want)) spec[t.name] = t.shape;
  for (const GgufTensorInfo& t : f->tensors()) file[t.name] = t.shape;
  EXPECT_EQ(file, spec);

  Result<std::vector<std::string>> tokens = f->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.status().ToString();
  EXPECT_EQ(static_cast<int64_t>(tokens->size()), want.vocab_size);
  const GgufValue* tt = f->Find("tokenizer.ggml.token_type");
  ASSERT_NE(tt, nullptr);
  EXPECT_EQ(static_cast<int64_t>(tt->size()), want.vocab_size);
  EXPECT_NE(f->Find("tokenizer.ggml.model"), nullptr);

  // Weights are sane: a norm is all ones, a matrix row has std ~0.02.
  const GgufTensorInfo* norm = f->FindTensor("blk.0.attn_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->type, DType::kF32);
  EXPECT_EQ(reinterpret_cast<const float*>(norm->data)[0], 1.0f);
  const GgufTensorInfo* q = f->FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  std::vector<float> row(static_cast<size_t>(q->shape[0]));
  ASSERT_TRUE(DequantizeRow(q->type, q->data, row.data(), q->shape[0]).ok());
  double sum2 = 0;
  for (float v : row) sum2 += static_cast<double>(v) * v;
  const double sd = std::sqrt(sum2 / static_cast<double>(row.size()));
  EXPECT_GT(sd, 0.015);
  EXPECT_LT(sd, 0.025);
  std::filesystem::remove(path);
}

TEST(SynthTest, TinyLlamaF32AndQ8) {
  FORMIGA_REQUIRE_MODEL(donor, testing::kSmolLM2);
  CheckSynth("smollm2-135m", "f32", donor, 2, 4096);
  CheckSynth("smollm2-135m", "q8_0", donor, 2);  // the donor's own vocabulary
}

TEST(SynthTest, TinyGemma3F32AndQ8) {
  FORMIGA_REQUIRE_MODEL(donor, testing::kGemma3);
  CheckSynth("gemma3-270m", "f32", donor, 2, 8192);
  CheckSynth("gemma3-270m", "q8_0", donor, 7, 8192);  // 7 layers: layer 5 is global
}

TEST(SynthTest, VocabularyResizing) {
  FORMIGA_REQUIRE_MODEL(donor, testing::kSmolLM2);
  // Grow the 49152-token donor to 60000 tokens, shrink it to 32000.
  CheckSynth("qwen2.5-0.5b", "q4_k_m", donor, 1, 60000);
  CheckSynth("smollm2-135m", "q4_0", donor, 1, 32000);
  // Shrinking drops merges whose pieces were removed.
  ModelConfig c = *FindPreset("llama-7b");
  c.n_layers = 1;
  c.hidden_size = 128;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.head_dim = 32;
  c.ffn_size = 256;
  c.vocab_size = 1000;
  SynthOptions o;
  o.type = "f16";
  o.tokenizer_from = donor;
  const std::string path = TempPath("shrink.gguf");
  ASSERT_TRUE(SynthesizeModel(c, o, path).ok());
  Result<GgufFile> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok());
  Result<std::vector<std::string>> tokens = f->GetStringArray("tokenizer.ggml.tokens");
  Result<std::vector<std::string>> merges = f->GetStringArray("tokenizer.ggml.merges");
  ASSERT_TRUE(tokens.ok() && merges.ok());
  EXPECT_EQ(tokens->size(), 1000u);
  EXPECT_GT(merges->size(), 0u);
  EXPECT_LT(merges->size(), 1000u);
  std::set<std::string> vocab(tokens->begin(), tokens->end());
  for (const std::string& m : *merges) {
    const size_t sp = m.find(' ');
    EXPECT_TRUE(vocab.count(m.substr(0, sp) + m.substr(sp + 1))) << m;
  }
  std::filesystem::remove(path);
}

TEST(SynthTest, TypeFallbackForOddRows) {
  EXPECT_EQ(SynthTensorType(DType::kQ4_K, 4096), DType::kQ4_K);
  EXPECT_EQ(SynthTensorType(DType::kQ4_K, 576), DType::kQ5_0);   // 576 % 256 != 0
  EXPECT_EQ(SynthTensorType(DType::kQ6_K, 4544), DType::kQ8_0);
  EXPECT_EQ(SynthTensorType(DType::kQ8_0, 4544), DType::kQ8_0);  // 4544 = 142 * 32
  EXPECT_EQ(SynthTensorType(DType::kQ4_0, 100), DType::kF16);
}

TEST(SynthTest, BadInputsAreErrors) {
  ModelConfig c = *FindPreset("smollm2-135m");
  SynthOptions o;
  o.type = "q9_9";
  o.tokenizer_from = "/nonexistent.gguf";
  EXPECT_FALSE(SynthesizeModel(c, o, TempPath("bad.gguf")).ok());
  o.type = "f16";
  Result<SynthReport> r = SynthesizeModel(c, o, TempPath("bad.gguf"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nonexistent"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace formiga
