// The cpu backend's packed weight layout (WeightLayout::kPacked), made at
// load time for the avx512-vnni tier's Q4_0 and Q8_0 kernels
// (cpu_matmul_q4x8.cc) and its Q4_K, Q5_K and Q6_K ones (cpu_matmul_k8.cc).
//
// Why: in GGUF's rows a block of 16 rows is 16 scattered runs, so the
// rows-in-lanes kernels gather the f16 scales one by one and transpose the
// quants with shuffles (the shuffle ports are their limit: Q4_0 decode tops
// out at 39 GB/s per core with the weights in L2, Q8_0 at 55), and a 16-row
// group streams from 16 places in DRAM at once. Packed, one group is one
// contiguous run in the order the kernels consume it, the quants already
// transposed (95 and 151 GB/s: cpu_matmul_bench 1 --cached).
//
// Layout of a matrix of N rows, nb blocks per row (of 32 or 256): rows go
// in groups of 16 (kPackRows); group g is nb "group blocks" one after the
// other, group block ib holding block ib of rows 16g .. 16g + 15:
//   Q4_0, Q8_0: bytes 0..31 the 16 rows' f16 scales d, row i at 2i; then V
//     vectors of 64 bytes, vector c holding, at bytes 4i..4i+3, the quant
//     bytes 4c..4c+3 of row i:
//       Q4_0: V = 4, the nibble bytes as they are (low nibbles: columns
//             4c..4c+3; high: 16 + 4c..16 + 4c + 3);
//       Q8_0: V = 8, each quant plus 128 (offset binary: u8 = q + 128, the
//             unsigned operand of vpdpbusd; Σ q·x = Σ (q + 128)·x - 128·Σ x,
//             exactly).
//   Q4_K, Q5_K: the whole super-blocks by 4-byte words: word k (bytes
//     4k..4k+3) of row i at 64k + 4i (word 0 = d | dmin << 16, words 1-3
//     the 12 scale bytes, then qh / qs as in the block).
//   Q6_K: its first 208 bytes (ql, qh, scales) by 4-byte words as Q4_K,
//     then the 16 rows' f16 d (row i at 52 * 64 + 2i).
//   So a group block is 16 blocks' bytes (Q4_0 288, Q8_0 544, Q4_K 2304,
//   Q5_K 2816, Q6_K 3360), 32-byte aligned when the buffer is.
// After the N / 16 groups come the last N % 16 rows, as GGUF rows
// (row_bytes apart). The packed matrix has exactly the rows' size.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/backend.h"

namespace formiga::cpu {

constexpr int64_t kPackRows = 16;

// Bytes of `w` packed, or 0 when its type has no packed layout (or it has
// fewer than 16 rows, or its columns are not whole blocks).
size_t PackedBytes(const WeightView& w);

// Writes groups [g0, g1) of `w` (a kRows view) into `dst` (PackedBytes(w)
// bytes, 32-byte aligned), at their places: groups can be written by
// several threads at once.
void PackGroups(const WeightView& w, int64_t g0, int64_t g1, uint8_t* dst);
// Writes the last N % 16 rows after the groups.
void PackTail(const WeightView& w, uint8_t* dst);

// Row r of a packed view, back in GGUF's row form (row_bytes at `out`):
// what GetRows reads from a packed table (a tied output's).
void UnpackRow(const WeightView& packed, int64_t r, uint8_t* out);

// The packed view of `w` with its bytes at `dst`.
WeightView PackedView(const WeightView& w, const uint8_t* dst);

// The last N % 16 rows of a packed matrix, as the kRows view they are.
inline WeightView PackedTail(const WeightView& packed) {
  const int64_t full = packed.rows / kPackRows * kPackRows;
  WeightView tail = packed;
  tail.data = static_cast<const uint8_t*>(packed.data) + static_cast<size_t>(full) * packed.row_bytes;
  tail.rows = packed.rows - full;
  tail.layout = WeightLayout::kRows;
  return tail;
}

// How a kernel body walks rows [n0, n1) of a packed matrix of N rows, for T
// tokens into y (T, N): group(g, out, ld) for each 16-row group g the range
// touches, its 16 outputs of token t to go to out + t * ld (y itself for a
// whole group; for a group the range cuts, a scratch tile whose rows in
// range are copied to y after: the backend's tasks start at 16-row
// multiples, other callers may not); then tail(m0, m1) for the rows past
// the last group, [m0, m1) counted from the first of them (PackedTail).
// (static: kernel bodies are compiled once per ISA tier.)
template <class Group, class Tail>
static inline void ForEachPackedGroup(int64_t N, int64_t T, int64_t n0, int64_t n1, float* y, Group&& group,
                                      Tail&& tail) {
  const int64_t full = N / kPackRows * kPackRows;
  thread_local std::vector<float> cut;
  for (int64_t r0 = n0 / kPackRows * kPackRows; r0 < std::min(n1, full); r0 += kPackRows) {
    const int64_t lo = std::max(n0, r0), hi = std::min(n1, r0 + kPackRows);
    if (lo == r0 && hi == r0 + kPackRows) {
      group(r0 / kPackRows, y + r0, N);
      continue;
    }
    cut.assign(static_cast<size_t>(T * kPackRows), 0.0f);
    group(r0 / kPackRows, cut.data(), kPackRows);
    for (int64_t t = 0; t < T; ++t) {
      std::memcpy(y + t * N + lo, cut.data() + t * kPackRows + (lo - r0), static_cast<size_t>(hi - lo) * sizeof(float));
    }
  }
  if (n1 > full) tail(std::max(n0, full) - full, n1 - full);
}

}  // namespace formiga::cpu
