// Block formats of quantized tensors, bit-compatible with GGUF/ggml, and the
// reference ("ref") code that converts rows between f32 and those formats.
//
// A row of n elements of a block type is n / block_size consecutive blocks
// (see core/dtype.h for block_size and type_size). The structs below spell out
// each block byte by byte exactly as ggml-common.h lays it out on disk; the
// static_asserts in quant.cc pin their sizes to dtype.cc's type_size.
//
// The quantizers follow ggml's reference quantizers (quantize_row_*_ref,
// without an importance matrix), so that formiga writes the same bytes
// llama.cpp's `llama-quantize` writes for the same f32 input without
// --imatrix (tested byte for byte against llama.cpp's and gguf-py's output in
// quant_golden_test.cc). The dequantizers reproduce ggml's (and gguf-py's)
// f32 results bit for bit.
//
// NOTE: this is the slow, obviously-correct twin (DESIGN.md decision 6):
// scalar loops, no SIMD. Fast kernels live in kernels/ and are tested against
// these functions.
//
// Thread safety: all functions are pure (no shared state); call them from any
// number of threads on disjoint outputs.
// Ownership: callers own every buffer; nothing is allocated or retained.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/status.h"

namespace formiga {

// Elements per block of the legacy formats and of the K-quant super-blocks.
inline constexpr int kQK = 32;    // Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1
inline constexpr int kQK_K = 256;  // Q2_K..Q8_K
inline constexpr int kKScaleSize = 12;  // packed 6-bit scales+mins of Q4_K/Q5_K

// ----------------------------------------------------------------------------
// Block layouts. `d`, `m`, `dmin`, `s` are f16 bit patterns (core/fp16.h)
// unless the comment says f32. Element j of a block is written x[j].

// Q4_0: x[j] = d * (q[j] - 8), q in 0..15.
// qs[j] holds q[j] in its low nibble and q[j + 16] in its high nibble.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};

// Q4_1: x[j] = d * q[j] + m, q in 0..15; nibbles as Q4_0.
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};

// Q5_0: x[j] = d * (q[j] - 16), q in 0..31. Low 4 bits as Q4_0; bit 4 of
// q[j] is bit j of the little-endian uint32 qh.
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// Q5_1: x[j] = d * q[j] + m, q in 0..31; bits as Q5_0.
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};

// Q8_0: x[j] = d * qs[j].
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};

// Q8_1: x[j] = d * qs[j]; s = d * sum(qs) (used by dot products).
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK];
};

// Q2_K: 16 sub-blocks of 16. scales[i] = scale (low nibble) | min (high
// nibble) of sub-block i; x = d*scale * q - dmin*min, q in 0..3.
// qs: for each half h (128 elements) 32 bytes; byte l holds, at bit 2*k,
// q of element h*128 + 32*k + l.
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};

// Q3_K: 16 sub-blocks of 16 with signed 6-bit scales (stored +32, packed in
// 12 bytes: low 4 bits in bytes 0..7 (two per byte), high 2 bits in bytes
// 8..11); x = d * (scale - 32) * (q - 4), q in 0..7: low 2 bits in qs (as
// Q2_K), high bit in hmask (element j: byte j % 32, bit j / 32; a SET bit
// means "no -4").
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};

// Q4_K: 8 sub-blocks of 32 with 6-bit scale and min each (packed in 12
// bytes, see UnpackScaleMinK4 in quant_k.cc); x = d*scale * q - dmin*min,
// q in 0..15. qs: for each 64-element chunk c, 32 bytes: low nibbles are
// elements 64c + l, high nibbles elements 64c + 32 + l.
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQK_K / 2];
};

// Q5_K: as Q4_K with q in 0..31; bit 4 of element 64c + l is bit 2c of qh[l],
// of element 64c + 32 + l bit 2c + 1.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};

// Q6_K: 16 sub-blocks of 16 with int8 scales; x = d * scale * (q - 32), q in
// 0..63. Per 128-element half: ql 64 bytes (low nibbles of elements l and
// l+64 in ql[l], of l+32 and l+96 in ql[l+32]), qh 32 bytes (2-bit highs of
// l, l+32, l+64, l+96 at bits 0, 2, 4, 6 of qh[l]).
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};

// Q8_K: x[j] = d * qs[j] with an f32 `d`; bsums = sums of qs per 16.
// (An intermediate format for dot products; never stored in model files.)
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};

// ----------------------------------------------------------------------------
// Row conversions for any supported type.
//
// Supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K,
// Q4_K, Q5_K, Q6_K, Q8_K. Other types -> Unsupported naming the type.
// REQUIRES: n % block_size(type) == 0 (else InvalidArgument naming the type,
// n and the block size); `src`/`dst` hold n elements /
// DTypeRowBytes(type, n) bytes and do not overlap.
Status DequantizeRow(DType type, const void* src, float* dst, int64_t n);
Status QuantizeRow(DType type, const float* src, void* dst, int64_t n);

// Whether QuantizeRow/DequantizeRow handle `type`.
bool IsQuantizeSupported(DType type);

// ----------------------------------------------------------------------------
// Per-type reference code, for kernels and tests. `nb` is the number of
// blocks; x is (nb * block_size) floats. No argument checking.
void DequantizeQ4_0(const BlockQ4_0* b, float* x, int64_t nb);
void DequantizeQ4_1(const BlockQ4_1* b, float* x, int64_t nb);
void DequantizeQ5_0(const BlockQ5_0* b, float* x, int64_t nb);
void DequantizeQ5_1(const BlockQ5_1* b, float* x, int64_t nb);
void DequantizeQ8_0(const BlockQ8_0* b, float* x, int64_t nb);
void DequantizeQ8_1(const BlockQ8_1* b, float* x, int64_t nb);
void DequantizeQ2_K(const BlockQ2_K* b, float* x, int64_t nb);
void DequantizeQ3_K(const BlockQ3_K* b, float* x, int64_t nb);
void DequantizeQ4_K(const BlockQ4_K* b, float* x, int64_t nb);
void DequantizeQ5_K(const BlockQ5_K* b, float* x, int64_t nb);
void DequantizeQ6_K(const BlockQ6_K* b, float* x, int64_t nb);
void DequantizeQ8_K(const BlockQ8_K* b, float* x, int64_t nb);

void QuantizeQ4_0(const float* x, BlockQ4_0* b, int64_t nb);
void QuantizeQ4_1(const float* x, BlockQ4_1* b, int64_t nb);
void QuantizeQ5_0(const float* x, BlockQ5_0* b, int64_t nb);
void QuantizeQ5_1(const float* x, BlockQ5_1* b, int64_t nb);
void QuantizeQ8_0(const float* x, BlockQ8_0* b, int64_t nb);
void QuantizeQ8_1(const float* x, BlockQ8_1* b, int64_t nb);
void QuantizeQ2_K(const float* x, BlockQ2_K* b, int64_t nb);
void QuantizeQ3_K(const float* x, BlockQ3_K* b, int64_t nb);
void QuantizeQ4_K(const float* x, BlockQ4_K* b, int64_t nb);
void QuantizeQ5_K(const float* x, BlockQ5_K* b, int64_t nb);
void QuantizeQ6_K(const float* x, BlockQ6_K* b, int64_t nb);
void QuantizeQ8_K(const float* x, BlockQ8_K* b, int64_t nb);

}  // namespace formiga
