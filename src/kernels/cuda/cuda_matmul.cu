// MatMul and GetRows on the GPU: per-element decoders of every supported
// weight type (the device twins of core/quant's reference dequantizers) and a
// straightforward warp-per-output-row mat-vec.
//
// NOTE: correctness first. Each decoder recomputes its block's scales for
// every element and the mat-vec multiplies f32 activations (no activation
// quantization), so results match the ref backend to f32 accumulation
// order. The decoders use __fmul_rn/__fadd_rn so that nvcc never contracts
// them into FMAs: GetRows is then bit-identical to core/quant's
// DequantizeRow. Next steps for speed are in docs/kernels.md (dp4a / int8
// MMA on quantized activations, cuBLAS or wgmma for prefill).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstddef>

#include "core/quant.h"
#include "kernels/cuda/cuda_kernels.h"

namespace formiga::cuda {
namespace {

__device__ __forceinline__ float LoadF16(const uint8_t* p) {
  // Byte loads: blocks of odd 2-byte multiples sit at any even offset.
  const uint16_t bits = static_cast<uint16_t>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ float Mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float AddF(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float SubF(float a, float b) { return __fsub_rn(a, b); }

// Element e of a K-quant block: 2-bit field (Q2_K, low bits of Q3_K).
__device__ __forceinline__ int Get2Bits(const uint8_t* qs, int e) {
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  return (qs[32 * h + l] >> (2 * k)) & 3;
}

// Q4_K/Q5_K low nibble of element e.
__device__ __forceinline__ int GetNibbleK(const uint8_t* qs, int e) {
  const int c = e / 64, half = (e % 64) / 32, l = e % 32;
  const uint8_t byte = qs[32 * c + l];
  return half ? (byte >> 4) : (byte & 0x0f);
}

__device__ __forceinline__ void UnpackScaleMinK4(int j, const uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

__device__ __forceinline__ int UnpackScaleQ3K(int j, const uint8_t* s) {
  const int low = j < 8 ? (s[j] & 0x0f) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// Element c of a row of type T (row = its first byte). Expressions follow
// core/quant_*.cc operation for operation.
template <DType T>
__device__ __forceinline__ float Decode(const uint8_t* row, int64_t c);

template <>
__device__ __forceinline__ float Decode<DType::kF32>(const uint8_t* row, int64_t c) {
  return reinterpret_cast<const float*>(row)[c];
}
template <>
__device__ __forceinline__ float Decode<DType::kF16>(const uint8_t* row, int64_t c) {
  return __half2float(__ushort_as_half(reinterpret_cast<const uint16_t*>(row)[c]));
}
template <>
__device__ __forceinline__ float Decode<DType::kBF16>(const uint8_t* row, int64_t c) {
  return __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(row)[c]) << 16);
}
template <>
__device__ __forceinline__ float Decode<DType::kQ4_0>(const uint8_t* row, int64_t c) {
  const auto* b = reinterpret_cast<const uint8_t*>(row) + (c / kQK) * sizeof(BlockQ4_0);
  const int j = static_cast<int>(c % kQK);
  const uint8_t byte = b[offsetof(BlockQ4_0, qs) + j % 16];
  const int q = j < 16 ? (byte & 0x0f) : (byte >> 4);
  return Mul(static_cast<float>(q - 8), LoadF16(b + offsetof(BlockQ4_0, d)));
}
template <>
__device__ __forceinline__ float Decode<DType::kQ4_1>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK) * sizeof(BlockQ4_1);
  const int j = static_cast<int>(c % kQK);
  const uint8_t byte = b[offsetof(BlockQ4_1, qs) + j % 16];
  const int q = j < 16 ? (byte & 0x0f) : (byte >> 4);
  return AddF(Mul(static_cast<float>(q), LoadF16(b + offsetof(BlockQ4_1, d))), LoadF16(b + offsetof(BlockQ4_1, m)));
}
template <>
__device__ __forceinline__ float Decode<DType::kQ5_0>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK) * sizeof(BlockQ5_0);
  const int j = static_cast<int>(c % kQK);
  const uint8_t byte = b[offsetof(BlockQ5_0, qs) + j % 16];
  const int high = (b[offsetof(BlockQ5_0, qh) + j / 8] >> (j % 8)) & 1;
  const int q = (j < 16 ? (byte & 0x0f) : (byte >> 4)) | (high << 4);
  return Mul(static_cast<float>(q - 16), LoadF16(b + offsetof(BlockQ5_0, d)));
}
template <>
__device__ __forceinline__ float Decode<DType::kQ5_1>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK) * sizeof(BlockQ5_1);
  const int j = static_cast<int>(c % kQK);
  const uint8_t byte = b[offsetof(BlockQ5_1, qs) + j % 16];
  const int high = (b[offsetof(BlockQ5_1, qh) + j / 8] >> (j % 8)) & 1;
  const int q = (j < 16 ? (byte & 0x0f) : (byte >> 4)) | (high << 4);
  return AddF(Mul(static_cast<float>(q), LoadF16(b + offsetof(BlockQ5_1, d))), LoadF16(b + offsetof(BlockQ5_1, m)));
}
template <>
__device__ __forceinline__ float Decode<DType::kQ8_0>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK) * sizeof(BlockQ8_0);
  const int j = static_cast<int>(c % kQK);
  const int8_t q = static_cast<int8_t>(b[offsetof(BlockQ8_0, qs) + j]);
  return Mul(static_cast<float>(q), LoadF16(b + offsetof(BlockQ8_0, d)));
}
template <>
__device__ __forceinline__ float Decode<DType::kQ2_K>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK_K) * sizeof(BlockQ2_K);
  const int e = static_cast<int>(c % kQK_K);
  const uint8_t sc = b[offsetof(BlockQ2_K, scales) + e / 16];
  const float dl = Mul(LoadF16(b + offsetof(BlockQ2_K, d)), static_cast<float>(sc & 0x0f));
  const float ml = Mul(LoadF16(b + offsetof(BlockQ2_K, dmin)), static_cast<float>(sc >> 4));
  return SubF(Mul(dl, static_cast<float>(Get2Bits(b + offsetof(BlockQ2_K, qs), e))), ml);
}
template <>
__device__ __forceinline__ float Decode<DType::kQ3_K>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK_K) * sizeof(BlockQ3_K);
  const int e = static_cast<int>(c % kQK_K);
  const float dl =
      Mul(LoadF16(b + offsetof(BlockQ3_K, d)), static_cast<float>(UnpackScaleQ3K(e / 16, b + offsetof(BlockQ3_K, scales))));
  const bool high = (b[offsetof(BlockQ3_K, hmask) + e % 32] >> (e / 32)) & 1;
  const int q = Get2Bits(b + offsetof(BlockQ3_K, qs), e) - (high ? 0 : 4);
  return Mul(dl, static_cast<float>(q));
}
template <>
__device__ __forceinline__ float Decode<DType::kQ4_K>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK_K) * sizeof(BlockQ4_K);
  const int e = static_cast<int>(c % kQK_K);
  int sc, m;
  UnpackScaleMinK4(e / 32, b + offsetof(BlockQ4_K, scales), &sc, &m);
  const float d1 = Mul(LoadF16(b + offsetof(BlockQ4_K, d)), static_cast<float>(sc));
  const float m1 = Mul(LoadF16(b + offsetof(BlockQ4_K, dmin)), static_cast<float>(m));
  return SubF(Mul(d1, static_cast<float>(GetNibbleK(b + offsetof(BlockQ4_K, qs), e))), m1);
}
template <>
__device__ __forceinline__ float Decode<DType::kQ5_K>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK_K) * sizeof(BlockQ5_K);
  const int e = static_cast<int>(c % kQK_K);
  const int j = e / 32;
  int sc, m;
  UnpackScaleMinK4(j, b + offsetof(BlockQ5_K, scales), &sc, &m);
  const float d1 = Mul(LoadF16(b + offsetof(BlockQ5_K, d)), static_cast<float>(sc));
  const float m1 = Mul(LoadF16(b + offsetof(BlockQ5_K, dmin)), static_cast<float>(m));
  const int high = (b[offsetof(BlockQ5_K, qh) + e % 32] >> j) & 1;
  return SubF(Mul(d1, static_cast<float>(GetNibbleK(b + offsetof(BlockQ5_K, qs), e) + 16 * high)), m1);
}
template <>
__device__ __forceinline__ float Decode<DType::kQ6_K>(const uint8_t* row, int64_t c) {
  const auto* b = row + (c / kQK_K) * sizeof(BlockQ6_K);
  const int e = static_cast<int>(c % kQK_K);
  const int h = e / 128, k = (e % 128) / 32, l = e % 32;
  const uint8_t qlb = b[offsetof(BlockQ6_K, ql) + 64 * h + 32 * (k % 2) + l];
  const int low = k >= 2 ? (qlb >> 4) : (qlb & 0x0f);
  const int high = (b[offsetof(BlockQ6_K, qh) + 32 * h + l] >> (2 * k)) & 3;
  const int q = (low | (high << 4)) - 32;
  const int8_t sc = static_cast<int8_t>(b[offsetof(BlockQ6_K, scales) + e / 16]);
  return Mul(Mul(LoadF16(b + offsetof(BlockQ6_K, d)), static_cast<float>(sc)), static_cast<float>(q));
}

