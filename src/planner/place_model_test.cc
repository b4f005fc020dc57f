// Memory-aware placement proven without a GPU: TestDeviceBackends
// (model/test_device_backend.h: own memory, every pointer checked, the cpu
// backend computing underneath) stand in for cuda:0 and cuda:1, handed to
// DecidePlacement through its device factory, as the CLI hands it CUDA
// backends.
//   - the per-device prediction (PredictPlacement) against what the device
//     really holds at its peak (load + KV + a prefill and decode steps), for
//     llama (tied and untied), gemma3 (sliding-window layers) and falcon,
//     whole model / last layers / output head on or off / two devices;
//   - auto with a --max-memory budget places the last layers that fit and
//     the load then fits; a map that does not fit is refused before anything
//     is allocated, with advice that works when followed;
//   - two devices + cpu give logits bit-identical to the cpu backend;
//   - a plan written by `formiga plan --out` for a GPU is obeyed;
//   - auto without any GPU stays on the cpu and says so; an explicit cuda map
//     without one is refused;
//   - the file pages of uploaded weights leave the process's resident set.
#include "planner/place_model.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/process_memory.h"
#include "core/test_models.h"
#include "formats/gguf.h"
#include "model/forward_test_util.h"
#include "model/model.h"
#include "model/placement_buffers.h"
#include "model/synth.h"
#include "model/synth_test_util.h"
#include "model/test_device_backend.h"
#include "planner/hardware.h"
#include "planner/plan.h"
#include "planner/units.h"

