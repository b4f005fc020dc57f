// Presets: every preset is valid, and its parameter count (the sum of the
// element counts of ModelTensors) matches the model's published size within 1 %.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "model/config.h"

namespace formiga {
namespace {

// Published parameter counts and where they come from. "HF" means the
// parameter count Hugging Face shows on the model page (summed from the
// checkpoint's safetensors headers); papers are cited by their table.
struct Published {
  double params;
  const char* source;
};

const std::map<std::string, Published>& PublishedCounts() {
  static const std::map<std::string, Published> m = {
      {"gpt2-124m", {124.44e6, "HF openai-community/gpt2: 124M params (124,439,808 with tied lm_head)"}},
      {"smollm2-135m", {134.5e6, "HF HuggingFaceTB/SmolLM2-135M: 135M params (134,515,008)"}},
      {"gemma3-270m", {268.1e6, "Google Gemma 3 270M model card: 170M embedding + 100M transformer; HF 268M params"}},
      {"qwen2.5-0.5b", {0.494e9, "Qwen2.5-0.5B model card: Number of Parameters 0.49B"}},
      {"tinyllama-1.1b", {1.100e9, "TinyLlama/TinyLlama-1.1B model card: 1.1B params"}},
      {"llama-7b", {6.7e9, "Touvron et al. 2023 (LLaMA), Table 2: 6.7B"}},
      {"llama-13b", {13.0e9, "Touvron et al. 2023 (LLaMA), Table 2: 13.0B"}},
      {"llama-33b", {32.5e9, "Touvron et al. 2023 (LLaMA), Table 2: 32.5B"}},
      {"llama-65b", {65.2e9, "Touvron et al. 2023 (LLaMA), Table 2: 65.2B"}},
      {"llama-2-7b", {6.74e9, "HF meta-llama/Llama-2-7b-hf: 6.74B params"}},
      {"llama-2-13b", {13.0e9, "HF meta-llama/Llama-2-13b-hf: 13B params"}},
      {"llama-2-70b", {68.98e9, "HF meta-llama/Llama-2-70b-hf: 69B params (68,976,648,192)"}},
      {"llama-3-8b", {8.03e9, "HF meta-llama/Meta-Llama-3-8B: 8.03B params"}},
      {"llama-3-70b", {70.6e9, "HF meta-llama/Meta-Llama-3-70B: 70.6B params"}},
      {"mistral-7b", {7.24e9, "HF mistralai/Mistral-7B-v0.1: 7.24B params"}},
      {"qwen2.5-7b", {7.61e9, "Qwen2.5-7B model card: Number of Parameters 7.61B"}},
      // Falcon checkpoints store lm_head.weight beside the embedding; HF's
      // count includes it (6.92B unique parameters for falcon-7b when tied).
      {"falcon-7b", {7.22e9, "HF tiiuae/falcon-7b: 7.22B params (6.92B without the stored lm_head)"}},
      {"falcon-40b", {41.8e9, "HF tiiuae/falcon-40b: 41.8B params"}},
      {"falcon-180b", {179.5e9, "HF tiiuae/falcon-180B: 179.5B params; Almazrouei et al. 2023: 180B"}},
  };
  return m;
}

TEST(PresetsTest, EveryPresetIsValidAndHasAPublishedCount) {
  ASSERT_FALSE(PresetNames().empty());
  for (const std::string& name : PresetNames()) {
    SCOPED_TRACE(name);
    Result<ModelConfig> c = FindPreset(name);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->name, name);
    EXPECT_TRUE(c->Validate().ok()) << c->Validate().ToString();
    EXPECT_TRUE(PublishedCounts().count(name)) << "add the published parameter count of " << name;
  }
}

TEST(PresetsTest, ParameterCountsMatchPublishedWithinOnePercent) {
  for (const auto& [name, pub] : PublishedCounts()) {
    SCOPED_TRACE(name + std::string(" -- source: ") + pub.source);
    Result<ModelConfig> c = FindPreset(name);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    const double n = static_cast<double>(CountParameters(*c));
    std::printf("%-16s %16.0f params (published %.4g)\n", name.c_str(), n, pub.params);
    EXPECT_NEAR(n / pub.params, 1.0, 0.01) << "counted " << n << ", published " << pub.params;
  }
}

TEST(PresetsTest, ExactCountsForSmallModels) {
  // Exact counts summed from the real checkpoints' tensors.
  EXPECT_EQ(CountParameters(*FindPreset("smollm2-135m")), 134515008);
  EXPECT_EQ(CountParameters(*FindPreset("gpt2-124m")), 124439808);
  EXPECT_EQ(CountParameters(*FindPreset("llama-2-70b")), 68976648192);
  EXPECT_EQ(CountParameters(*FindPreset("llama-3-8b")), 8030261248);
  EXPECT_EQ(CountParameters(*FindPreset("mistral-7b")), 7241732096);
}

TEST(PresetsTest, UnknownPresetNamesTheKnownOnes) {
  Result<ModelConfig> c = FindPreset("llama-9000b");
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsNotFound());
  EXPECT_NE(c.status().message().find("llama-9000b"), std::string::npos);
  EXPECT_NE(c.status().message().find("falcon-180b"), std::string::npos);
}

