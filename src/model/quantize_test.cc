// Tests of the quantization pipeline on the real test models:
//  - the mix table reproduces llama.cpp's own choices: planning q4_k_m for
//    the Gemma-3 Q4_K_M file (made by llama.cpp) and q4_1 for the SmolLM2
//    Q4_1 file gives back exactly the types those files have;
//  - SmolLM2 -> q8_0 and -> q4_k_m: the output re-opens, types follow the
//    plan, metadata is copied and stamped, size and bits per weight add up,
//    and dequantized weights stay close to the source's.
#include "model/quantize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/quant.h"
#include "core/test_models.h"
#include "formats/gguf.h"

namespace formiga {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "formiga_quantize_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

TEST(QuantizePresetTest, ParseNamesAndErrors) {
  Result<QuantizePreset> p = ParseQuantizePreset("Q4_K_M");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->base_type, DType::kQ4_K);
  EXPECT_EQ(static_cast<uint32_t>(p->file_type), 15u);
  Result<QuantizePreset> bad = ParseQuantizePreset("q4_k_xl");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument());
  EXPECT_NE(bad.status().message().find("q4_k_m"), std::string::npos) << bad.status().message();
  EXPECT_EQ(QuantizePresets().size(), 13u);
}

// The strongest check of the mix table: llama.cpp made these files.
void ExpectPlanReproducesFile(const std::string& path, const char* preset_name) {
  Result<GgufFile> f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  Result<QuantizePreset> preset = ParseQuantizePreset(preset_name);
  ASSERT_TRUE(preset.ok());
  Result<std::vector<TensorQuantPlan>> plan = PlanQuantization(*f, *preset);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->size(), f->tensors().size());
  int mismatches = 0;
  for (size_t i = 0; i < plan->size(); ++i) {
    if ((*plan)[i].to != f->tensors()[i].type && ++mismatches <= 10) {
      ADD_FAILURE() << (*plan)[i].name << ": planned " << DTypeName((*plan)[i].to) << ", llama.cpp wrote "
                    << DTypeName(f->tensors()[i].type);
    }
  }
  EXPECT_EQ(mismatches, 0);
  Result<int64_t> ft = f->GetInt("general.file_type");
  ASSERT_TRUE(ft.ok());
  EXPECT_EQ(static_cast<uint32_t>(*ft), static_cast<uint32_t>(preset->file_type));
}

TEST(QuantizePlanTest, ReproducesLlamaCppQ4KMOnGemma3) {
  FORMIGA_REQUIRE_MODEL(path, testing::kGemma3);
  ExpectPlanReproducesFile(path, "q4_k_m");
}

TEST(QuantizePlanTest, ReproducesLlamaCppQ4_1OnSmolLM2) {
  FORMIGA_REQUIRE_MODEL(path, testing::kSmolLM2);
  ExpectPlanReproducesFile(path, "q4_1");
}

// Relative RMSE between a source tensor and the quantized one, over the
// first `max_rows` rows.
double RelativeRmse(const GgufTensorInfo& a, const GgufTensorInfo& b, int64_t max_rows) {
  const int64_t ne0 = a.shape[0];
  const int64_t rows = std::min<int64_t>(max_rows, a.n_elements() / ne0);
  std::vector<float> fa(ne0), fb(ne0);
  double se = 0, sa = 0;
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(DequantizeRow(a.type, a.data + r * DTypeRowBytes(a.type, ne0), fa.data(), ne0).ok());
    EXPECT_TRUE(DequantizeRow(b.type, b.data + r * DTypeRowBytes(b.type, ne0), fb.data(), ne0).ok());
    for (int64_t i = 0; i < ne0; ++i) {
      se += (static_cast<double>(fa[i]) - fb[i]) * (static_cast<double>(fa[i]) - fb[i]);
      sa += static_cast<double>(fa[i]) * fa[i];
    }
  }
  return sa > 0 ? std::sqrt(se / sa) : std::sqrt(se);
}

struct QuantizeCase {
  const char* preset;
  double max_rel_rmse;  // per tensor, against the (already Q4_1) source
};

