// Predictions against published figures, with sources and tolerances. The
// same table is in docs/planner.md ("Checked against published figures").
#include <gtest/gtest.h>

#include "planner/memory.h"
#include "planner/plan.h"
#include "planner/units.h"
#include "planner/weights.h"

namespace formiga::planner {
namespace {

ModelConfig Preset(const std::string& name) { return *FindPreset(name); }

// Meta Llama-3-8B: 32 layers x 8 KV heads x 128 x 2 (K,V) x 2 bytes = 128 KiB/token (f16).
TEST(Published, Llama3_8BKvPerToken) {
  EXPECT_EQ(KvBytes(Preset("llama-3-8b"), DType::kF16, 1, 1, false), 131072u);
}

// vLLM paper (Kwon et al. 2023, sec. 3): "for the 13B OPT model, the KV cache of a
// single token demands 800 KB" (2 x 5120 x 40 layers x 2 bytes); LLaMA-13B has the same shape.
TEST(Published, Vllm13BKvPerToken) {
  EXPECT_EQ(KvBytes(Preset("llama-13b"), DType::kF16, 1, 1, false), 2u * 5120 * 40 * 2);
  EXPECT_NEAR(KvBytes(Preset("llama-13b"), DType::kF16, 1, 1, false) / 1e3, 800, 25);
}

// Mistral 7B paper (Jiang et al. 2023, sec. 2): the rolling buffer cache of window 4096
// "reduces the cache memory usage by 8x" on a 32k-token sequence.
TEST(Published, MistralSlidingWindowIs8xSmallerAt32k) {
  const ModelConfig c = Preset("mistral-7b");
  EXPECT_EQ(KvBytes(c, DType::kF16, 32768, 1, false), 8 * KvBytes(c, DType::kF16, 32768, 1, true));
}

// ZeRO paper (Rajbhandari et al. 2020, Figure 1): 7.5B parameters, mixed-precision
// Adam (K = 12), 64 GPUs: baseline 120 GB, P_os 31.4 GB, P_os+g 16.6 GB, P_os+g+p 1.9 GB
// (the paper rounds 1.875 to 1.9: 2 % tolerance).
TEST(Published, ZeroFigure1) {
  ModelWeights w;
  w.parameters = 7'500'000'000;
  TrainingShape t;
  t.precision = Precision::kBf16Mixed;
  t.data_parallel = 64;
  const ModelConfig c = Preset("llama-7b");
  const double expect[] = {120, 31.4, 16.6, 1.9};
  for (int stage = 0; stage <= 3; ++stage) {
    t.zero_stage = stage;
    const TrainingMemory m = PredictTraining(c, w, t, 0);
    const double gb = (m.weights + m.master_weights + m.gradients + m.optimizer) / 1e9;
    EXPECT_NEAR(gb, expect[stage], expect[stage] * 0.02) << "stage " << stage;
  }
}

// Llama-2-7B GGUF files (TheBloke/Llama-2-7B-GGUF model card, planner-facts.md):
// tensor bytes within 3 % of the published file sizes. Q2_K excluded: llama.cpp's
// Q2_K mix changed after those files were made (it then kept attn_v/ffn_down and more
// tensors in Q4_K; today's mix, which formiga implements, gives ~2.53 GB).
TEST(Published, Llama2_7BGgufFileSizes) {
  const std::pair<const char*, double> files[] = {{"q3_k_m", 3.30}, {"q4_0", 3.83}, {"q4_k_m", 4.08},
                                                  {"q5_k_m", 4.78}, {"q6_k", 5.53}, {"q8_0", 7.16},
                                                  {"f16", 13.5}};
  for (const auto& [type, gb] : files) {
    EXPECT_NEAR(WeightsForConfig(Preset("llama-2-7b"), type)->total_bytes / 1e9, gb, gb * 0.03) << type;
  }
}

// Falcon-180B in bf16: ~360 GB of weights (seed 003; HF "Falcon 180B" blog: 8x A100 80GB
// for bf16 inference), 4-bit about a quarter (seed 003: ~160 GB at 4 bits... plus scales).
TEST(Published, Falcon180BSizes) {
  EXPECT_NEAR(WeightsForConfig(Preset("falcon-180b"), "bf16")->total_bytes / 1e9, 360, 360 * 0.01);
  const double q4 = WeightsForConfig(Preset("falcon-180b"), "q4_0")->total_bytes / 1e9;
  EXPECT_GT(q4, 90);
  EXPECT_LT(q4, 105);
}

// QLoRA paper (Dettmers et al. 2023, abstract): LLaMA-65B finetunes on a single 48 GB
// GPU (NF4 + double quantization, paged optimizers, r=64, gradient checkpointing), and
// full 16-bit finetuning of 65B needs "more than 780 GB".
TEST(Published, QloraLlama65BOn48GB) {
  const ModelConfig c = Preset("llama-65b");
  TrainingShape t;
  t.method = TrainMethod::kQlora;
  t.lora_rank = 64;
  t.checkpointing = true;
  t.micro_batch = 1;
  t.seq_len = 512;
  const TrainingMemory m = PredictTraining(c, *WeightsForConfig(c, "nf4"), t, 0);
  EXPECT_LT(m.per_gpu(), 48e9);
  EXPECT_GT(m.per_gpu(), 30e9);  // not trivially small either: the 4-bit base is ~34 GB
  TrainingShape full;
  const TrainingMemory f = PredictTraining(c, *WeightsForConfig(c, "bf16"), full, 0);
  EXPECT_GT(f.weights + f.master_weights + f.gradients + f.optimizer, 780e9);
}

// QLoRA on Llama-2-7B (planner-facts.md): NF4 base 3.6 GB (GiB), + r=16 adapters 4.24,
// training peak ~12.3 GB. The source does not record batch and sequence length: with
// micro-batch 2 x 512 tokens and no checkpointing the planner gives ~11.9 GB; the check
// is a plausibility band (+-15 %), the base weights a 5 % check.
TEST(Published, QloraLlama2_7B) {
  const ModelConfig c = Preset("llama-2-7b");
  const ModelWeights nf4 = *WeightsForConfig(c, "nf4");
  EXPECT_NEAR(static_cast<double>(nf4.total_bytes) / kGiB, 3.6, 3.6 * 0.05);
  TrainingShape t;
  t.method = TrainMethod::kQlora;
  t.lora_rank = 16;
  t.micro_batch = 2;
  t.seq_len = 512;
  const TrainingMemory m = PredictTraining(c, nf4, t, 0);
  EXPECT_NEAR(m.per_gpu() / 1e9, 12.3, 12.3 * 0.15);
}

}  // namespace
}  // namespace formiga::planner
