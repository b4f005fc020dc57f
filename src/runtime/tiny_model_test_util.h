// A tiny random-weight llama (formiga synth, SmolLM2's tokenizer) on the ref
// backend, shared by the engine and engine-service tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/synth.h"
#include "tokenizer/tokenizer.h"

namespace formiga {

class TinyModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string donor = (testing::ModelsDir() / testing::kSmolLM2).string();
    if (!std::filesystem::exists(donor)) return;
    path_ = new std::string((std::filesystem::temp_directory_path() /
                             ("formiga_tiny_model_" + std::to_string(getpid()) + ".gguf")).string());
    ModelConfig c;
    c.arch = Arch::kLlama;
    c.name = "tiny-llama";
    c.vocab_size = 49152;
    c.hidden_size = 64;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.ffn_size = 96;
    c.context_length = 256;
    c.norm_eps = 1e-5;
    SynthOptions o;
    o.type = "f32";
    o.tokenizer_from = donor;
    o.seed = 3;
    auto r = SynthesizeModel(c, o, *path_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto f = GgufFile::Open(*path_);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    file_ = new GgufFile(std::move(f.value()));
    backend_ = MakeRefBackend().release();
    auto m = LoadModel(*file_, *backend_);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = m.value().release();
    auto t = Tokenizer::FromGguf(*file_);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tokenizer_ = t.value().release();
  }

  static void TearDownTestSuite() {
    delete tokenizer_;
    delete model_;
    delete backend_;
    delete file_;
    if (path_ != nullptr) std::filesystem::remove(*path_);
    delete path_;
  }

  void SetUp() override {
    FORMIGA_REQUIRE_MODEL(donor, testing::kSmolLM2);
    ASSERT_NE(model_, nullptr);
  }

  static std::string* path_;
  static GgufFile* file_;
  static Backend* backend_;
  static Model* model_;
  static Tokenizer* tokenizer_;
};

inline std::string* TinyModelTest::path_ = nullptr;
inline GgufFile* TinyModelTest::file_ = nullptr;
inline Backend* TinyModelTest::backend_ = nullptr;
inline Model* TinyModelTest::model_ = nullptr;
inline Tokenizer* TinyModelTest::tokenizer_ = nullptr;

}  // namespace formiga
