// Every non-MatMul op of the CUDA backend: norms (one block per row), RoPE
// (one thread per rotated pair, angles in double like the ref), the paged KV
// store, paged attention (one block per (token, head), online softmax) and
// the elementwise ops (grid-stride loops).
//
// NOTE: straightforward kernels, correct before fast; see docs/kernels.md
// for what comes next.
#include <cuda_fp16.h>

#include <cmath>

#include "kernels/cuda/cuda_kernels.h"

namespace formiga::cuda {
namespace {

constexpr int kNormThreads = 256;

// Sum of v over the block; every thread gets the result. `scratch` holds
// 32 floats; the leading __syncthreads lets callers reuse it back to back.
__device__ float BlockSum(float v, float* scratch) {
  for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int n_warps = (blockDim.x + 31) / 32;
  float total = 0.0f;
  for (int w = 0; w < n_warps; ++w) total += scratch[w];
  return total;
}

__global__ void RmsNormKernel(const float* x, const float* __restrict__ weight, float* y, int64_t C, float eps) {
  __shared__ float scratch[32];
  const float* xt = x + blockIdx.x * C;
  float* yt = y + blockIdx.x * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss = fmaf(xt[c], xt[c], ss);
  ss = BlockSum(ss, scratch);
  const float inv = rsqrtf(ss / static_cast<float>(C) + eps);
  // NOTE: each thread rewrites only the elements it read, so y may alias x.
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    yt[c] = xt[c] * inv * (weight != nullptr ? weight[c] : 1.0f);
  }
}

__global__ void LayerNormKernel(const float* x, const float* __restrict__ weight, const float* __restrict__ bias,
                                float* y, int64_t C, float eps) {
  __shared__ float scratch[32];
  const float* xt = x + blockIdx.x * C;
  float* yt = y + blockIdx.x * C;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += xt[c];
  const float mean = BlockSum(s, scratch) / static_cast<float>(C);
  float v = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) v = fmaf(xt[c] - mean, xt[c] - mean, v);
  const float inv = rsqrtf(BlockSum(v, scratch) / static_cast<float>(C) + eps);
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
    float o = (xt[c] - mean) * inv;
    if (weight != nullptr) o *= weight[c];
    if (bias != nullptr) o += bias[c];
    yt[c] = o;
  }
}

__global__ void RopeKernel(float* x, const int32_t* __restrict__ positions, int64_t T, int64_t n_heads, int64_t D,
                           RopeParams p) {
  const int64_t half = p.n_rot / 2;
  const int64_t total = T * n_heads * half;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = idx % half;
    const int64_t th = idx / half;  // t * n_heads + h
    const int64_t t = th / n_heads;
    float* v = x + th * D;
    double freq = pow(static_cast<double>(p.freq_base), -2.0 * static_cast<double>(i) / static_cast<double>(p.n_rot));
    if (p.freq_factors != nullptr) freq /= p.freq_factors[i];
    const double angle = static_cast<double>(positions[t]) * p.freq_scale * freq;
    double s, c;
    sincos(angle, &s, &c);
    const int64_t a = p.style == RopeStyle::kNormal ? 2 * i : i;
    const int64_t b = p.style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
    const double x0 = v[a], x1 = v[b];
    v[a] = static_cast<float>(x0 * c - x1 * s);
    v[b] = static_cast<float>(x0 * s + x1 * c);
  }
}

__global__ void StoreKvKernel(const float* __restrict__ k, const float* __restrict__ v,
                              const int64_t* __restrict__ slots, int64_t T, int64_t row, void* kc, void* vc,
                              bool f16) {
  const int64_t total = T * row;
  for (int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = idx / row, e = idx % row;
    const int64_t dst = slots[t] * row + e;
    if (f16) {
      static_cast<__half*>(kc)[dst] = __float2half_rn(k[idx]);
      static_cast<__half*>(vc)[dst] = __float2half_rn(v[idx]);
    } else {
      static_cast<float*>(kc)[dst] = k[idx];
      static_cast<float*>(vc)[dst] = v[idx];
    }
  }
}

constexpr int kAttnWarps = 4;
constexpr int kDimsPerLane = static_cast<int>(kMaxAttentionHeadDim / 32);

__device__ __forceinline__ float LoadKv(const void* base, bool f16, int64_t index) {
  return f16 ? __half2float(static_cast<const __half*>(base)[index]) : static_cast<const float*>(base)[index];
}

