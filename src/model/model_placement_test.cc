// Model placement proven on the CPU (issue 8's groundwork): a
// TestDeviceBackend (test_device_backend.h) stands in for a GPU — its own
// memory, IsHost() false, every op checking that every pointer it gets lives
// in that memory — and delegates to the cpu backend, so a placed model must
// give logits bit-identical to the plain cpu model:
//   (a) every part on the device, for tiny random models of every
//       architecture (llama tied and untied, qwen2, gemma3, falcon old/new);
//   (b) layers split between the device and the host cpu backend (halves,
//       interleaved, two devices), llama, gemma3 (sliding-window layers)
//       and falcon;
//   (c) ragged batches of several sequences (prefill chunks beside decode
//       tokens, paged KV with interleaved blocks) across the split, and each
//       sequence run alone gives the same logits;
//   (d) a device that runs out of memory gives ResourceExhausted naming the
//       device and what to do, at load (weights) and at KV cache creation.
#include <gtest/gtest.h>
#include <gtest/gtest-spi.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/forward_test_util.h"
#include "model/model.h"
#include "model/synth.h"
#include "model/synth_test_util.h"
#include "model/test_device_backend.h"

namespace formiga {
namespace {

using testing::TestDeviceBackend;

constexpr size_t kArena = size_t{64} << 20;

struct TinyArch {
  const char* name;    // test label
  const char* preset;  // shape and architecture flags
  int64_t kv_heads;
};

// Small enough to run in milliseconds, large enough for the q8_0 kernels
// (rows of 64 and 128) and for gemma3's sliding window (6 positions, every
// 2nd layer global) to matter over ~17 positions.
const TinyArch kArchs[] = {
    {"llama", "smollm2-135m", 2},       // tied embeddings
    {"llama_untied", "tinyllama-1.1b", 2},
    {"qwen2", "qwen2.5-0.5b", 2},       // q/k/v biases
    {"gemma3", "gemma3-270m", 1},       // sandwich norms, q/k norms, local + global layers
    {"falcon", "falcon-7b", 1},         // old arch: one norm, multi-query
    {"falcon_new", "falcon-40b", 2},    // new arch: two norms
};

ModelConfig TinyConfig(const TinyArch& a) {
  ModelConfig c = *FindPreset(a.preset);
  c.name = std::string("tiny-") + a.name;
  c.vocab_size = 512;
  c.hidden_size = 64;
  c.n_layers = 4;
  c.n_heads = 4;
  c.n_kv_heads = a.kv_heads;
  c.head_dim = 16;
  c.ffn_size = 128;
  c.context_length = 64;
  if (c.arch == Arch::kGemma3) {
    c.sliding_window = 6;
    c.sliding_window_pattern = 2;
    c.query_pre_attn_scalar = 16;
    c.embedding_scale = 8.0;
  }
  return c;
}

class PlacementTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string donor = (formiga::testing::ModelsDir() / formiga::testing::kSmolLM2).string();
    if (!std::filesystem::exists(donor)) return;
    files_ = new std::map<std::string, std::unique_ptr<GgufFile>>();
    for (const TinyArch& a : kArchs) {
      auto f = formiga::testing::SynthTinyModel(TinyConfig(a), "q8_0", donor, std::string("placement_") + a.name);
      ASSERT_TRUE(f.ok()) << a.name << ": " << f.status().ToString();
      (*files_)[a.name] = std::make_unique<GgufFile>(std::move(f.value()));
    }
  }
  static void TearDownTestSuite() {
    delete files_;
    files_ = nullptr;
  }

  void SetUp() override {
    FORMIGA_REQUIRE_MODEL(donor, formiga::testing::kSmolLM2);
    ASSERT_NE(files_, nullptr);
    auto cpu = MakeCpuBackend(2);
    if (!cpu.ok()) GTEST_SKIP() << cpu.status().ToString();
    cpu_ = std::move(cpu.value());
  }

  const GgufFile& File(const std::string& name) { return *files_->at(name); }

  // A placement of n layers: `layers[i]` is the backend of layer i.
  static ModelPlacement Split(Backend* embed, const std::vector<Backend*>& layers, Backend* output) {
    ModelPlacement p;
    auto part = [](Backend* be) {
      auto* dev = dynamic_cast<TestDeviceBackend*>(be);
      return ModelPlacement::Part{be, dev != nullptr ? dev->device() : std::string("cpu")};
    };
    p.embed = part(embed);
    for (Backend* be : layers) p.layers.push_back(part(be));
    p.output = part(output);
    return p;
  }

  static std::map<std::string, std::unique_ptr<GgufFile>>* files_;
  std::unique_ptr<Backend> cpu_;
};

std::map<std::string, std::unique_ptr<GgufFile>>* PlacementTest::files_ = nullptr;

