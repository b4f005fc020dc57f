// The engine on a placed model: its KV cache is created through the model's
// placement (device layers' KV in the device's memory) and continuous
// batching over a split model generates exactly what the plain cpu model
// does. The device is model/test_device_backend.h's stand-in (own memory,
// every op's pointers checked, cpu backend underneath).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "kernels/backend.h"
#include "model/test_device_backend.h"
#include "runtime/engine.h"
#include "runtime/tiny_model_test_util.h"

namespace formiga {
namespace {

using EnginePlacementTest = TinyModelTest;

std::vector<std::vector<int32_t>> Generate(Model& model, const Tokenizer& tokenizer, uint64_t* kv_bytes) {
  EngineOptions o;
  o.n_ctx = 96;
  o.max_seqs = 3;
  o.max_batch_tokens = 16;  // prompts are chunked beside decode tokens
  auto engine = Engine::Create(model, tokenizer, o);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return {};
  *kv_bytes = (*engine)->kv_bytes();
  std::vector<std::vector<int32_t>> out(4);
  for (int i = 0; i < 4; ++i) {
    GenerationRequest r;
    for (int k = 0; k < 9 + 5 * i; ++k) r.prompt.push_back(100 + (i * 7919 + k * 104729) % 40000);
    r.sampling.temperature = 0.0f;
    r.max_tokens = 12;
    r.ignore_eos = true;
    std::vector<int32_t>* tokens = &out[static_cast<size_t>(i)];
    r.on_event = [tokens](const TokenEvent& e) {
      if (e.token >= 0 && !e.done) tokens->push_back(e.token);
      return true;
    };
    EXPECT_TRUE((*engine)->Submit(std::move(r)).ok());
  }
  const Status st = (*engine)->RunUntilIdle();
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

TEST_F(EnginePlacementTest, SplitModelGeneratesWhatTheCpuModelDoes) {
  auto cpu = MakeCpuBackend(2);
  if (!cpu.ok()) GTEST_SKIP() << cpu.status().ToString();
  auto plain = LoadModel(*file_, **cpu);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  uint64_t kv_plain = 0, kv_placed = 0;
  const auto want = Generate(**plain, *tokenizer_, &kv_plain);

  testing::TestDeviceBackend dev(**cpu, size_t{256} << 20, "cuda:0");
  ModelPlacement p = ModelPlacement::Uniform(**cpu, 2, "cpu");
  p.layers[1] = ModelPlacement::Part{&dev, "cuda:0"};
  p.output = ModelPlacement::Part{&dev, "cuda:0"};
  auto placed = LoadModel(*file_, p);
  ASSERT_TRUE(placed.ok()) << placed.status().ToString();
  const size_t weights_on_device = dev.bytes_in_use();
  const auto got = Generate(**placed, *tokenizer_, &kv_placed);
  EXPECT_EQ(want, got);
  EXPECT_EQ(kv_plain, kv_placed);
  // Layer 1's half of the KV cache was in the device's memory (freed with the engine).
  EXPECT_GE(dev.peak_bytes(), weights_on_device + kv_placed / 2);
  EXPECT_EQ(dev.failures(), 0);
  EXPECT_GT(dev.ops(), 0);
}

}  // namespace
}  // namespace formiga
