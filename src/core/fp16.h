// Exact conversions between f32 and the two 16-bit float formats that reach
// disk in GGUF files: IEEE binary16 ("f16", ggml_fp16_t) and bfloat16 ("bf16").
//
// All conversions are bit-exact and deterministic on every host:
//   - f16 -> f32 and bf16 -> f32 are exact (every 16-bit value is an f32).
//   - f32 -> f16 rounds to nearest, ties to even (as F16C's vcvtps2ph with
//     imm8=0, numpy's astype(float16) and ggml do); overflow gives +-inf,
//     values below half the smallest subnormal give +-0, subnormals are kept;
//     NaN stays NaN (quiet bit set, top payload bits kept).
//   - f32 -> bf16 rounds to nearest even; NaN is forced quiet (payload top
//     bits kept, bit 6 of the bf16 set) exactly like ggml_compute_fp32_to_bf16,
//     so that rounding can never turn a NaN into an infinity.
//
// NOTE: these are plain integer bit manipulations rather than F16C intrinsics
// so that the results do not depend on the -march the engine is built with;
// the fast kernels (kernels/cpu) may use hardware conversions, and tests
// compare them against these.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <cstring>

namespace formiga {

inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

inline float F32FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// binary16 layout: 1 sign bit | 5 exponent bits (bias 15) | 10 mantissa bits.
inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) {  // inf / NaN: widen the payload
    return F32FromBits(sign | 0x7f800000u | (mant << 13));
  }
  if (exp == 0) {
    if (mant == 0) return F32FromBits(sign);  // +-0
    // Subnormal: mant * 2^-24, exact in f32 (mant < 2^10).
    const float magnitude = static_cast<float>(mant) * 0x1p-24f;
    return F32FromBits(sign | F32Bits(magnitude));
  }
  // Normal: rebias the exponent from 15 to 127.
  return F32FromBits(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
}

inline uint16_t F32ToF16(float f) {
  const uint32_t x = F32Bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {  // inf or NaN
    if (ax == 0x7f800000u) return sign | 0x7c00u;
    return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  }
  // 65520 = 0x477ff000 is half-way between the largest f16 (65504, odd
  // mantissa) and 65536; ties-to-even rounds it up, to infinity.
  if (ax >= 0x477ff000u) return sign | 0x7c00u;
  if (ax >= 0x38800000u) {  // result is a normal f16 (>= 2^-14)
    // Round the 23-bit mantissa to 10 bits, ties to even; a carry out of the
    // mantissa correctly bumps the exponent.
    const uint32_t rounded = (ax + 0x0fffu + ((ax >> 13) & 1u)) >> 13;
    return static_cast<uint16_t>(sign | (rounded - ((127u - 15u) << 10)));
  }
  // 2^-25 (0x33000000) is half the smallest subnormal: ties to even -> 0.
  if (ax <= 0x33000000u) return sign;
  // Subnormal result: value / 2^-24 = m * 2^(e - 126) with the implicit bit.
  const uint32_t e = ax >> 23;                      // 102..112
  const uint32_t m = (ax & 0x7fffffu) | 0x800000u;  // 24 significant bits
  const uint32_t shift = 126u - e;                  // 14..24
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1u);
  if (rem > halfway || (rem == halfway && (q & 1u))) ++q;  // may reach 0x400: min normal
  return static_cast<uint16_t>(sign | q);
}

// bfloat16 is the top half of an f32.
inline float BF16ToF32(uint16_t h) { return F32FromBits(static_cast<uint32_t>(h) << 16); }

inline uint16_t F32ToBF16(float f) {
  const uint32_t x = F32Bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) {  // NaN: truncate and force quiet
    return static_cast<uint16_t>((x >> 16) | 64u);
  }
  // Ties to even; finite values that round past the largest bf16 become inf.
  return static_cast<uint16_t>((static_cast<uint64_t>(x) + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace formiga
