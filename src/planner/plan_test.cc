// Placement, plan and option parsing: device maps split layers by capacity,
// --quant auto picks the best type that fits, nothing-fits gives numbers,
// accelerate-style --max-memory / --device-map parse, CUDA maps are refused.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "planner/placement.h"
#include "planner/plan.h"
#include "planner/units.h"

namespace formiga::planner {
namespace {

HardwareCatalog TestCatalog() {
  const nlohmann::json j = nlohmann::json::parse(R"({"devices": [
    {"id": "cpu", "kind": "cpu", "memory": "16GiB", "bandwidth_gbs": 50, "tflops": {"f32": 1}},
    {"id": "gpu6", "kind": "gpu", "memory": "6GiB", "reserved": "512MiB", "bandwidth_gbs": 336,
     "tflops": {"bf16": 40}, "usd_per_hour": 0.5},
    {"id": "a100-80g", "kind": "gpu", "memory": "80GiB", "reserved": "512MiB", "bandwidth_gbs": 2039,
     "tflops": {"bf16": 312}, "usd_per_hour": 5}
  ]})");
  return *HardwareCatalog::Parse(j, "test");
}

ModelSource Source(const std::string& preset) {
  ModelSource s;
  s.label = preset;
  s.config = *FindPreset(preset);
  return s;
}

TEST(Hardware, ParsesSetups) {
  const HardwareCatalog cat = TestCatalog();
  HardwareSetup hw = *ParseHardwareSetup("a100-80g:4+cpu=256GiB", cat);
  ASSERT_EQ(hw.accelerators.size(), 4u);
  EXPECT_EQ(hw.accelerators[3].label, "cuda:3");
  EXPECT_EQ(hw.cpu.spec.memory_bytes, 256 * kGiB);
  hw = *ParseHardwareSetup("24GiB/1008", cat);
  EXPECT_EQ(hw.accelerators[0].spec.memory_bytes, 24 * kGiB);
  EXPECT_DOUBLE_EQ(hw.accelerators[0].spec.bandwidth_gbs, 1008);
  EXPECT_FALSE(ParseHardwareSetup("v100:2", cat).ok());
  EXPECT_FALSE(ParseHardwareSetup("a100-80g:x", cat).ok());
}

TEST(Plan, SplitsLayersBetweenGpuAndCpu) {
  const HardwareCatalog cat = TestCatalog();
  const HardwareSetup hw = *ParseHardwareSetup("gpu6+cpu=32GiB", cat);
  const ModelSource src = Source("llama-2-7b");
  InferenceShape shape;
  shape.n_ctx = 4096;
  const Plan p = *MakePlan(src, *SourceWeights(src, "q4_k_m"), hw, shape, PlanOptions{}, EfficiencyTable{},
                           PriceTable{});
  ASSERT_EQ(p.devices.size(), 2u);
  EXPECT_TRUE(p.fits);
  EXPECT_FALSE(p.fits_on_accelerators);
  EXPECT_EQ(p.devices[0].label, "cuda:0");
  EXPECT_LE(p.devices[0].total(), p.devices[0].budget);
  EXPECT_EQ(p.devices[0].layers.size() + p.devices[1].layers.size(), 32u);
  EXPECT_GT(p.devices[0].layers.size(), 10u);
  // Layers are contiguous: the GPU has 0..k-1, the CPU k..31 and the output.
  EXPECT_EQ(p.devices[1].layers.front(), static_cast<int64_t>(p.devices[0].layers.size()));
  EXPECT_TRUE(p.devices[1].output);
  // The CPU part is the slow one: decode is far below the GPU-only roofline.
  EXPECT_GT(p.decode_tps, 0);
  EXPECT_LT(p.decode_tps, 336e9 * 0.7 / 3.8e9);
}

TEST(Plan, AutoPicksBestTypeOnTheGpu) {
  const HardwareCatalog cat = TestCatalog();
  const HardwareSetup hw = *ParseHardwareSetup("gpu6+cpu=32GiB", cat);
  InferenceShape shape;
  shape.n_ctx = 2048;
  const Plan p = *PlanBestType(Source("llama-2-7b"), AutoQuantCandidates(), hw, shape, PlanOptions{},
                               EfficiencyTable{}, PriceTable{});
  EXPECT_TRUE(p.fits_on_accelerators);
  EXPECT_EQ(p.weight_type, "q4_k_m");  // q5_k_m (4.45 GiB) + 1 GiB KV does not fit in 5.5 GiB less headroom
  EXPECT_EQ(p.alternatives.size(), AutoQuantCandidates().size());
  EXPECT_TRUE(p.alternatives.front().fits);  // bf16 fits only with CPU offload
  EXPECT_FALSE(p.alternatives.front().fits_on_accelerators);
}

