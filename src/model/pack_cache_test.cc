// The packed-weight cache (model/pack_cache.h): the first load packs and
// writes the cache file, later loads map it (no packing) and give the same
// logits bit for bit; a changed model file, a damaged cache file or an
// unwritable cache directory only mean packing again (never a failed load or
// wrong weights). Runs where the cpu backend packs (avx512-vnni); elsewhere
// it says so and skips.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/forward_test_util.h"
#include "model/model.h"
#include "model/pack_cache.h"
#include "model/synth.h"

namespace formiga {
namespace {

namespace fs = std::filesystem;

ModelConfig TinyLlama() {
  ModelConfig c = *FindPreset("tinyllama-1.1b");
  c.name = "tiny-pack-cache";
  c.vocab_size = 512;
  c.hidden_size = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.ffn_size = 128;
  c.context_length = 64;
  return c;
}

// Logits of a short prompt and 3 greedy steps.
std::vector<float> Logits(Model& model) {
  testing::ForwardTestRunner run(model, 16, 1);
  const int s = run.AddSequence();
  std::vector<float> all = run.Run({s}, {{1, 17, 300, 42, 9}}, {{4}});
  const int64_t V = model.config().vocab_size;
  for (int step = 0; step < 3; ++step) {
    const int32_t t = testing::Argmax(all.data() + all.size() - V, V);
    const std::vector<float> l = run.Step({s}, {{t}});
    all.insert(all.end(), l.begin(), l.end());
  }
  return all;
}

class PackCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FORMIGA_REQUIRE_MODEL(donor, formiga::testing::kSmolLM2);
    auto cpu = MakeCpuBackend(2);
    if (!cpu.ok()) GTEST_SKIP() << cpu.status().ToString();
    cpu_ = std::move(cpu.value());
    if (cpu_->PackedFormat().empty() || cpu_->PackedBytes(WeightView{DType::kQ8_0, this, 32, 16, 34}) == 0) {
      GTEST_SKIP() << "the cpu backend does not pack weights on this CPU (packing is for avx512-vnni)";
    }
    dir_ = fs::temp_directory_path() / ("formiga_pack_cache_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    model_path_ = (dir_ / "tiny.gguf").string();
    SynthOptions o;
    o.type = "q8_0";
    o.tokenizer_from = donor;
    o.threads = 1;
    ASSERT_TRUE(SynthesizeModel(TinyLlama(), o, model_path_).ok());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Loads the model file with the cache in `cache_dir`; the note and logits.
  void Load(const std::string& cache_dir, std::string* note, std::vector<float>* logits, uint64_t* packed = nullptr) {
    auto file = GgufFile::Open(model_path_);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    ModelPlacement p = ModelPlacement::Uniform(*cpu_, TinyLlama().n_layers);
    p.pack_cache_dir = cache_dir;
    auto model = LoadModel(*file, p);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    *note = (*model)->packed_weight_note();
    *logits = Logits(**model);
    if (packed != nullptr) *packed = (*model)->packed_weight_bytes();
  }

  std::unique_ptr<Backend> cpu_;
  fs::path dir_;
  std::string model_path_;
};

bool Has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST_F(PackCacheTest, FirstLoadWritesLaterLoadsMapTheSameWeights) {
  const std::string cache = (dir_ / "cache").string();
  std::string note;
  std::vector<float> unpacked, first, second;
  uint64_t packed = 0;
  Load("", &note, &unpacked, &packed);
  EXPECT_TRUE(Has(note, "no cache: off")) << note;
  EXPECT_GT(packed, 0u);

  Load(cache, &note, &first);
  EXPECT_TRUE(Has(note, "packed now, kept in " + cache)) << note;
  ASSERT_EQ(std::distance(fs::directory_iterator(cache), fs::directory_iterator()), 1);
  Load(cache, &note, &second);
  EXPECT_TRUE(Has(note, "mapped from " + cache)) << note;
  ASSERT_EQ(first.size(), unpacked.size());
  EXPECT_EQ(0, std::memcmp(first.data(), unpacked.data(), first.size() * sizeof(float)));
  ASSERT_EQ(second.size(), unpacked.size());
  EXPECT_EQ(0, std::memcmp(second.data(), unpacked.data(), second.size() * sizeof(float)));
}

TEST_F(PackCacheTest, ChangedModelOrDamagedCacheIsPackedAgain) {
  const std::string cache = (dir_ / "cache").string();
  std::string note;
  std::vector<float> want, got;
  Load(cache, &note, &want);
  ASSERT_TRUE(Has(note, "packed now")) << note;
  const fs::path cached = fs::directory_iterator(cache)->path();

  // The model file rewritten (a new mtime): the cache is stale.
  fs::last_write_time(model_path_, fs::last_write_time(model_path_) + std::chrono::seconds(5));
  Load(cache, &note, &got);
  EXPECT_TRUE(Has(note, "packed now")) << note;
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));

  // The cache file cut short, then its header overwritten: ignored, rewritten.
  fs::resize_file(cached, 100);
  Load(cache, &note, &got);
  EXPECT_TRUE(Has(note, "packed now")) << note;
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
  {
    std::fstream f(cached, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(64);
    const std::string junk(200, '\x7f');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  Load(cache, &note, &got);  // (the junk lands in the header: refused)
  EXPECT_TRUE(Has(note, "packed now")) << note;
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float))) << note;
  Load(cache, &note, &got);
  EXPECT_TRUE(Has(note, "mapped from")) << note;
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
}

TEST_F(PackCacheTest, UnwritableCacheDirectoryStillLoads) {
  const fs::path blocker = dir_ / "not_a_dir";
  std::ofstream(blocker) << "x";
  std::string note;
  std::vector<float> want, got;
  Load("", &note, &want);
  Load((blocker / "cache").string(), &note, &got);
  EXPECT_TRUE(Has(note, "cache not written")) << note;
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
}

TEST(PackCacheDirTest, EnvironmentChoosesTheDirectory) {
  setenv("FORMIGA_PACK_CACHE", "0", 1);
  EXPECT_EQ(PackCache::DefaultDir(), "");
  setenv("FORMIGA_PACK_CACHE", "/some/where", 1);
  EXPECT_EQ(PackCache::DefaultDir(), "/some/where");
  unsetenv("FORMIGA_PACK_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(PackCache::DefaultDir(), "/xdg/formiga/packed");
  unsetenv("XDG_CACHE_HOME");
}

}  // namespace
}  // namespace formiga
