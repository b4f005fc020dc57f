// DType: element and block types of tensors, numbered exactly as GGUF/ggml
// number them on disk (ggml_type). Enums that reach disk only grow, with
// explicit values.
//
// A quantized type stores `block_size` elements in `type_size` bytes; a tensor
// row of n elements therefore takes n / block_size * type_size bytes and n must
// be a multiple of block_size.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace formiga {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  // 4, 5: Q4_2, Q4_3 (removed from ggml; never valid)
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  // 31..33: Q4_0_4_4, Q4_0_4_8, Q4_0_8_8 (removed from ggml; never valid)
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  // 36..38: IQ4_NL_4_4, IQ4_NL_4_8, IQ4_NL_8_8 (removed)
  kMXFP4 = 39,
};

struct DTypeTraits {
  DType type;
  const char* name;     // ggml's lower-case name: "q4_k", "bf16"
  int64_t block_size;   // elements per block (1 for plain types)
  int64_t type_size;    // bytes per block
  bool quantized;       // block-quantized (needs dequantization)
  bool computable;      // formiga has dequantize/quantize code for it
};

// Traits of a raw on-disk type id, or nullptr if the id is unknown/removed.
const DTypeTraits* FindDTypeTraits(uint32_t raw_type);
// REQUIRES: `type` is a valid enumerator.
const DTypeTraits& GetDTypeTraits(DType type);

inline const char* DTypeName(DType type) { return GetDTypeTraits(type).name; }

// Parses a name such as "q4_k", "Q8_0", "bf16". nullopt if unknown.
std::optional<DType> ParseDType(std::string_view name);

// Bytes taken by `n_elements` elements. REQUIRES: n_elements % block_size == 0.
inline uint64_t DTypeRowBytes(DType type, uint64_t n_elements) {
  const DTypeTraits& t = GetDTypeTraits(type);
  return n_elements / static_cast<uint64_t>(t.block_size) * static_cast<uint64_t>(t.type_size);
}

// Bits per weight of a type: type_size * 8 / block_size (e.g. q4_0 -> 4.5).
inline double DTypeBitsPerWeight(DType type) {
  const DTypeTraits& t = GetDTypeTraits(type);
  return static_cast<double>(t.type_size) * 8.0 / static_cast<double>(t.block_size);
}

}  // namespace formiga
