#include "kernels/cpu_pack.h"

#include <cstring>

#include "core/quant.h"

namespace formiga::cpu {
namespace {

// Quant bytes per block and where they start in a GGUF block.
struct BlockShape {
  size_t block_bytes = 0, quant_bytes = 0, quant_offset = 0;
  uint8_t bias = 0;  // added to each quant byte (Q8_0: 128)
};

BlockShape ShapeOf(DType type) {
  switch (type) {
    case DType::kQ4_0: return {sizeof(BlockQ4_0), kQK / 2, offsetof(BlockQ4_0, qs), 0};
    case DType::kQ8_0: return {sizeof(BlockQ8_0), kQK, offsetof(BlockQ8_0, qs), 128};
    default: return {};
  }
}

}  // namespace

size_t PackedGroupBlockBytes(DType type) { return kPackRows * ShapeOf(type).block_bytes; }

size_t PackedBytes(const WeightView& w) {
  const BlockShape b = ShapeOf(w.type);
  if (b.block_bytes == 0 || w.layout != WeightLayout::kRows || w.rows < kPackRows || w.cols <= 0 ||
      w.cols % kQK != 0 || w.row_bytes != static_cast<size_t>(w.cols / kQK) * b.block_bytes) {
    return 0;
  }
  return static_cast<size_t>(w.rows) * w.row_bytes;
}

void PackGroups(const WeightView& w, int64_t g0, int64_t g1, uint8_t* dst) {
  const BlockShape b = ShapeOf(w.type);
  const int64_t nb = w.cols / kQK;
  const size_t group_block = kPackRows * b.block_bytes;
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* out = dst + static_cast<size_t>(g * nb) * group_block;
    const uint8_t* rows = src + static_cast<size_t>(g * kPackRows) * w.row_bytes;
    for (int64_t ib = 0; ib < nb; ++ib, out += group_block) {
      for (int64_t i = 0; i < kPackRows; ++i) {
        const uint8_t* blk = rows + static_cast<size_t>(i) * w.row_bytes + static_cast<size_t>(ib) * b.block_bytes;
        std::memcpy(out + 2 * i, blk, 2);
        const uint8_t* q = blk + b.quant_offset;
        for (size_t c = 0; c < b.quant_bytes / 4; ++c) {
          uint8_t* v = out + 32 + 64 * c + 4 * i;
          for (int k = 0; k < 4; ++k) v[k] = static_cast<uint8_t>(q[4 * c + k] + b.bias);
        }
      }
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