namespace formiga::planner {
namespace {

using formiga::testing::TestDeviceBackend;

struct TinyArch {
  const char* name;
  const char* preset;
  int64_t kv_heads;
};
const TinyArch kArchs[] = {
    {"llama", "tinyllama-1.1b", 2},   // untied output head
    {"llama_tied", "smollm2-135m", 2},
    {"gemma3", "gemma3-270m", 1},     // sliding-window layers (full-length KV in formiga's engine)
    {"falcon", "falcon-40b", 2},
};

ModelConfig TinyConfig(const TinyArch& a, int64_t hidden = 64) {
  ModelConfig c = *FindPreset(a.preset);
  c.name = std::string("tiny-") + a.name;
  c.vocab_size = 512;
  c.hidden_size = hidden;
  c.n_layers = 6;
  c.n_heads = 4;
  c.n_kv_heads = a.kv_heads;
  c.head_dim = hidden / 4;
  c.ffn_size = 2 * hidden;
  c.context_length = 64;
  if (c.arch == Arch::kGemma3) {
    c.sliding_window = 6;
    c.sliding_window_pattern = 2;
    c.query_pre_attn_scalar = 16;
    c.embedding_scale = 8.0;
  }
  return c;
}

// The engine shape the scripts below run: 2 sequences of up to 64
// positions in blocks of 4; a 32-token prefill of both, then decode steps.
EngineShape Shape() {
  EngineShape e;
  e.n_ctx = 64;
  e.max_seqs = 2;
  e.block_size = 4;
  e.max_batch_tokens = 32;
  e.prompt_tokens = 32;
  return e;
}

std::vector<float> RunScript(Model& model, const EngineShape& e) {
  testing::ForwardTestRunner run(model, e.max_seqs * e.n_ctx / e.block_size, e.block_size, e.kv_type);
  const int s0 = run.AddSequence(), s1 = run.AddSequence();
  std::vector<int32_t> p0, p1;
  for (int i = 0; i < 20; ++i) p0.push_back(1 + (i * 37) % 500);
  for (int i = 0; i < 12; ++i) p1.push_back(3 + (i * 91) % 500);
  std::vector<float> all = run.Step({s0, s1}, {p0, p1});
  const int64_t V = model.config().vocab_size;
  for (int step = 0; step < 4 && !all.empty(); ++step) {
    const size_t n = all.size() / static_cast<size_t>(V);
    const int32_t t0 = testing::Argmax(all.data() + (n - 2) * V, V);
    const int32_t t1 = testing::Argmax(all.data() + (n - 1) * V, V);
    const std::vector<float> l = run.Step({s0, s1}, {{t0}, {t1}});
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

class PlaceModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string donor = (formiga::testing::ModelsDir() / formiga::testing::kSmolLM2).string();
    if (!std::filesystem::exists(donor)) return;
    files_ = new std::map<std::string, std::unique_ptr<GgufFile>>();
    for (const TinyArch& a : kArchs) Synth(a, TinyConfig(a), a.name, donor);
    // A larger llama for the resident-size measurement (~10 MB of weights).
    Synth(kArchs[0], TinyConfig(kArchs[0], 512), "llama_512", donor);
  }
  static void Synth(const TinyArch& a, const ModelConfig& c, const std::string& key, const std::string& donor) {
    auto f = formiga::testing::SynthTinyModel(c, "q8_0", donor, "place_" + key);
    ASSERT_TRUE(f.ok()) << a.name << ": " << f.status().ToString();
    (*files_)[key] = std::make_unique<GgufFile>(std::move(f.value()));
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

  const GgufFile& File(const std::string& key) { return *files_->at(key); }
  static ModelConfig Config(const GgufFile& f) { return *ConfigFromGguf(f); }
  static ModelWeights Weights(const GgufFile& f) { return *WeightsFromGguf(f, Config(f), "file"); }

  // Devices cuda:0 and cuda:1 (capacity `cap` each); others cannot be had.
  DeviceFactory Factory(size_t cap0, size_t cap1 = size_t{64} << 20) {
    dev0_ = std::make_unique<TestDeviceBackend>(*cpu_, cap0, "cuda:0");
    dev1_ = std::make_unique<TestDeviceBackend>(*cpu_, cap1, "cuda:1");
    return [this](const std::string& d) -> Result<Backend*> {
      if (d == "cuda:0") return static_cast<Backend*>(dev0_.get());
      if (d == "cuda:1") return static_cast<Backend*>(dev1_.get());
      return Status::Unsupported("no such test device");
    };
  }

  Result<PlacementDecision> Decide(const GgufFile& f, const PlacementFlags& flags, const DeviceFactory& factory,
                                   const EngineShape& e = Shape()) {
    const ModelConfig c = Config(f);
    FORMIGA_ASSIGN_OR_RETURN(PlacementRequest req, RequestFromFlags(flags, c.n_layers));
    req.device_reserve = 0;
    return DecidePlacement(c, Weights(f), e, f.data_offset(), req, *cpu_, factory);
  }

  static std::map<std::string, std::unique_ptr<GgufFile>>* files_;
  std::unique_ptr<Backend> cpu_;
  std::unique_ptr<TestDeviceBackend> dev0_, dev1_;
};

std::map<std::string, std::unique_ptr<GgufFile>>* PlaceModelTest::files_ = nullptr;

PlacementFlags Map(const std::string& map, const std::string& max_memory = "") {
  PlacementFlags f;
  f.device_map = map;
  f.max_memory = max_memory;
  return f;
}

TEST_F(PlaceModelTest, PredictionIsWhatTheDeviceHoldsAtPeak) {
  struct Case {
    const char* name;
    const char* map;
  };
  const Case cases[] = {
      {"whole model", "cuda:0"},
      {"last 2 layers", R"({"*": "cpu", "blk.4": "cuda:0", "blk.5": "cuda:0"})"},
      {"last 3 layers + output head", R"({"*": "cpu", "blk.3": 0, "blk.4": 0, "blk.5": 0, "output": 0})"},
      {"two devices", R"({"*": "cpu", "blk.1": 0, "blk.2": 0, "blk.3": 1, "blk.4": 1, "blk.5": 1, "output": 1})"},
      {"embedding on the device", R"({"*": "cpu", "token_embd": 0, "blk.0": 0})"},
  };
  for (const TinyArch& a : kArchs) {
    for (const Case& k : cases) {
      SCOPED_TRACE(std::string(a.name) + ", " + k.name);
      const GgufFile& f = File(a.name);
      auto d = Decide(f, Map(k.map), Factory(size_t{64} << 20));
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      {
        auto model = LoadModel(f, d->placement);
        ASSERT_TRUE(model.ok()) << model.status().ToString();
        EXPECT_FALSE(RunScript(**model, Shape()).empty());
      }
      for (TestDeviceBackend* dev : {dev0_.get(), dev1_.get()}) {
        const DeviceShare* s = d->memory.Find(dev->device());
        const uint64_t predicted = s != nullptr ? s->total() : 0;
        std::printf("%-10s %-28s %s: peak %zu predicted %llu (%s)\n", a.name, k.name, dev->device().c_str(),
                    dev->peak_bytes(), static_cast<unsigned long long>(predicted),
                    s != nullptr ? s->Breakdown().c_str() : "-");
        // Exact: weights per tensor, KV, scratch, and the metadata buffer
        // (its 4 KiB minimum covers the worst batch of this shape).
        EXPECT_EQ(dev->peak_bytes(), predicted);
        EXPECT_EQ(dev->failures(), 0);
        EXPECT_EQ(dev->bytes_in_use(), 0u);
      }
    }
  }
}

TEST_F(PlaceModelTest, MaxMemoryShapesAutoAndTheLoadFits) {
  const GgufFile& f = File("llama");
  const ModelConfig c = Config(f);
  // The budget of the last 3 layers on cuda:0 (no output head), plus a little.
  ModuleDevices three;
  three.layers.assign(6, "cpu");
  for (int il = 3; il < 6; ++il) three.layers[il] = "cuda:0";
  const uint64_t need3 = PredictPlacement(c, Weights(f), Shape(), three, f.data_offset()).Find("cuda:0")->total();
  int64_t previous = -1;
  for (const uint64_t budget : {need3 / 2, need3 + 100, need3 * 2, uint64_t{32} << 20}) {
    SCOPED_TRACE(budget);
    auto d = Decide(f, Map("", "cuda:0=" + std::to_string(budget)), Factory(size_t{64} << 20));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    int64_t on_gpu = 0;
    for (const std::string& dev : d->devices.layers) on_gpu += dev == "cuda:0";
    // The last layers, contiguous; the output head only with all of them.
    for (int64_t il = 0; il < 6; ++il) EXPECT_EQ(d->devices.layers[il], il >= 6 - on_gpu ? "cuda:0" : "cpu");
    if (d->devices.output == "cuda:0") {
      EXPECT_EQ(on_gpu, 6);
    }
    if (budget == (uint64_t{32} << 20)) {
      EXPECT_EQ(d->devices.output, "cuda:0");
    }
    EXPECT_EQ(d->devices.embed, "cpu");
    EXPECT_GE(on_gpu, previous);
    previous = on_gpu;
    if (budget == need3 + 100) {
      EXPECT_EQ(on_gpu, 3);
    }
    auto model = LoadModel(f, d->placement);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    RunScript(**model, Shape());
    EXPECT_LE(dev0_->peak_bytes(), budget);
    EXPECT_EQ(dev0_->failures(), 0);
  }
  EXPECT_EQ(previous, 6);
}

TEST_F(PlaceModelTest, MapThatDoesNotFitIsRefusedBeforeAllocatingAndTheAdviceWorks) {
  for (const char* arch : {"llama", "gemma3"}) {
    SCOPED_TRACE(arch);
    const GgufFile& f = File(arch);
    const ModelConfig c = Config(f);
    ModuleDevices two;
    two.layers.assign(6, "cpu");
    two.layers[4] = two.layers[5] = "cuda:0";
    const uint64_t cap = PredictPlacement(c, Weights(f), Shape(), two, f.data_offset()).Find("cuda:0")->total() + 64;
    PlacementFlags all;
    all.gpu_layers = 99;
    auto d = Decide(f, all, Factory(cap));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kResourceExhausted);
    const std::string msg = d.status().message();
    std::printf("%s refusal: %s\n", arch, msg.c_str());
    EXPECT_NE(msg.find("cuda:0"), std::string::npos);
    EXPECT_NE(msg.find("KV cache"), std::string::npos);
    EXPECT_EQ(dev0_->peak_bytes(), 0u) << "allocated before refusing";
    std::smatch m;
    ASSERT_TRUE(std::regex_search(msg, m, std::regex("would fit: --gpu-layers ([0-9]+)"))) << msg;
    PlacementFlags advised;
    advised.gpu_layers = std::stoll(m[1]);
    EXPECT_EQ(advised.gpu_layers, 2);
    d = Decide(f, advised, Factory(cap));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    auto model = LoadModel(f, d->placement);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    RunScript(**model, Shape());
    EXPECT_LE(dev0_->peak_bytes(), cap);
  }
}

TEST_F(PlaceModelTest, TwoDevicesAndCpuAreBitIdenticalToCpu) {
  for (const TinyArch& a : kArchs) {
    SCOPED_TRACE(a.name);
    const GgufFile& f = File(a.name);
    const ModelConfig c = Config(f);
    auto plain = LoadModel(f, *cpu_);
    ASSERT_TRUE(plain.ok());
    const std::vector<float> want = RunScript(**plain, Shape());
    // Budgets for two layers each: balanced puts layers 2..5 on the GPUs, 0..1 on the cpu.
    ModuleDevices two;
    two.layers.assign(6, "cpu");
    two.layers[4] = two.layers[5] = "cuda:0";
    const uint64_t b = PredictPlacement(c, Weights(f), Shape(), two, f.data_offset()).Find("cuda:0")->total() + 64;
    for (const char* strategy : {"balanced", "sequential", "balanced_low_0"}) {
      SCOPED_TRACE(strategy);
      auto d = Decide(f, Map(strategy, "cuda:0=" + std::to_string(b) + ",cuda:1=" + std::to_string(b)), Factory(b, b));
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      const std::vector<std::string> want_layers =
          std::string(strategy) == "balanced_low_0"
              ? std::vector<std::string>{"cpu", "cpu", "cuda:1", "cuda:1", "cuda:0", "cuda:0"}
              : std::vector<std::string>{"cpu", "cpu", "cuda:0", "cuda:0", "cuda:1", "cuda:1"};
      EXPECT_EQ(d->devices.layers, want_layers);
      auto model = LoadModel(f, d->placement);
      ASSERT_TRUE(model.ok()) << model.status().ToString();
      const std::vector<float> got = RunScript(**model, Shape());
      ASSERT_EQ(want.size(), got.size());
      EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
      EXPECT_LE(dev0_->peak_bytes(), b);
      EXPECT_LE(dev1_->peak_bytes(), b);
      EXPECT_EQ(dev0_->failures() + dev1_->failures(), 0);
    }
  }
}

TEST_F(PlaceModelTest, PlanFileForAGpuIsObeyed) {
  const GgufFile& f = File("llama");
  ModelSource src;
  src.label = "tiny-llama";
  src.config = Config(f);
  src.file = std::shared_ptr<const GgufFile>(&f, [](const GgufFile*) {});
  auto cat = HardwareCatalog::Parse(nlohmann::json::parse(R"({"devices": [
    {"id": "cpu", "kind": "cpu", "memory": "16GiB", "bandwidth_gbs": 50, "tflops": {"f32": 1}}]})"), "test");
  ASSERT_TRUE(cat.ok()) << cat.status().ToString();
  auto hw = ParseHardwareSetup("1GiB/1000+cpu=8GiB", *cat);
  ASSERT_TRUE(hw.ok()) << hw.status().ToString();
  InferenceShape shape;
  shape.n_ctx = 64;
  shape.seqs = 2;
  auto plan = MakePlan(src, Weights(f), *hw, shape, PlanOptions{}, EfficiencyTable{}, PriceTable{});
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("formiga_place_plan_" + std::to_string(getpid()) + ".json")).string();
  std::ofstream(path) << PlanToJson(*plan).dump(2);
  PlacementFlags flags;
  flags.plan = path;
  auto d = Decide(f, flags, Factory(size_t{64} << 20));
  std::filesystem::remove(path);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  for (const auto& [module, label] : plan->device_map) {
    if (module == "token_embd") {
      EXPECT_EQ(d->devices.embed, label);
    } else if (module == "output") {
      EXPECT_EQ(d->devices.output, label);
    } else if (module.rfind("blk.", 0) == 0) {
      EXPECT_EQ(d->devices.layers[std::stoul(module.substr(4))], label) << module;
    }
  }
  EXPECT_EQ(d->devices.layers.back(), "cuda:0");
  auto model = LoadModel(f, d->placement);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_FALSE(RunScript(**model, Shape()).empty());
  EXPECT_EQ(dev0_->peak_bytes(), d->memory.Find("cuda:0")->total());
}