// One block of kAttnWarps warps per (token, head). Warp w takes keys
// lo + w, lo + w + kAttnWarps, ...; lanes split the head dims (lane owns d =
// lane + 32 i) and each warp keeps its own online-softmax state (running
// max m, sum l, accumulators); the warps' states are merged at the end.
__global__ void __launch_bounds__(32 * kAttnWarps)
    AttentionKernel(const float* __restrict__ q, const void* __restrict__ kc, const void* __restrict__ vc,
                    bool f16, int64_t block_size, AttentionBatch batch, AttentionParams p, float* __restrict__ out) {
  __shared__ float s_m[kAttnWarps], s_l[kAttnWarps];
  __shared__ float s_acc[kAttnWarps][kMaxAttentionHeadDim];
  const int64_t H = p.n_heads, KH = p.n_kv_heads, D = p.head_dim;
  const int64_t t = blockIdx.x / H, h = blockIdx.x % H;
  const int64_t kh = h / (H / KH);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t pos = batch.positions[t];
  const int32_t* table = batch.block_tables[batch.seq_of_token[t]];
  const int64_t lo = p.window > 0 && pos - p.window + 1 > 0 ? pos - p.window + 1 : 0;

  const float* qh = q + (t * H + h) * D;
  float qr[kDimsPerLane], acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    qr[i] = d < D ? qh[d] : 0.0f;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = lo + warp; j <= pos; j += kAttnWarps) {
    const int64_t slot = static_cast<int64_t>(table[j / block_size]) * block_size + j % block_size;
    const int64_t base = (slot * KH + kh) * D;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < D) s = fmaf(qr[i], LoadKv(kc, f16, base + d), s);
    }
    for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
    s *= p.scale;
    if (p.softcap > 0.0f) s = p.softcap * tanhf(s / p.softcap);
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 on the first key (m = -inf)
    const float e = expf(s - m_new);
    l = l * corr + e;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int64_t d = lane + 32 * i;
      if (d < D) acc[i] = acc[i] * corr + e * LoadKv(vc, f16, base + d);
    }
    m = m_new;
  }
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = lane + 32 * i;
    if (d < D) s_acc[warp][d] = acc[i];
  }
  __syncthreads();
  float m_all = -INFINITY;
  for (int w = 0; w < kAttnWarps; ++w) m_all = fmaxf(m_all, s_m[w]);
  float l_all = 0.0f, f[kAttnWarps];
  for (int w = 0; w < kAttnWarps; ++w) {
    f[w] = s_l[w] > 0.0f ? expf(s_m[w] - m_all) : 0.0f;  // warps that saw no key weigh 0
    l_all += s_l[w] * f[w];
  }
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kAttnWarps; ++w) o += s_acc[w][d] * f[w];
    out[(t * H + h) * D + d] = o / l_all;
  }
}

__device__ __forceinline__ float GeluTanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)));
}

__global__ void UnaryKernel(Unary op, const float* x, float* y, int64_t n, float p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = x[i];
    switch (op) {
      case Unary::kGeluErf: y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); break;
      case Unary::kGeluTanh: y[i] = GeluTanh(v); break;
      case Unary::kSoftCap: y[i] = p * tanhf(v / p); break;
      case Unary::kScale: y[i] = v * p; break;
    }
  }
}

__global__ void BinaryKernel(Binary op, const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float u = a[i], w = b[i];
    switch (op) {
      case Binary::kSiluMul: y[i] = u / (1.0f + expf(-u)) * w; break;
      case Binary::kGeluMul: y[i] = GeluTanh(u) * w; break;
      case Binary::kAdd: y[i] = u + w; break;
    }
  }
}

__global__ void AddBiasKernel(const float* x, const float* __restrict__ bias, float* y, int64_t T, int64_t C) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < T * C;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = x[i] + bias[i % C];
  }
}

__global__ void CopyRowsKernel(const float* __restrict__ x, const int32_t* __restrict__ rows, int64_t R, int64_t C,
                               float* __restrict__ y) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < R * C;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = x[static_cast<int64_t>(rows[i / C]) * C + i % C];
  }
}

// Grid for a grid-stride loop over n elements.
unsigned GridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);
}

constexpr int kThreads = 256;

}  // namespace

void LaunchRmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps,
                   cudaStream_t stream) {
  RmsNormKernel<<<static_cast<unsigned>(T), kNormThreads, 0, stream>>>(x, weight, y, C, eps);
}

void LaunchLayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T, int64_t C,
                     float eps, cudaStream_t stream) {
  LayerNormKernel<<<static_cast<unsigned>(T), kNormThreads, 0, stream>>>(x, weight, bias, y, C, eps);
}

void LaunchRope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D, const RopeParams& params,
                cudaStream_t stream) {
  const int64_t total = T * n_heads * (params.n_rot / 2);
  RopeKernel<<<GridFor(total, kThreads), kThreads, 0, stream>>>(x, positions, T, n_heads, D, params);
}

void LaunchStoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv,
                   cudaStream_t stream) {
  const int64_t row = kv.layout.n_kv_heads * kv.layout.head_dim;
  StoreKvKernel<<<GridFor(batch.n_tokens * row, kThreads), kThreads, 0, stream>>>(
      k, v, batch.slots, batch.n_tokens, row, kv.k, kv.v, kv.layout.type == DType::kF16);
}

void LaunchAttention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                     const AttentionParams& params, float* out, cudaStream_t stream) {
  AttentionKernel<<<static_cast<unsigned>(batch.n_tokens * params.n_heads), 32 * kAttnWarps, 0, stream>>>(
      q, kv.k, kv.v, kv.layout.type == DType::kF16, kv.layout.block_size, batch, params, out);
}

void LaunchUnary(Unary op, const float* x, float* y, int64_t n, float p, cudaStream_t stream) {
  UnaryKernel<<<GridFor(n, kThreads), kThreads, 0, stream>>>(op, x, y, n, p);
}

void LaunchBinary(Binary op, const float* a, const float* b, float* y, int64_t n, cudaStream_t stream) {
  BinaryKernel<<<GridFor(n, kThreads), kThreads, 0, stream>>>(op, a, b, y, n);
}

void LaunchAddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C, cudaStream_t stream) {
  AddBiasKernel<<<GridFor(T * C, kThreads), kThreads, 0, stream>>>(x, bias, y, T, C);
}

void LaunchCopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y, cudaStream_t stream) {
  CopyRowsKernel<<<GridFor(R * C, kThreads), kThreads, 0, stream>>>(x, rows, R, C, y);
}

}  // namespace formiga::cuda
