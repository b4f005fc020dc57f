// Golden tests of the block formats against gguf-py (the reference Python
// implementation maintained with llama.cpp): tests/data/quant/manifest.txt,
// made by scripts/golden/make_quant_golden.py (its docstring documents the
// format), and against llama.cpp itself for the K-quant quantizers (bytes
// written by llama-cpp-python's llama_model_quantize). Every comparison is
// bitwise: dequantized f32 values must have the same bit patterns (NaNs
// included), quantized blocks the same bytes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/quant.h"
#include "core/test_models.h"

namespace formiga {
namespace {

std::filesystem::path DataDir() { return testing::SourceDir() / "tests" / "data" / "quant"; }

std::vector<uint8_t> ReadBytes(const std::string& name) {
  std::ifstream in(DataDir() / name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << (DataDir() / name);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<uint32_t> ReadF32Bits(const std::string& name) {
  std::vector<uint8_t> b = ReadBytes(name);
  std::vector<uint32_t> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

struct GoldenCase {
  std::string kind, type, file1, file2, file3, line;
  int64_t n = 0;
};

std::vector<GoldenCase> LoadManifest() {
  std::vector<GoldenCase> cases;
  std::ifstream in(DataDir() / "manifest.txt");
  std::string line;
  while (std::getline(in, line)) {
    const std::string body = line.substr(0, line.find('#'));
    std::istringstream fields(body);
    GoldenCase c;
    if (!(fields >> c.kind)) continue;
    fields >> c.type >> c.n >> c.file1 >> c.file2;
    if (c.kind == "quant") fields >> c.file3;
    c.line = line;
    cases.push_back(c);
  }
  return cases;
}

// Compares f32 bit patterns; reports the first few mismatches.
void ExpectSameBits(const std::vector<uint32_t>& want, const float* got, int64_t n,
                    const std::string& what) {
  ASSERT_EQ(static_cast<int64_t>(want.size()), n) << what;
  int bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t g;
    std::memcpy(&g, &got[i], 4);
    if (g != want[i] && ++bad <= 5) {
      float w;
      std::memcpy(&w, &want[i], 4);
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " (0x" << std::hex << g
                    << ") want " << w << " (0x" << want[i] << std::dec << ")";
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << n << " elements differ";
}

TEST(QuantGoldenTest, ManifestIsComplete) {
  std::vector<GoldenCase> cases = LoadManifest();
  ASSERT_GE(cases.size(), 20u) << "run scripts/golden/make_quant_golden.py";
  // The real-model slices cover the types the test models ship.
  for (const char* t : {"q4_1", "q8_0", "q4_k", "q6_k", "q5_0"}) {
    bool found = false;
    for (const GoldenCase& c : cases) found = found || (c.kind == "dequant" && c.type == t);
    EXPECT_TRUE(found) << t;
  }
  // Every quantizer has a reference: gguf-py for the legacy types, llama.cpp
  // for the K-quants.
  for (const char* t : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "bf16", "f16", "q2_k", "q3_k", "q4_k",
                        "q5_k", "q6_k"}) {
    bool found = false;
    for (const GoldenCase& c : cases) found = found || (c.kind == "quant" && c.type == t);
    EXPECT_TRUE(found) << t;
  }
}

TEST(QuantGoldenTest, DequantizeMatchesGgufPyBitwise) {
  for (const GoldenCase& c : LoadManifest()) {
    if (c.kind != "dequant") continue;
    SCOPED_TRACE(c.line);
    std::optional<DType> type = ParseDType(c.type);
    ASSERT_TRUE(type.has_value());
    std::vector<uint8_t> blocks = ReadBytes(c.file1);
    ASSERT_EQ(blocks.size(), DTypeRowBytes(*type, c.n));
    std::vector<float> got(c.n);
    ASSERT_TRUE(DequantizeRow(*type, blocks.data(), got.data(), c.n).ok());
    ExpectSameBits(ReadF32Bits(c.file2), got.data(), c.n, c.file1);
  }
}

TEST(QuantGoldenTest, QuantizeMatchesGgufPyBytes) {
  for (const GoldenCase& c : LoadManifest()) {
    if (c.kind != "quant") continue;
    SCOPED_TRACE(c.line);
    std::optional<DType> type = ParseDType(c.type);
    ASSERT_TRUE(type.has_value());
    std::vector<uint32_t> input_bits = ReadF32Bits(c.file1);
    ASSERT_EQ(static_cast<int64_t>(input_bits.size()), c.n);
    std::vector<float> input(c.n);
    std::memcpy(input.data(), input_bits.data(), c.n * 4);
    std::vector<uint8_t> want = ReadBytes(c.file2);
    std::vector<uint8_t> got(DTypeRowBytes(*type, c.n));
    ASSERT_EQ(got.size(), want.size());
    ASSERT_TRUE(QuantizeRow(*type, input.data(), got.data(), c.n).ok());
    int64_t first_diff = -1;
    for (size_t i = 0; i < got.size() && first_diff < 0; ++i) {
      if (got[i] != want[i]) first_diff = static_cast<int64_t>(i);
    }
    EXPECT_EQ(first_diff, -1) << c.file2 << ": first differing byte " << first_diff << " (block "
                              << first_diff / GetDTypeTraits(*type).type_size << ")";
    std::vector<float> deq(c.n);
    ASSERT_TRUE(DequantizeRow(*type, want.data(), deq.data(), c.n).ok());
    ExpectSameBits(ReadF32Bits(c.file3), deq.data(), c.n, c.file3);
  }
}

}  // namespace
}  // namespace formiga
