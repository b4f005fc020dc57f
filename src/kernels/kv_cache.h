// KvCache: the memory of a paged KV cache, for every layer of a model.
//
// Layer l has K and V arrays of [n_blocks][block_size][KH][D] elements in the
// layout's type (f16 by default, f32, or q8_0: each (position, head) row of D
// stored as D/32 blocks of 34 bytes, ~47% of f16). Block ids come from a BlockPool (runtime/); the cache only
// owns the bytes. Host memory today; a device backend will own device memory
// behind the same views.
//
// Thread safety: views may be read/written by one forward pass at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"

namespace formiga {

class KvCache {
 public:
  // Allocates n_layers x 2 arrays. Fails (ResourceExhausted) if the memory
  // cannot be had, with the size asked for in the message.
  static Result<KvCache> Create(int64_t n_layers, int64_t n_blocks, const KvLayout& layout);

  int64_t n_layers() const { return static_cast<int64_t>(k_.size()); }
  int64_t n_blocks() const { return n_blocks_; }
  const KvLayout& layout() const { return layout_; }
  KvLayerView layer(int64_t il) { return KvLayerView{k_[il].data(), v_[il].data(), layout_}; }
  // Bytes held (K and V, all layers).
  uint64_t bytes() const;
  // Bytes per token position (all layers, K and V): 2 * layers * row bytes of KH * D.
  static uint64_t BytesPerToken(int64_t n_layers, const KvLayout& layout);

 private:
  int64_t n_blocks_ = 0;
  KvLayout layout_;
  // NOTE: uint8_t storage keeps f16/f32 layouts in one type; the element type
  // is in layout_. std::vector zero-fills, which also touches the pages so the
  // resident size printed by --verbose is what the cache really costs.
  std::vector<std::vector<uint8_t>> k_, v_;
};

}  // namespace formiga