TEST_F(PlaceModelTest, WithoutAGpuAutoStaysOnTheCpuAndExplicitMapsAreRefused) {
  const GgufFile& f = File("llama");
  const DeviceFactory none = [](const std::string&) -> Result<Backend*> {
    return Status::Unsupported("this build of formiga is CPU only");
  };
  auto d = Decide(f, Map("auto"), none);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->placement.AllHost());
  ASSERT_FALSE(d->notes.empty());
  EXPECT_NE(d->notes[0].find("everything runs on the cpu"), std::string::npos) << d->notes[0];
  d = Decide(f, Map("cuda:0"), none);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(d.status().message().find("CUDA placement is not available"), std::string::npos);
  // The default placement never asks for a device.
  d = Decide(f, PlacementFlags{}, none);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->notes.empty());
}

TEST_F(PlaceModelTest, HostBudgetCountsOnlyTheHostParts) {
  const GgufFile& f = File("llama_512");
  const ModelConfig c = Config(f);
  const ModelWeights w = Weights(f);
  PlacementRequest req;
  req.map.strategy = "auto";
  req.max_memory["cuda:0"] = size_t{60} << 20;
  req.device_reserve = 0;
  ModuleDevices cpu;
  cpu.layers.assign(6, "cpu");
  const uint64_t all_host = PredictPlacement(c, w, Shape(), cpu, f.data_offset()).devices.front().total();
  EXPECT_EQ(all_host, PredictCpuRun(c, w, Shape(), f.data_offset()).total());
  // A host budget the whole model overflows, met once the layers are on the GPU.
  req.host_budget = all_host - w.total_bytes / 2;
  req.host_budget_source = "test";
  auto d = DecidePlacement(c, w, Shape(), f.data_offset(), req, *cpu_, Factory(size_t{64} << 20));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(d->placement.AllHost());
  req.map = DeviceMap{};
  req.map.entries.push_back({"", "cpu"});
  d = DecidePlacement(c, w, Shape(), f.data_offset(), req, *cpu_, Factory(size_t{64} << 20));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("do not fit in memory"), std::string::npos) << d.status().message();
}