TEST(Plan, NothingFitsSaysWhatWould) {
  const HardwareCatalog cat = TestCatalog();
  const HardwareSetup hw = *ParseHardwareSetup("gpu6", cat);
  InferenceShape shape;
  shape.n_ctx = 4096;
  const Plan p = *PlanBestType(Source("llama-2-7b"), {"q8_0"}, hw, shape, PlanOptions{}, EfficiencyTable{},
                               PriceTable{});
  EXPECT_FALSE(p.fits);
  ASSERT_FALSE(p.suggestions.empty());
  EXPECT_NE(p.suggestions[0].find("--quant q"), std::string::npos) << p.suggestions[0];
  bool more = false;
  for (const std::string& s : p.suggestions) more = more || s.find("more memory") != std::string::npos;
  EXPECT_TRUE(more);
}

TEST(Plan, TrainingFullVsQlora) {
  const HardwareCatalog cat = TestCatalog();
  const HardwareSetup hw = *ParseHardwareSetup("a100-80g", cat);
  const ModelSource src = Source("llama-2-7b");
  PlanOptions o;
  o.training = TrainingShape{};
  o.training->seq_len = 512;
  Plan full = *MakePlan(src, *SourceWeights(src, "bf16"), hw, InferenceShape{}, o, EfficiencyTable{}, PriceTable{});
  EXPECT_FALSE(full.fits);  // 16 bytes x 6.7 B = 108 GB
  EXPECT_FALSE(full.suggestions.empty());
  o.training->method = TrainMethod::kQlora;
  Plan q = *MakePlan(src, *SourceWeights(src, "nf4"), hw, InferenceShape{}, o, EfficiencyTable{}, PriceTable{});
  EXPECT_TRUE(q.fits);
}

TEST(Plan, CostPerMillionTokens) {
  const HardwareCatalog cat = TestCatalog();
  const HardwareSetup hw = *ParseHardwareSetup("a100-80g:4", cat);
  const nlohmann::json pj = nlohmann::json::parse(
      R"({"options": [{"id": "a2-4g", "devices": "a100-80g:4", "usd_per_hour": 20.28, "spot_discount": [0.6, 0.91]}]})");
  const PriceTable prices = *PriceTable::Parse(pj, "test");
  const ModelSource src = Source("falcon-180b");
  InferenceShape shape;
  shape.n_ctx = 2048;
  const Plan p = *MakePlan(src, *SourceWeights(src, "q4_k_m"), hw, shape, PlanOptions{}, EfficiencyTable{}, prices);
  EXPECT_TRUE(p.fits);
  EXPECT_EQ(p.cost.option, "a2-4g");
  EXPECT_DOUBLE_EQ(p.cost.usd_per_hour, 20.28);
  EXPECT_NEAR(p.usd_per_mtok, 20.28 / (p.decode_tps * 3600) * 1e6, 1e-9);
  EXPECT_NEAR(p.cost.spot_usd_per_hour_min, 20.28 * 0.09, 1e-9);
}

TEST(Placement, MaxMemoryLikeAccelerate) {
  auto m = *ParseMaxMemory("cpu=30GiB, 0=10GiB,cuda:1=20GB");
  EXPECT_EQ(m["cpu"], 30 * kGiB);
  EXPECT_EQ(m["cuda:0"], 10 * kGiB);
  EXPECT_EQ(m["cuda:1"], 20'000'000'000u);
  EXPECT_FALSE(ParseMaxMemory("cpu").ok());
  EXPECT_FALSE(ParseMaxMemory("tpu:0=1GiB").ok());
  EXPECT_FALSE(ParseMaxMemory("disk=1GiB").ok());
}

TEST(Placement, DeviceMapsAndCudaRefusal) {
  DeviceMap m = *ParseDeviceMap("auto");
  EXPECT_EQ(m.strategy, "auto");
  EXPECT_TRUE(CheckPlacementSupported(m, "--device-map").ok());
  m = *ParseDeviceMap("cpu");
  EXPECT_TRUE(CheckPlacementSupported(m, "--device-map").ok());
  m = *ParseDeviceMap(R"({"model.embed_tokens": "cpu", "model.layers.0": 0, "lm_head": "cpu"})");
  ASSERT_EQ(m.entries.size(), 3u);
  EXPECT_EQ(m.entries[0].first, "output");  // JSON objects iterate in key order: lm_head first
  const Status st = CheckPlacementSupported(m, "--device-map");
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("CUDA placement is not available in this build"), std::string::npos);
  EXPECT_NE(st.message().find("blk.0"), std::string::npos);
}

TEST(Placement, CheckFitsExplainsAndSuggests) {
  const ModelConfig c = *FindPreset("smollm2-135m");
  const ModelWeights w = *WeightsForConfig(c, "q4_1");
  EngineShape e;
  e.n_ctx = 4096;
  EXPECT_TRUE(CheckFits(c, w, e, 0, 1 * kGiB, "test").ok());
  const Status st = CheckFits(c, w, e, 0, 150 * kMiB, "test");
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("--ctx "), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("KV cache"), std::string::npos);
  const Status none = CheckFits(c, w, e, 0, 20 * kMiB, "test");
  EXPECT_NE(none.message().find("smaller quantization"), std::string::npos) << none.message();
}

}  // namespace
}  // namespace formiga::planner