TEST(ConfigTest, ArchNamesRoundTrip) {
  for (Arch a : {Arch::kLlama, Arch::kQwen2, Arch::kGemma3, Arch::kFalcon, Arch::kGpt2}) {
    Result<Arch> back = ParseArch(ArchName(a));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, a);
  }
  Result<Arch> bad = ParseArch("mamba");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("mamba"), std::string::npos);
}

TEST(ConfigTest, SlidingLayers) {
  ModelConfig g = *FindPreset("gemma3-270m");
  for (int il = 0; il < 18; ++il) EXPECT_EQ(g.IsSlidingLayer(il), il % 6 != 5) << il;
  ModelConfig m = *FindPreset("mistral-7b");
  EXPECT_TRUE(m.IsSlidingLayer(0));
  EXPECT_TRUE(m.IsSlidingLayer(31));
  ModelConfig l = *FindPreset("llama-7b");
  EXPECT_FALSE(l.IsSlidingLayer(0));
}

TEST(ConfigTest, ValidateRejectsBadHeads) {
  ModelConfig c = *FindPreset("llama-2-70b");
  c.n_kv_heads = 7;
  Status s = c.Validate();
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("n_kv_heads"), std::string::npos) << s.ToString();
  c = *FindPreset("llama-7b");
  c.vocab_size = 0;
  EXPECT_FALSE(c.Validate().ok());
}

TEST(TensorsTest, TiedModelsHaveNoOutputWeight) {
  for (const std::string& name : PresetNames()) {
    ModelConfig c = *FindPreset(name);
    bool has_output = false;
    for (const TensorSpec& t : ModelTensors(c)) has_output = has_output || t.name == "output.weight";
    EXPECT_EQ(has_output, !c.tied_embeddings) << name;
  }
}

TEST(TensorsTest, FalconNewArchHasSecondNormAndFusedQkv) {
  ModelConfig c = *FindPreset("falcon-40b");
  c.n_layers = 1;
  std::map<std::string, std::vector<int64_t>> m;
  for (const TensorSpec& t : ModelTensors(c)) m[t.name] = t.shape;
  EXPECT_EQ(m["blk.0.attn_qkv.weight"], (std::vector<int64_t>{8192, 8192 + 2 * 8 * 64}));
  EXPECT_TRUE(m.count("blk.0.attn_norm_2.weight"));
  EXPECT_TRUE(m.count("output_norm.bias"));
  EXPECT_FALSE(m.count("blk.0.ffn_gate.weight"));
  c = *FindPreset("falcon-7b");
  c.n_layers = 1;
  m.clear();
  for (const TensorSpec& t : ModelTensors(c)) m[t.name] = t.shape;
  EXPECT_FALSE(m.count("blk.0.attn_norm_2.weight"));
  EXPECT_EQ(m["blk.0.attn_qkv.weight"], (std::vector<int64_t>{4544, 4544 + 2 * 64}));
}

}  // namespace
}  // namespace formiga