// Three sequences through ragged batches: two prompts together, then decode
// tokens beside a third prompt, then greedy decoding of all three for 5
// steps. Returns every logits row in order and the tokens chosen.
struct Script {
  std::vector<float> logits;
  std::vector<int32_t> tokens;
};

Script RunScript(Model& model) {
  testing::ForwardTestRunner run(model, 32, 4);
  const int64_t V = model.config().vocab_size;
  Script out;
  auto keep = [&](const std::vector<float>& l) { out.logits.insert(out.logits.end(), l.begin(), l.end()); };
  auto greedy = [&](const std::vector<float>& l, size_t row) {
    const int32_t t = testing::Argmax(l.data() + row * V, V);
    out.tokens.push_back(t);
    return t;
  };
  const int s0 = run.AddSequence(), s1 = run.AddSequence(), s2 = run.AddSequence();
  std::vector<float> l = run.Run({s0, s1}, {{1, 17, 300, 42, 9, 511, 7, 100, 64}, {5, 6, 7, 8, 9, 10}},
                                 {{0, 3, 8}, {5}});
  keep(l);
  int32_t t0 = greedy(l, 2), t1 = greedy(l, 3);
  l = run.Run({s1, s0, s2}, {{t1}, {t0}, {200, 201, 202, 203, 204}}, {{0}, {0}, {1, 4}});
  keep(l);
  t1 = greedy(l, 0);
  t0 = greedy(l, 1);
  int32_t t2 = greedy(l, 3);
  for (int step = 0; step < 5; ++step) {
    l = run.Step({s0, s1, s2}, {{t0}, {t1}, {t2}});
    keep(l);
    t0 = greedy(l, 0);
    t1 = greedy(l, 1);
    t2 = greedy(l, 2);
  }
  return out;
}

void ExpectSameScript(const Script& want, const Script& got, const std::string& what) {
  EXPECT_EQ(want.tokens, got.tokens) << what;
  ASSERT_EQ(want.logits.size(), got.logits.size()) << what;
  EXPECT_EQ(0, std::memcmp(want.logits.data(), got.logits.data(), want.logits.size() * sizeof(float)))
      << what << ": logits differ (max |diff| "
      << testing::MaxAbsDiff(want.logits.data(), got.logits.data(), static_cast<int64_t>(want.logits.size()))
      << ")";
}

TEST_F(PlacementTest, WholeModelOnTheDeviceIsBitIdenticalToCpu) {
  for (const TinyArch& a : kArchs) {
    SCOPED_TRACE(a.name);
    auto plain = LoadModel(File(a.name), *cpu_);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    const Script want = RunScript(**plain);
    ASSERT_FALSE(want.logits.empty());

    TestDeviceBackend dev(*cpu_, kArena);
    const int64_t n = (*plain)->config().n_layers;
    auto placed = LoadModel(File(a.name), ModelPlacement::Uniform(dev, n, dev.device()));
    ASSERT_TRUE(placed.ok()) << placed.status().ToString();
    EXPECT_GT(dev.bytes_in_use(), 0u) << "weights were not uploaded";
    ExpectSameScript(want, RunScript(**placed), a.name);
    EXPECT_EQ(dev.failures(), 0);
    EXPECT_GT(dev.ops(), 0);
  }
}

// A host backend's packed weights (Backend::PackWeight: the cpu backend's
// avx512-vnni Q4_0/Q8_0 layout) give the same logits, bit for bit, as
// computing from the mapped rows (FORMIGA_PACK_WEIGHTS=0), for every
// architecture (falcon's sliced q/k/v and llama's tied output included).
TEST_F(PlacementTest, PackedHostWeightsAreBitIdenticalToTheRows) {
  const std::vector<uint8_t> probe_bytes(16 * 34);
  const WeightView probe{DType::kQ8_0, probe_bytes.data(), 32, 16, 34};
  const bool packs = cpu_->PackedBytes(probe) > 0;
  std::printf("the cpu backend %s\n", packs ? "packs q8_0 weights" : "keeps q8_0 as rows (not an avx512-vnni CPU)");
  for (const TinyArch& a : kArchs) {
    SCOPED_TRACE(a.name);
    setenv("FORMIGA_PACK_WEIGHTS", "0", 1);
    auto rows = LoadModel(File(a.name), *cpu_);
    unsetenv("FORMIGA_PACK_WEIGHTS");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ((*rows)->packed_weight_bytes(), 0u);
    auto packed = LoadModel(File(a.name), *cpu_);
    ASSERT_TRUE(packed.ok()) << packed.status().ToString();
    if (packs) {
      EXPECT_GT((*packed)->packed_weight_bytes(), 0u) << "nothing was packed";
    } else {
      EXPECT_EQ((*packed)->packed_weight_bytes(), 0u);
    }
    ExpectSameScript(RunScript(**rows), RunScript(**packed), a.name);
  }
}

