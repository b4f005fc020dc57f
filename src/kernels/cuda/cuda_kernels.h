// Launchers of the CUDA backend's kernels (cuda_matmul.cu, cuda_ops.cu),
// called by cuda_backend.cu. Each queues its kernel(s) on `stream` and
// returns at once; launch errors are left for the caller's
// cudaGetLastError. Shapes and semantics are Backend's (kernels/backend.h);
// every pointer is device memory.
//
// Thread safety: launchers hold no state; the caller serializes use of a
// stream. Ownership: nothing is allocated or retained.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/backend.h"

namespace formiga::cuda {

// Whether MatMul/GetRows have a device decoder for `type`.
bool IsWeightTypeSupported(DType type);

// y (T, N) = x (T, C) · Wᵀ. REQUIRES: IsWeightTypeSupported(w.type),
// w.cols % block_size == 0, T > 0, w.rows > 0.
void LaunchMatMul(const WeightView& w, const float* x, float* y, int64_t T, cudaStream_t stream);

// y (T, C) = rows ids[t] of `table`, dequantized. REQUIRES: ids in range.
void LaunchGetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y, cudaStream_t stream);

void LaunchRmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps,
                   cudaStream_t stream);
void LaunchLayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T, int64_t C,
                     float eps, cudaStream_t stream);
void LaunchRope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
                const RopeParams& params, cudaStream_t stream);
void LaunchStoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv,
                   cudaStream_t stream);

// Largest head dim the attention kernel handles (per-lane accumulators).
inline constexpr int64_t kMaxAttentionHeadDim = 256;
void LaunchAttention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     const AttentionParams& params, float* out, cudaStream_t stream);

enum class Unary { kGeluErf, kGeluTanh, kSoftCap, kScale };
enum class Binary { kSiluMul, kGeluMul, kAdd };
// y (n) = f(x) with parameter `p` (cap for kSoftCap, factor for kScale).
void LaunchUnary(Unary op, const float* x, float* y, int64_t n, float p, cudaStream_t stream);
void LaunchBinary(Binary op, const float* a, const float* b, float* y, int64_t n, cudaStream_t stream);
void LaunchAddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C, cudaStream_t stream);
void LaunchCopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y, cudaStream_t stream);

}  // namespace formiga::cuda