// Tokens per pass over a weight row: each weight element is decoded once
// and used for this many tokens (registers, compile-time indexed).
constexpr int kTokenTile = 8;
constexpr int kWarpsPerBlock = 4;

// One warp per output row n; lanes stride over the row's elements.
template <DType T>
__global__ void __launch_bounds__(32 * kWarpsPerBlock)
    MatMulKernel(const uint8_t* __restrict__ w, size_t row_bytes, int64_t C, int64_t N,
                 const float* __restrict__ x, float* __restrict__ y, int64_t n_tokens) {
  const int lane = threadIdx.x % 32;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (n >= N) return;
  const uint8_t* row = w + static_cast<size_t>(n) * row_bytes;
  for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenTile) {
    const int nt = n_tokens - t0 < kTokenTile ? static_cast<int>(n_tokens - t0) : kTokenTile;
    float acc[kTokenTile];
#pragma unroll
    for (int i = 0; i < kTokenTile; ++i) acc[i] = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
      const float wv = Decode<T>(row, c);
#pragma unroll
      for (int i = 0; i < kTokenTile; ++i) {
        if (i < nt) acc[i] = fmaf(wv, x[(t0 + i) * C + c], acc[i]);
      }
    }
#pragma unroll
    for (int i = 0; i < kTokenTile; ++i) {
#pragma unroll
      for (int off = 16; off > 0; off /= 2) acc[i] += __shfl_xor_sync(0xffffffffu, acc[i], off);
    }
    if (lane == 0) {
#pragma unroll
      for (int i = 0; i < kTokenTile; ++i) {
        if (i < nt) y[(t0 + i) * N + n] = acc[i];
      }
    }
  }
}

