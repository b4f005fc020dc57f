// The planner's formulas against the figures in ../shared/reference/planner-facts.md
// and seeds 001/003.
#include <gtest/gtest.h>

#include "planner/memory.h"
#include "planner/units.h"
#include "planner/weights.h"

namespace formiga::planner {
namespace {

ModelConfig Preset(const std::string& name) {
  auto c = FindPreset(name);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

TEST(Units, ParsesSizes) {
  EXPECT_EQ(*ParseBytes("24GiB"), 24ull << 30);
  EXPECT_EQ(*ParseBytes("16 GB"), 16000000000ull);
  EXPECT_EQ(*ParseBytes("512M"), 512ull << 20);
  EXPECT_EQ(*ParseBytes("1.5TiB"), 3ull << 39);
  EXPECT_EQ(*ParseBytes("100"), 100u);
  EXPECT_FALSE(ParseBytes("lots").ok());
  EXPECT_FALSE(ParseBytes("12 parsecs").ok());
}

TEST(Weights, Falcon180BBf16IsAbout360GB) {
  const ModelWeights w = *WeightsForConfig(Preset("falcon-180b"), "bf16");
  EXPECT_NEAR(w.total_bytes / 1e9, 359, 3);  // seed 003: ~360 GB in BF16
  EXPECT_NEAR(w.bits_per_weight(), 16.0, 0.01);
}

TEST(Weights, FourBitIsAQuarterPlusScales) {
  const ModelWeights bf16 = *WeightsForConfig(Preset("falcon-180b"), "bf16");
  const ModelWeights q4 = *WeightsForConfig(Preset("falcon-180b"), "q4_0");
  const double ratio = static_cast<double>(q4.total_bytes) / static_cast<double>(bf16.total_bytes);
  // 4.5 bits (4 + an f16 scale per 32) over 16; the output matrix gets q6_K.
  EXPECT_GT(ratio, 4.5 / 16 - 0.001);
  EXPECT_LT(ratio, 4.5 / 16 + 0.01);
  EXPECT_GT(ratio, 0.25);
}

TEST(Weights, QuantMixUsesPerTensorTypes) {
  // llama.cpp's Q4_K_M gives attn_v / ffn_down of some layers Q6_K, so its
  // average is above Q4_K's 4.5 bits.
  const ModelWeights w = *WeightsForConfig(Preset("llama-2-7b"), "q4_k_m");
  EXPECT_GT(w.bits_per_weight(), 4.7);
  EXPECT_LT(w.bits_per_weight(), 5.0);
  int q6 = 0;
  for (const TensorBytes& t : w.tensors) q6 += t.type == DType::kQ6_K;
  EXPECT_GT(q6, 10);
}

// Llama-2-7B GGUF files as published (TheBloke/Llama-2-7B-GGUF, planner-facts.md):
// tensor data within 1.5 % of the file sizes (the rest is metadata).
TEST(Weights, Llama2_7BFileSizes) {
  const ModelConfig c = Preset("llama-2-7b");
  // q2_k: today's llama.cpp mix (2.53 GB), not the 2.83 GB of older files (published_test.cc).
  const std::pair<const char*, double> files[] = {{"q2_k", 2.53},   {"q3_k_m", 3.30}, {"q4_0", 3.83},
                                                  {"q4_k_m", 4.08}, {"q5_k_m", 4.78}, {"q6_k", 5.53},
                                                  {"q8_0", 7.16},   {"f16", 13.5}};
  for (const auto& [type, gb] : files) {
    const ModelWeights w = *WeightsForConfig(c, type);
    EXPECT_NEAR(w.total_bytes / 1e9, gb, gb * 0.03) << type;
  }
}

TEST(Training, HundredMillionParamsFp32AdamIs1_6GB) {
  // Seed 001: 100 M parameters, fp32 + Adam = 0.4 + 0.4 + 0.8 = 1.6 GB before activations.
  ModelConfig c = Preset("gpt2-124m");
  ModelWeights w;
  w.parameters = 100'000'000;
  w.total_bytes = 400'000'000;
  TrainingShape t;
  t.method = TrainMethod::kFull;
  t.precision = Precision::kFp32;
  t.optimizer = Optimizer::kAdamW;
  const TrainingMemory m = PredictTraining(c, w, t, 0);
  EXPECT_EQ(m.weights + m.master_weights + m.gradients + m.optimizer, 1'600'000'000u);
  EXPECT_EQ(m.weights, 400'000'000u);
  EXPECT_EQ(m.gradients, 400'000'000u);
  EXPECT_EQ(m.optimizer, 800'000'000u);
}

TEST(Training, MixedPrecisionAdamIs16BytesAndZeroShards) {
  ModelConfig c = Preset("llama-7b");
  ModelWeights w;
  w.parameters = 1'000'000'000;
  TrainingShape t;
  t.precision = Precision::kBf16Mixed;
  TrainingMemory m = PredictTraining(c, w, t, 0);
  EXPECT_EQ(m.weights + m.master_weights + m.gradients + m.optimizer, 16'000'000'000u);
  // ZeRO-2 over 8: 2P + 14P/8; ZeRO-3: 16P/8.
  t.data_parallel = 8;
  t.zero_stage = 2;
  m = PredictTraining(c, w, t, 0);
  EXPECT_EQ(m.weights + m.master_weights + m.gradients + m.optimizer, 2'000'000'000u + 14'000'000'000u / 8);
  t.zero_stage = 3;
  m = PredictTraining(c, w, t, 0);
  EXPECT_EQ(m.weights + m.master_weights + m.gradients + m.optimizer, 16'000'000'000u / 8);
}

TEST(Kv, UsesKvHeadsNotHeads) {
  // Llama-3-8B: 8 KV heads x 128 x 32 layers x 2 (K, V) x 2 bytes = 128 KiB per token in f16.
  const ModelConfig c = Preset("llama-3-8b");
  EXPECT_EQ(KvBytes(c, DType::kF16, 1, 1, false), 128u * 1024);
  // Llama-2-70B (GQA, 8 of 64 heads): 320 KiB/token, not 2.5 MiB.
  EXPECT_EQ(KvBytes(Preset("llama-2-70b"), DType::kF16, 1, 1, false), 320u * 1024);
  // q8_0 rows: 34 bytes per 32 elements.
  EXPECT_EQ(KvBytes(c, DType::kQ8_0, 1, 1, false), 32u * 2 * 1024 / 32 * 34);
}

TEST(Kv, SlidingWindowLayersCapTheirKv) {
  const ModelConfig g = Preset("gemma3-270m");  // window 512, every 6th layer global
  const uint64_t per = KvBytesPerTokenLayer(g, DType::kF16);
  // 8192 tokens: 3 global layers hold 8192, 15 local layers hold 512.
  EXPECT_EQ(KvBytes(g, DType::kF16, 8192, 1, true), per * (3 * 8192 + 15 * 512));
  EXPECT_EQ(KvBytes(g, DType::kF16, 8192, 1, false), per * 18 * 8192);
  // Two sequences of 4096: each capped at the window.
  EXPECT_EQ(KvBytes(g, DType::kF16, 8192, 2, true), per * (3 * 8192 + 15 * 1024));
  const ModelConfig m = Preset("mistral-7b");  // window 4096 on every layer
  EXPECT_EQ(KvBytes(m, DType::kF16, 32768, 1, true), KvBytes(m, DType::kF16, 4096, 1, false));
}

TEST(CpuRun, KvIsWhatTheEngineAllocates) {
  const ModelConfig c = Preset("smollm2-135m");
  const ModelWeights w = *WeightsForConfig(c, "q4_1");
  EngineShape e;
  e.n_ctx = 4096;
  e.max_seqs = 1;
  const CpuRunMemory m = PredictCpuRun(c, w, e, 0);
  // KvCache::BytesPerToken(30 layers, 3 x 64 f16) * 4096 positions.
  EXPECT_EQ(m.kv_cache, 2ull * 30 * 3 * 64 * 2 * 4096);
  // Tied embeddings: the whole embedding is read by the logits.
  EXPECT_EQ(m.weights, w.total_bytes);
}

TEST(Lora, AdapterParameters) {
  // Llama-2-7B, r=16 on q,k,v,o,gate,up,down: 16*(4*8192 + 3*(4096+11008)) per layer.
  EXPECT_EQ(LoraParameters(Preset("llama-2-7b"), 16), 32ll * 16 * (4 * 8192 + 3 * (4096 + 11008)));
}

}  // namespace
}  // namespace formiga::planner
