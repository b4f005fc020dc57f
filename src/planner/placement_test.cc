// Device maps resolved to one device per model part (ResolveDeviceMap,
// --gpu-layers as llama.cpp's -ngl), and the planner's memory prediction for
// a device checked against what the model placement really allocates there
// (a test device standing in for a GPU: model/test_device_backend.h).
#include "planner/placement.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "model/model.h"
#include "model/synth.h"
#include "model/test_device_backend.h"
#include "planner/memory.h"
#include "planner/weights.h"

namespace formiga::planner {
namespace {

TEST(ResolveDeviceMap, ModulesDefaultsAndErrors) {
  auto r = ResolveDeviceMap(*ParseDeviceMap("cpu"), 3, "--device-map");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embed, "cpu");
  EXPECT_EQ(r->layers, std::vector<std::string>(3, "cpu"));
  EXPECT_EQ(r->Devices(), std::vector<std::string>{"cpu"});

  // accelerate's names; unnamed modules go where "" says, else cpu.
  r = ResolveDeviceMap(*ParseDeviceMap(R"({"model.layers.1": 0, "model.layers.2": "cuda:1", "model.norm": 0,
                                           "lm_head": 0, "model.rotary_emb": "cpu"})"),
                       3, "--device-map");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embed, "cpu");
  EXPECT_EQ(r->layers, (std::vector<std::string>{"cpu", "cuda:0", "cuda:1"}));
  EXPECT_EQ(r->output, "cuda:0");
  EXPECT_EQ(r->Devices(), (std::vector<std::string>{"cpu", "cuda:0", "cuda:1"}));

  r = ResolveDeviceMap(*ParseDeviceMap(R"({"": "cuda:0", "blk.0": "cpu"})"), 2, "--device-map");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->embed, "cuda:0");
  EXPECT_EQ(r->layers, (std::vector<std::string>{"cpu", "cuda:0"}));

  // Strategies: the cpu (the runtime does not measure GPUs yet).
  r = ResolveDeviceMap(*ParseDeviceMap("auto"), 2, "--device-map");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Devices(), std::vector<std::string>{"cpu"});

  auto bad = ResolveDeviceMap(*ParseDeviceMap(R"({"blk.7": "cpu"})"), 4, "--device-map");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("blk.7 but the model has 4 layers"), std::string::npos)
      << bad.status().ToString();
  bad = ResolveDeviceMap(*ParseDeviceMap(R"({"vision_tower": "cpu"})"), 4, "--device-map");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown module 'vision_tower'"), std::string::npos);
  bad = ResolveDeviceMap(*ParseDeviceMap(R"({"output": 0, "output_norm": "cpu"})"), 4, "--device-map");
  EXPECT_FALSE(bad.ok());
}

TEST(ResolveDeviceMap, GpuLayersLikeLlamaCpp) {
  auto r = ResolveDeviceMap(GpuLayersMap(2, 4), 4, "--gpu-layers 2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->embed, "cpu");
  EXPECT_EQ(r->layers, (std::vector<std::string>{"cpu", "cpu", "cuda:0", "cuda:0"}));
  EXPECT_EQ(r->output, "cpu");
  r = ResolveDeviceMap(GpuLayersMap(99, 4), 4, "--gpu-layers 99");
  EXPECT_EQ(r->layers, std::vector<std::string>(4, "cuda:0"));
  EXPECT_EQ(r->output, "cuda:0");
  EXPECT_EQ(r->embed, "cpu");
  r = ResolveDeviceMap(GpuLayersMap(0, 4), 4, "--gpu-layers 0");
  EXPECT_EQ(r->Devices(), std::vector<std::string>{"cpu"});
  // Without CUDA, such a map is refused with the reason.
  const Status st = CheckPlacementSupported(GpuLayersMap(1, 4), "--gpu-layers 1", "built without CUDA");
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
  EXPECT_NE(st.message().find("blk.3 on cuda:0"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("built without CUDA"), std::string::npos) << st.ToString();
  EXPECT_TRUE(CheckPlacementSupported(GpuLayersMap(1, 4), "--gpu-layers 1", "").ok());
}

// What the planner predicts for a device's share (its layers' weights, exact
// per tensor; their KV cache) against what the placement allocated on it.
TEST(PlacementMemory, PlannerPredictionMatchesWhatTheDeviceHolds) {
  FORMIGA_REQUIRE_MODEL(donor, formiga::testing::kSmolLM2);
  ModelConfig c = *FindPreset("tinyllama-1.1b");  // untied: the output head is its own tensor
  c.name = "tiny-placement";
  c.vocab_size = 512;
  c.hidden_size = 64;
  c.n_layers = 4;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.ffn_size = 128;
  c.context_length = 256;
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("formiga_placement_mem_" + std::to_string(getpid()) + ".gguf")).string();
  SynthOptions o;
  o.type = "q8_0";
  o.tokenizer_from = donor;
  o.threads = 1;
  ASSERT_TRUE(SynthesizeModel(c, o, path).ok());
  auto file = GgufFile::Open(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto cpu = MakeCpuBackend(1);
  if (!cpu.ok()) GTEST_SKIP() << cpu.status().ToString();
  formiga::testing::TestDeviceBackend dev(**cpu, size_t{64} << 20, "cuda:0");
  // llama.cpp's -ngl 3 on a 4-layer model: layers 1..3 on the device.
  auto where = ResolveDeviceMap(GpuLayersMap(3, c.n_layers), c.n_layers, "--gpu-layers 3");
  ASSERT_TRUE(where.ok());
  ModelPlacement p;
  auto part = [&](const std::string& d) { return ModelPlacement::Part{d == "cpu" ? cpu->get() : &dev, d}; };
  p.embed = part(where->embed);
  for (const std::string& d : where->layers) p.layers.push_back(part(d));
  p.output = part(where->output);
  auto model = LoadModel(*file, p);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const uint64_t weights_held = dev.bytes_in_use();
  const int64_t n_ctx = 256, seqs = 2, block = 16;
  auto kv = (*model)->NewKvCache(seqs * n_ctx / block, block, DType::kF16);
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  const uint64_t kv_held = dev.bytes_in_use() - weights_held;
  EXPECT_EQ(kv->bytes_on(&dev), kv_held);

  auto w = WeightsFromGguf(*file, c, "file");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  uint64_t weights_predicted = 0, kv_predicted = 0;
  for (int64_t il = 1; il < 4; ++il) {
    weights_predicted += w->layer_bytes[static_cast<size_t>(il)];
    kv_predicted += KvBytesLayer(c, il, DType::kF16, seqs * n_ctx, seqs, /*cap_sliding=*/false);
  }
  const double total_held = static_cast<double>(weights_held + kv_held);
  const double total_predicted = static_cast<double>(weights_predicted + kv_predicted);
  std::printf("device share: weights held %llu predicted %llu, KV held %llu predicted %llu\n",
              static_cast<unsigned long long>(weights_held), static_cast<unsigned long long>(weights_predicted),
              static_cast<unsigned long long>(kv_held), static_cast<unsigned long long>(kv_predicted));
  EXPECT_NEAR(total_held, total_predicted, 0.05 * total_predicted);
  EXPECT_EQ(kv_held, kv_predicted);
  EXPECT_EQ(dev.failures(), 0);
}

}  // namespace
}  // namespace formiga::planner
