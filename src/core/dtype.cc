#include "core/dtype.h"

#include <cctype>
#include <string>

namespace formiga {
namespace {

// NOTE: block sizes and byte sizes follow ggml's block structs (ggml-common.h):
// e.g. q4_k = f16 d + f16 dmin + 12 scale bytes + 128 nibble bytes = 144.
// `computable` marks what formiga's core/quant code implements.
constexpr DTypeTraits kTraits[] = {
    {DType::kF32, "f32", 1, 4, false, true},
    {DType::kF16, "f16", 1, 2, false, true},
    {DType::kQ4_0, "q4_0", 32, 18, true, true},
    {DType::kQ4_1, "q4_1", 32, 20, true, true},
    {DType::kQ5_0, "q5_0", 32, 22, true, true},
    {DType::kQ5_1, "q5_1", 32, 24, true, true},
    {DType::kQ8_0, "q8_0", 32, 34, true, true},
    {DType::kQ8_1, "q8_1", 32, 36, true, true},
    {DType::kQ2_K, "q2_k", 256, 84, true, true},
    {DType::kQ3_K, "q3_k", 256, 110, true, true},
    {DType::kQ4_K, "q4_k", 256, 144, true, true},
    {DType::kQ5_K, "q5_k", 256, 176, true, true},
    {DType::kQ6_K, "q6_k", 256, 210, true, true},
    {DType::kQ8_K, "q8_k", 256, 292, true, true},
    {DType::kIQ2_XXS, "iq2_xxs", 256, 66, true, false},
    {DType::kIQ2_XS, "iq2_xs", 256, 74, true, false},
    {DType::kIQ3_XXS, "iq3_xxs", 256, 98, true, false},
    {DType::kIQ1_S, "iq1_s", 256, 50, true, false},
    {DType::kIQ4_NL, "iq4_nl", 32, 18, true, false},
    {DType::kIQ3_S, "iq3_s", 256, 110, true, false},
    {DType::kIQ2_S, "iq2_s", 256, 82, true, false},
    {DType::kIQ4_XS, "iq4_xs", 256, 136, true, false},
    {DType::kI8, "i8", 1, 1, false, false},
    {DType::kI16, "i16", 1, 2, false, false},
    {DType::kI32, "i32", 1, 4, false, false},
    {DType::kI64, "i64", 1, 8, false, false},
    {DType::kF64, "f64", 1, 8, false, false},
    {DType::kIQ1_M, "iq1_m", 256, 56, true, false},
    {DType::kBF16, "bf16", 1, 2, false, true},
    {DType::kTQ1_0, "tq1_0", 256, 54, true, false},
    {DType::kTQ2_0, "tq2_0", 256, 66, true, false},
    {DType::kMXFP4, "mxfp4", 32, 17, true, false},
};

}  // namespace

const DTypeTraits* FindDTypeTraits(uint32_t raw_type) {
  for (const DTypeTraits& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == raw_type) return &t;
  }
  return nullptr;
}

const DTypeTraits& GetDTypeTraits(DType type) {
  const DTypeTraits* t = FindDTypeTraits(static_cast<uint32_t>(type));
  // An invalid enumerator is a programming error; fall back to f32 rather
  // than crash in release builds.
  return t != nullptr ? *t : kTraits[0];
}

std::optional<DType> ParseDType(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const DTypeTraits& t : kTraits) {
    if (lower == t.name) return t.type;
  }
  return std::nullopt;
}

}  // namespace formiga