// One block per token; threads stride over the row.
template <DType T>
__global__ void GetRowsKernel(const uint8_t* __restrict__ table, size_t row_bytes, int64_t C,
                              const int32_t* __restrict__ ids, float* __restrict__ y) {
  const int64_t t = blockIdx.x;
  const uint8_t* row = table + static_cast<size_t>(ids[t]) * row_bytes;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) y[t * C + c] = Decode<T>(row, c);
}

// Every weight type with a decoder, as X(type).
#define FORMIGA_CUDA_WEIGHT_TYPES(X)                                                                  \
  X(DType::kF32) X(DType::kF16) X(DType::kBF16) X(DType::kQ4_0) X(DType::kQ4_1) X(DType::kQ5_0) \
  X(DType::kQ5_1) X(DType::kQ8_0) X(DType::kQ2_K) X(DType::kQ3_K) X(DType::kQ4_K) X(DType::kQ5_K) \
  X(DType::kQ6_K)

}  // namespace

bool IsWeightTypeSupported(DType type) {
  switch (type) {
#define FORMIGA_CASE(T) case T:
    FORMIGA_CUDA_WEIGHT_TYPES(FORMIGA_CASE)
#undef FORMIGA_CASE
    return true;
    default:
      return false;
  }
}

void LaunchMatMul(const WeightView& w, const float* x, float* y, int64_t T, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((w.rows + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const auto* data = static_cast<const uint8_t*>(w.data);
  switch (w.type) {
#define FORMIGA_CASE(Type)                                                                                    \
  case Type:                                                                                                  \
    MatMulKernel<Type><<<blocks, 32 * kWarpsPerBlock, 0, stream>>>(data, w.row_bytes, w.cols, w.rows, x, y, T); \
    break;
    FORMIGA_CUDA_WEIGHT_TYPES(FORMIGA_CASE)
#undef FORMIGA_CASE
    default:
      break;
  }
}

void LaunchGetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y, cudaStream_t stream) {
  const auto* data = static_cast<const uint8_t*>(table.data);
  switch (table.type) {
#define FORMIGA_CASE(Type)                                                                                    \
  case Type:                                                                                                  \
    GetRowsKernel<Type><<<static_cast<unsigned>(T), 256, 0, stream>>>(data, table.row_bytes, table.cols, ids, y); \
    break;
    FORMIGA_CUDA_WEIGHT_TYPES(FORMIGA_CASE)
#undef FORMIGA_CASE
    default:
      break;
  }
}

}  // namespace formiga::cuda
