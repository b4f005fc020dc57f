#include "kernels/cpu_pack.h"

#include <cstring>

#include "core/quant.h"

namespace formiga::cpu {
namespace {

// How a type's blocks are packed: the f16 scale d at `d_offset` goes first
// (kScaleFirst: Q4_0, Q8_0) or last (kScaleLast: Q6_K) as 16 contiguous
// f16, or stays inside the words (kWords: Q4_K, Q5_K, whose first word is
// d | dmin << 16); the other `word_bytes` (a multiple of 4) are transposed
// by 4-byte words, from `words_offset`.
enum class ScaleAt { kWords, kScaleFirst, kScaleLast };
struct BlockShape {
  size_t block_bytes = 0, words_offset = 0, word_bytes = 0, d_offset = 0;
  ScaleAt scale = ScaleAt::kWords;
  uint8_t bias = 0;  // added to each word byte (Q8_0: 128)
};

BlockShape ShapeOf(DType type) {
  switch (type) {
    case DType::kQ4_0:
      return {sizeof(BlockQ4_0), offsetof(BlockQ4_0, qs), kQK / 2, offsetof(BlockQ4_0, d), ScaleAt::kScaleFirst, 0};
    case DType::kQ8_0:
      return {sizeof(BlockQ8_0), offsetof(BlockQ8_0, qs), kQK, offsetof(BlockQ8_0, d), ScaleAt::kScaleFirst, 128};
    case DType::kQ4_K: return {sizeof(BlockQ4_K), 0, sizeof(BlockQ4_K), 0, ScaleAt::kWords, 0};
    case DType::kQ5_K: return {sizeof(BlockQ5_K), 0, sizeof(BlockQ5_K), 0, ScaleAt::kWords, 0};
    case DType::kQ6_K:
      return {sizeof(BlockQ6_K), 0, offsetof(BlockQ6_K, d), offsetof(BlockQ6_K, d), ScaleAt::kScaleLast, 0};
    default: return {};
  }
}

}  // namespace

size_t PackedBytes(const WeightView& w) {
  const BlockShape b = ShapeOf(w.type);
  const int64_t block = GetDTypeTraits(w.type).block_size;
  if (b.block_bytes == 0 || w.layout != WeightLayout::kRows || w.rows < kPackRows || w.cols <= 0 ||
      w.cols % block != 0 || w.row_bytes != static_cast<size_t>(w.cols / block) * b.block_bytes) {
    return 0;
  }
  return static_cast<size_t>(w.rows) * w.row_bytes;
}

void PackGroups(const WeightView& w, int64_t g0, int64_t g1, uint8_t* dst) {
  const BlockShape b = ShapeOf(w.type);
  const int64_t nb = w.cols / GetDTypeTraits(w.type).block_size;
  const size_t group_block = kPackRows * b.block_bytes;
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* out = dst + static_cast<size_t>(g * nb) * group_block;
    const uint8_t* rows = src + static_cast<size_t>(g * kPackRows) * w.row_bytes;
    for (int64_t ib = 0; ib < nb; ++ib, out += group_block) {
      const size_t scales = b.scale == ScaleAt::kWords ? 0 : 2 * kPackRows;
      uint8_t* words = out + (b.scale == ScaleAt::kScaleFirst ? scales : 0);
      uint8_t* d16 = b.scale == ScaleAt::kScaleFirst ? out : out + group_block - scales;
      const uint8_t* blk[kPackRows];
      for (int64_t i = 0; i < kPackRows; ++i) {
        blk[i] = rows + static_cast<size_t>(i) * w.row_bytes + static_cast<size_t>(ib) * b.block_bytes;
        if (scales != 0) std::memcpy(d16 + 2 * i, blk[i] + b.d_offset, 2);
      }
      // Word by word, the 16 rows' words make one 64-byte line of output.
      // (Adding 128 to every byte is flipping its top bit.)
      const uint32_t flip = b.bias != 0 ? 0x80808080u : 0;
      for (size_t c = 0; c < b.word_bytes / 4; ++c) {
        uint32_t line[kPackRows];
        for (int64_t i = 0; i < kPackRows; ++i) {
          std::memcpy(&line[i], blk[i] + b.words_offset + 4 * c, 4);
          line[i] ^= flip;
        }
        std::memcpy(words + 64 * c, line, sizeof(line));
      }
    }
  }
}

void UnpackRow(const WeightView& packed, int64_t r, uint8_t* out) {
  const BlockShape b = ShapeOf(packed.type);
  const int64_t full = packed.rows / kPackRows * kPackRows;
  const auto* base = static_cast<const uint8_t*>(packed.data);
  if (r >= full) {
    std::memcpy(out, base + static_cast<size_t>(r) * packed.row_bytes, packed.row_bytes);
    return;
  }
  const int64_t nb = packed.cols / GetDTypeTraits(packed.type).block_size;
  const size_t group_block = kPackRows * b.block_bytes;
  const size_t scales = b.scale == ScaleAt::kWords ? 0 : 2 * kPackRows;
  const uint32_t flip = b.bias != 0 ? 0x80808080u : 0;
  const int64_t i = r % kPackRows;
  const uint8_t* gb = base + static_cast<size_t>((r / kPackRows) * nb) * group_block;
  for (int64_t ib = 0; ib < nb; ++ib, gb += group_block, out += b.block_bytes) {
    const uint8_t* words = gb + (b.scale == ScaleAt::kScaleFirst ? scales : 0);
    const uint8_t* d16 = b.scale == ScaleAt::kScaleFirst ? gb : gb + group_block - scales;
    if (scales != 0) std::memcpy(out + b.d_offset, d16 + 2 * i, 2);
    for (size_t c = 0; c < b.word_bytes / 4; ++c) {
      uint32_t v;
      std::memcpy(&v, words + 64 * c + 4 * i, 4);
      v ^= flip;
      std::memcpy(out + b.words_offset + 4 * c, &v, 4);
    }
  }
}

void PackTail(const WeightView& w, uint8_t* dst) {
  const int64_t full = w.rows / kPackRows * kPackRows;
  const size_t at = static_cast<size_t>(full) * w.row_bytes;
  std::memcpy(dst + at, static_cast<const uint8_t*>(w.data) + at, static_cast<size_t>(w.rows - full) * w.row_bytes);
}

WeightView PackedView(const WeightView& w, const uint8_t* dst) {
  WeightView p = w;
  p.data = dst;
  p.layout = WeightLayout::kPacked;
  return p;
}

}  // namespace formiga::cpu
