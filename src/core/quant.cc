// DequantizeRow / QuantizeRow: argument checks and dispatch to the per-type
// reference code (quant_legacy.cc, quant_k.cc); the plain float types live
// here.
#include "core/quant.h"

#include <cstring>
#include <string>

#include "core/fp16.h"

namespace formiga {

// The block structs must match ggml's on-disk sizes exactly (dtype.cc).
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(sizeof(BlockQ8_K) == 292);
// NOTE: structs of uint16_t are 2-aligned; tensor data in GGUF is 32-aligned
// and every block size above is even, so casting row pointers is safe.
static_assert(alignof(BlockQ8_K) == 4);

namespace {

Status CheckRow(DType type, int64_t n) {
  if (!IsQuantizeSupported(type)) {
    return Status::Unsupported(std::string("tensor type ") + DTypeName(type) +
                               " has no quantize/dequantize code in formiga (supported: f32, "
                               "f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1, q2_k..q6_k, q8_k)");
  }
  const int64_t bs = GetDTypeTraits(type).block_size;
  if (n < 0 || n % bs != 0) {
    return Status::InvalidArgument(std::string("row of ") + std::to_string(n) + " elements of type " +
                                   DTypeName(type) + ": the length must be a multiple of its block size " +
                                   std::to_string(bs));
  }
  return Status::Ok();
}

}  // namespace

bool IsQuantizeSupported(DType type) {
  switch (type) {
    case DType::kF32:
    case DType::kF16:
    case DType::kBF16:
    case DType::kQ4_0:
    case DType::kQ4_1:
    case DType::kQ5_0:
    case DType::kQ5_1:
    case DType::kQ8_0:
    case DType::kQ8_1:
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
    case DType::kQ8_K:
      return true;
    default:
      return false;
  }
}

Status DequantizeRow(DType type, const void* src, float* dst, int64_t n) {
  FORMIGA_RETURN_IF_ERROR(CheckRow(type, n));
  const int64_t nb = n / GetDTypeTraits(type).block_size;
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return Status::Ok();
    case DType::kF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(h[i]);
      return Status::Ok();
    }
    case DType::kBF16: {
      const auto* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(h[i]);
      return Status::Ok();
    }
    case DType::kQ4_0: DequantizeQ4_0(static_cast<const BlockQ4_0*>(src), dst, nb); break;
    case DType::kQ4_1: DequantizeQ4_1(static_cast<const BlockQ4_1*>(src), dst, nb); break;
    case DType::kQ5_0: DequantizeQ5_0(static_cast<const BlockQ5_0*>(src), dst, nb); break;
    case DType::kQ5_1: DequantizeQ5_1(static_cast<const BlockQ5_1*>(src), dst, nb); break;
    case DType::kQ8_0: DequantizeQ8_0(static_cast<const BlockQ8_0*>(src), dst, nb); break;
    case DType::kQ8_1: DequantizeQ8_1(static_cast<const BlockQ8_1*>(src), dst, nb); break;
    case DType::kQ2_K: DequantizeQ2_K(static_cast<const BlockQ2_K*>(src), dst, nb); break;
    case DType::kQ3_K: DequantizeQ3_K(static_cast<const BlockQ3_K*>(src), dst, nb); break;
    case DType::kQ4_K: DequantizeQ4_K(static_cast<const BlockQ4_K*>(src), dst, nb); break;
    case DType::kQ5_K: DequantizeQ5_K(static_cast<const BlockQ5_K*>(src), dst, nb); break;
    case DType::kQ6_K: DequantizeQ6_K(static_cast<const BlockQ6_K*>(src), dst, nb); break;
    case DType::kQ8_K: DequantizeQ8_K(static_cast<const BlockQ8_K*>(src), dst, nb); break;
    default:
      return Status::Internal(std::string("DequantizeRow: no case for ") + DTypeName(type));
  }
  return Status::Ok();
}

Status QuantizeRow(DType type, const float* src, void* dst, int64_t n) {
  FORMIGA_RETURN_IF_ERROR(CheckRow(type, n));
  const int64_t nb = n / GetDTypeTraits(type).block_size;
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return Status::Ok();
    case DType::kF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = F32ToF16(src[i]);
      return Status::Ok();
    }
    case DType::kBF16: {
      auto* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = F32ToBF16(src[i]);
      return Status::Ok();
    }
    case DType::kQ4_0: QuantizeQ4_0(src, static_cast<BlockQ4_0*>(dst), nb); break;
    case DType::kQ4_1: QuantizeQ4_1(src, static_cast<BlockQ4_1*>(dst), nb); break;
    case DType::kQ5_0: QuantizeQ5_0(src, static_cast<BlockQ5_0*>(dst), nb); break;
    case DType::kQ5_1: QuantizeQ5_1(src, static_cast<BlockQ5_1*>(dst), nb); break;
    case DType::kQ8_0: QuantizeQ8_0(src, static_cast<BlockQ8_0*>(dst), nb); break;
    case DType::kQ8_1: QuantizeQ8_1(src, static_cast<BlockQ8_1*>(dst), nb); break;
    case DType::kQ2_K: QuantizeQ2_K(src, static_cast<BlockQ2_K*>(dst), nb); break;
    case DType::kQ3_K: QuantizeQ3_K(src, static_cast<BlockQ3_K*>(dst), nb); break;
    case DType::kQ4_K: QuantizeQ4_K(src, static_cast<BlockQ4_K*>(dst), nb); break;
    case DType::kQ5_K: QuantizeQ5_K(src, static_cast<BlockQ5_K*>(dst), nb); break;
    case DType::kQ6_K: QuantizeQ6_K(src, static_cast<BlockQ6_K*>(dst), nb); break;
    case DType::kQ8_K: QuantizeQ8_K(src, static_cast<BlockQ8_K*>(dst), nb); break;
    default:
      return Status::Internal(std::string("QuantizeRow: no case for ") + DTypeName(type));
  }
  return Status::Ok();
}

}  // namespace formiga