// Resident size of this process with a split model's uploaded weights
// released: it drops by about what went to the device.
TEST_F(PlaceModelTest, UploadedWeightsLeaveTheResidentSet) {
  const GgufFile& f = File("llama_512");
  const ModelWeights w = Weights(f);
  auto d = Decide(f, Map(R"({"*": "cpu", "blk.2": 0, "blk.3": 0, "blk.4": 0, "blk.5": 0, "output": 0})"),
                  Factory(size_t{64} << 20));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto model = LoadModel(f, d->placement);
  ASSERT_TRUE(model.ok());
  uint64_t device_weights = d->memory.Find("cuda:0")->weights;
  const uint64_t before = ReadProcessMemory().rss_bytes;
  ReleaseUploadedPages(f, d->placement);
  const uint64_t after = ReadProcessMemory().rss_bytes;
  std::printf("resident %.1f MiB -> %.1f MiB after releasing %.1f MiB of uploaded weights\n", before / 1048576.0,
              after / 1048576.0, device_weights / 1048576.0);
  EXPECT_GE(before - std::min(before, after), device_weights * 9 / 10);
  // The model still runs (host parts untouched; device parts never read the file again).
  EXPECT_FALSE(RunScript(**model, Shape()).empty());
  EXPECT_EQ(dev0_->failures(), 0);
  (void)w;
}

}  // namespace
}  // namespace formiga::planner