TEST_F(PlacementTest, LayersSplitBetweenDeviceAndHostAreBitIdentical) {
  for (const char* name : {"llama", "gemma3", "falcon", "falcon_new"}) {
    SCOPED_TRACE(name);
    auto plain = LoadModel(File(name), *cpu_);
    ASSERT_TRUE(plain.ok()) << plain.status().ToString();
    const Script want = RunScript(**plain);
    TestDeviceBackend dev(*cpu_, kArena), dev2(*cpu_, kArena, "testdev:1");
    Backend* h = cpu_.get();
    Backend* d = &dev;
    Backend* d2 = &dev2;
    const struct {
      const char* what;
      ModelPlacement p;
    } cases[] = {
        {"first half on the device, output head too", Split(h, {d, d, h, h}, d)},
        {"second half on the device (llama.cpp's --gpu-layers), embedding on the device",
         Split(d, {h, h, d, d}, h)},
        {"interleaved", Split(d, {h, d, h, d}, h)},
        {"two devices and the host", Split(h, {d, d2, h, d2}, d)},
    };
    for (const auto& c : cases) {
      auto placed = LoadModel(File(name), c.p);
      ASSERT_TRUE(placed.ok()) << c.what << ": " << placed.status().ToString();
      ExpectSameScript(want, RunScript(**placed), std::string(name) + ", " + c.what);
    }
    EXPECT_EQ(dev.failures() + dev2.failures(), 0);
    EXPECT_GT(dev2.ops(), 0);
  }
}

// (c) Batch invariance across the split: a sequence's logits do not depend on
// the sequences beside it in a ragged batch, nor on how its blocks
// interleave with theirs in the paged cache.
TEST_F(PlacementTest, RaggedPagedBatchAcrossTheSplitMatchesEachSequenceAlone) {
  for (const char* name : {"llama", "gemma3", "falcon"}) {
    SCOPED_TRACE(name);
    TestDeviceBackend dev(*cpu_, kArena);
    Backend* h = cpu_.get();
    Backend* d = &dev;
    auto model = LoadModel(File(name), Split(h, {h, d, d, h}, d));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const int64_t V = (*model)->config().vocab_size;
    const std::vector<std::vector<int32_t>> prompts = {
        {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5}, {2, 7, 1, 8, 2, 8}, {11, 12, 13, 14, 15, 16, 17, 18, 19}};
    // Together: chunks of different lengths in one batch, then one more decode
    // step each, with logits for every position.
    testing::ForwardTestRunner together(**model, 32, 4);
    std::vector<int> seqs = {together.AddSequence(), together.AddSequence(), together.AddSequence()};
    std::vector<std::vector<float>> got(3);
    {
      std::vector<std::vector<int32_t>> chunks, rows;
      for (const auto& p : prompts) {
        chunks.push_back({p.begin(), p.end() - 1});
        rows.emplace_back();
        for (int32_t r = 0; r + 1 < static_cast<int32_t>(p.size()); ++r) rows.back().push_back(r);
      }
      const std::vector<float> l = together.Run(seqs, chunks, rows);
      size_t row = 0;
      for (size_t s = 0; s < 3; ++s) {
        for (size_t r = 0; r + 1 < prompts[s].size(); ++r, ++row) {
          got[s].insert(got[s].end(), l.begin() + row * V, l.begin() + (row + 1) * V);
        }
      }
      const std::vector<float> last = together.Step(seqs, {{prompts[0].back()}, {prompts[1].back()}, {prompts[2].back()}});
      for (size_t s = 0; s < 3; ++s) got[s].insert(got[s].end(), last.begin() + s * V, last.begin() + (s + 1) * V);
    }
    for (size_t s = 0; s < 3; ++s) {
      testing::ForwardTestRunner alone(**model, 32, 4);
      const int a = alone.AddSequence();
      std::vector<float> want;
      for (int32_t tok : prompts[s]) {
        const std::vector<float> l = alone.Step({a}, {{tok}});
        want.insert(want.end(), l.begin(), l.end());
      }
      ASSERT_EQ(want.size(), got[s].size());
      EXPECT_EQ(0, std::memcmp(want.data(), got[s].data(), want.size() * sizeof(float))) << "sequence " << s;
    }
    EXPECT_EQ(dev.failures(), 0);
  }
}