void QuantizeSmolAndCheck(const QuantizeCase& c) {
  FORMIGA_REQUIRE_MODEL(src_path, testing::kSmolLM2);
  TempDir dir;
  const std::string out_path = dir.File(std::string("smol.") + c.preset + ".gguf");
  QuantizeOptions options;
  options.preset = c.preset;
  options.threads = 2;
  size_t progress_calls = 0;
  uint64_t last_done = 0;
  Result<QuantizeReport> report =
      QuantizeModel(src_path, out_path, options, [&](const QuantizeProgress& p) {
        ++progress_calls;
        EXPECT_GE(p.bytes_done, last_done);
        EXPECT_LE(p.bytes_done, p.bytes_total);
        last_done = p.bytes_done;
      });
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_GE(progress_calls, report->tensors.size());
  EXPECT_FALSE(fs::exists(out_path + ".partial"));

  Result<GgufFile> src = GgufFile::Open(src_path);
  Result<GgufFile> out = GgufFile::Open(out_path);
  ASSERT_TRUE(src.ok() && out.ok()) << out.status().ToString();
  Result<QuantizePreset> preset = ParseQuantizePreset(c.preset);
  ASSERT_TRUE(preset.ok());

  // Metadata: copied, plus the stamps.
  EXPECT_EQ(*out->GetInt("general.file_type"), static_cast<int64_t>(preset->file_type));
  EXPECT_EQ(*out->GetString("general.quantized_by"), "formiga");
  EXPECT_EQ(*out->GetInt("general.quantization_version"), 2);
  EXPECT_EQ(out->architecture(), "llama");
  EXPECT_EQ(out->GetStringArray("tokenizer.ggml.tokens")->size(),
            src->GetStringArray("tokenizer.ggml.tokens")->size());

  // Tensors: same names/shapes in the same order, types as planned, 1-D
  // tensors untouched, values close to the source.
  ASSERT_EQ(out->tensors().size(), src->tensors().size());
  uint64_t tensor_bytes = 0, elements = 0;
  for (size_t i = 0; i < out->tensors().size(); ++i) {
    const GgufTensorInfo& s = src->tensors()[i];
    const GgufTensorInfo& o = out->tensors()[i];
    const TensorQuantPlan& p = report->tensors[i];
    SCOPED_TRACE(o.name);
    ASSERT_EQ(o.name, s.name);
    EXPECT_EQ(o.shape, s.shape);
    EXPECT_EQ(o.type, p.to);
    tensor_bytes += o.nbytes;
    elements += static_cast<uint64_t>(o.n_elements());
    if (s.shape.size() == 1) {
      EXPECT_EQ(o.type, s.type);
      EXPECT_EQ(0, std::memcmp(o.data, s.data, s.nbytes));
      continue;
    }
    if (o.type == s.type) {
      EXPECT_EQ(0, std::memcmp(o.data, s.data, s.nbytes)) << "same type must be copied exactly";
      continue;
    }
    EXPECT_LE(RelativeRmse(s, o, 64), c.max_rel_rmse);
  }
  EXPECT_EQ(tensor_bytes, report->output_tensor_bytes);
  EXPECT_EQ(elements, report->n_elements);
  EXPECT_EQ(fs::file_size(out_path), report->output_file_bytes);
  EXPECT_NEAR(report->bits_per_weight(), 8.0 * tensor_bytes / elements, 1e-9);
  std::printf("  %s: %.3f bits per weight, %llu bytes\n", c.preset, report->bits_per_weight(),
              static_cast<unsigned long long>(report->output_file_bytes));
}

TEST(QuantizeModelTest, SmolLM2ToQ8_0) {
  QuantizeSmolAndCheck({"q8_0", 0.01});
  // q8_0: every 2-D weight is Q8_0 (all SmolLM2 rows are multiples of 32).
}

TEST(QuantizeModelTest, SmolLM2ToQ4KM) {
  // Q4_K / Q5_0 against a Q4_1 source: the source's own 4-bit grid is not
  // representable exactly, so errors are those of a fresh 4/5-bit quantization.
  QuantizeSmolAndCheck({"q4_k_m", 0.12});
}

TEST(QuantizeModelTest, SmolLM2Q4KMTypesFollowTheMixTable) {
  FORMIGA_REQUIRE_MODEL(src_path, testing::kSmolLM2);
  Result<GgufFile> src = GgufFile::Open(src_path);
  ASSERT_TRUE(src.ok());
  Result<std::vector<TensorQuantPlan>> plan = PlanQuantization(*src, *ParseQuantizePreset("q4_k_m"));
  ASSERT_TRUE(plan.ok());
  // SmolLM2: 30 layers, hidden 576 (not a multiple of 256), ffn 1536 (is),
  // tied embeddings (no output.weight).
  for (const TensorQuantPlan& p : *plan) {
    SCOPED_TRACE(p.name);
    if (p.shape.size() == 1) {
      EXPECT_FALSE(p.quantized);
      EXPECT_EQ(p.to, DType::kF32);
    } else if (p.name == "token_embd.weight") {
      // Tied embeddings take the output rule, which itself picks Q8_0 when
      // 576 is not a multiple of 256 (not counted as a fallback).
      EXPECT_EQ(p.to, DType::kQ8_0);
      EXPECT_FALSE(p.fallback);
    } else if (p.name.find("ffn_down") != std::string::npos) {
      // ne0 = 1536: K-quants fit. Q6_K in the use_more_bits layers.
      EXPECT_TRUE(p.to == DType::kQ6_K || p.to == DType::kQ4_K);
      EXPECT_FALSE(p.fallback);
    } else if (p.name.find("attn_v") != std::string::npos) {
      EXPECT_TRUE(p.to == DType::kQ8_0 || p.to == DType::kQ5_0);  // Q6_K / Q4_K fallbacks
    } else {
      EXPECT_EQ(p.to, DType::kQ5_0);  // Q4_K fallback for 576-wide rows
    }
  }
  // use_more_bits(i, 30): i < 3, i >= 26, or (i - 3) % 3 == 2 -> 14 layers.
  int n_q6k = 0;
  for (const TensorQuantPlan& p : *plan) n_q6k += p.to == DType::kQ6_K;
  // NOTE: i counts ffn_down tensors in file order (blk.0, blk.1, blk.10, ...)
  // exactly as llama.cpp does, so these are not always the same layer numbers.
  EXPECT_EQ(n_q6k, 3 + 4 + 7);  // i in 0..2, 26..29, and 5, 8, ..., 23
}

TEST(QuantizeModelTest, ErrorsAreClear) {
  FORMIGA_REQUIRE_MODEL(src_path, testing::kSmolLM2);
  TempDir dir;
  QuantizeOptions options;
  options.preset = "q4_k_xs";
  Result<QuantizeReport> r = QuantizeModel(src_path, dir.File("x.gguf"), options);
  EXPECT_TRUE(r.status().IsInvalidArgument());
  options.preset = "q8_0";
  r = QuantizeModel(src_path, src_path, options);
  EXPECT_TRUE(r.status().IsInvalidArgument());
  r = QuantizeModel(dir.File("missing.gguf"), dir.File("y.gguf"), options);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(fs::exists(dir.File("y.gguf")));
}

}  // namespace
}  // namespace formiga