TEST_F(PlacementTest, DeviceOutOfMemoryIsAClearError) {
  const GgufFile& file = File("llama");
  const int64_t n = 4;
  // Weights: a device far too small for its layers.
  {
    TestDeviceBackend tiny(*cpu_, 64 << 10, "cuda:7");
    Backend* h = cpu_.get();
    auto m = LoadModel(file, Split(h, {h, h, &tiny, &tiny}, h));
    ASSERT_FALSE(m.ok());
    const Status& st = m.status();
    EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
    EXPECT_NE(st.message().find("cuda:7 is out of memory placing blk."), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find("--gpu-layers"), std::string::npos) << st.ToString();
    EXPECT_NE(st.message().find("formiga plan"), std::string::npos) << st.ToString();
    EXPECT_EQ(tiny.failures(), 0);
  }
  // KV cache: the weights fit, the cache does not.
  size_t weights = 0;
  {
    TestDeviceBackend probe(*cpu_, kArena);
    auto m = LoadModel(file, ModelPlacement::Uniform(probe, n, probe.device()));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    weights = probe.bytes_in_use();
  }
  TestDeviceBackend dev(*cpu_, weights + (16 << 10), "cuda:0");
  auto m = LoadModel(file, ModelPlacement::Uniform(dev, n, dev.device()));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto kv = (*m)->NewKvCache(1024, 16, DType::kF16);  // 2 MiB a layer
  ASSERT_FALSE(kv.ok());
  EXPECT_EQ(kv.status().code(), StatusCode::kResourceExhausted) << kv.status().ToString();
  EXPECT_NE(kv.status().message().find("does not fit on cuda:0"), std::string::npos) << kv.status().ToString();
  EXPECT_NE(kv.status().message().find("--ctx"), std::string::npos) << kv.status().ToString();
}

TEST_F(PlacementTest, HostKvCacheForDeviceLayersIsRefused) {
  TestDeviceBackend dev(*cpu_, kArena);
  Backend* h = cpu_.get();
  auto m = LoadModel(File("llama"), Split(h, {h, h, &dev, &dev}, h));
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  auto kv = KvCache::Create(4, 8, (*m)->kv_layout(4, DType::kF16));
  ASSERT_TRUE(kv.ok());
  const int32_t tokens[] = {1}, pos[] = {0}, seq[] = {0}, table[] = {0}, rows[] = {0};
  const int32_t* tables[] = {table};
  const int64_t slots[] = {0};
  ForwardBatch b;
  b.tokens = tokens;
  b.attn = AttentionBatch{1, pos, seq, tables, slots};
  b.logit_rows = rows;
  b.n_logit_rows = 1;
  std::vector<float> logits(512);
  const Status st = (*m)->Forward(b, *kv, logits.data());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("layer 2"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("NewKvCache"), std::string::npos) << st.ToString();
}

// The checks are not vacuous: host memory, a pointer past an allocation and a
// host block table inside a device batch are each reported, naming op and argument.
TEST_F(PlacementTest, TestDeviceReportsPointersOutsideItsMemory) {
  TestDeviceBackend dev(*cpu_, 1 << 20);
  std::vector<float> host(64, 1.0f);
  auto mem = BackendBuffer::Allocate(dev, 64 * sizeof(float));
  ASSERT_TRUE(mem.ok());
  float* d = static_cast<float*>(mem->data());
  EXPECT_TRUE(dev.CopyToDevice(d, host.data(), 64 * sizeof(float)).ok());
  dev.Add(d, d, d, 64);
  EXPECT_EQ(dev.failures(), 0);
  EXPECT_NONFATAL_FAILURE(dev.Add(d, host.data(), d, 64), "Add: argument b");
  EXPECT_NONFATAL_FAILURE(dev.Scale(d, 2.0f, 65), "Scale: argument x");  // one float past the end
  auto meta = BackendBuffer::Allocate(dev, 256);
  ASSERT_TRUE(meta.ok());
  auto* ints = static_cast<int32_t*>(meta->data());
  ints[0] = 0;  // position
  ints[1] = 0;  // sequence
  auto* slot = reinterpret_cast<int64_t*>(ints + 2);
  *slot = 0;
  const int32_t host_table[] = {0};
  const int32_t** tables = reinterpret_cast<const int32_t**>(ints + 4);
  tables[0] = host_table;
  const AttentionBatch b{1, ints, ints + 1, tables, slot};
  auto kv = KvCache::Create(1, KvLayout{4, 1, 16, DType::kF32}, {&dev});
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  EXPECT_NONFATAL_FAILURE(dev.StoreKv(d, d, b, kv->layer(0)), "StoreKv: argument batch.block_tables[0]");
}

TEST_F(PlacementTest, PlacementMustNameEveryLayer) {
  Backend* h = cpu_.get();
  auto m = LoadModel(File("llama"), Split(h, {h, h}, h));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << m.status().ToString();
  EXPECT_NE(m.status().message().find("2 layers but the model has 4"), std::string::npos) << m.status().ToString();
}

}  // namespace
}  // namespace formiga
