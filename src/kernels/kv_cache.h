// KvCache: the memory of a paged KV cache, for every layer of a model.
//
// Layer l has K and V arrays of [n_blocks][block_size][KH][D] elements in the
// layout's type (f16 by default, f32, or q8_0: each (position, head) row of D
// stored as D/32 blocks of 34 bytes, ~47% of f16). Block ids come from a BlockPool (runtime/); the cache only
// owns the bytes. A layer runs on one backend (the model's placement): host
// backends' layers live in host memory, a device backend's layers in memory
// from that backend's Alloc, so the views handed to its ops are its own.
//
// Thread safety: views may be read/written by one forward pass at a time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"

namespace formiga {

class KvCache {
 public:
  // Allocates n_layers x 2 arrays in host memory. Fails (ResourceExhausted) if
  // the memory cannot be had, with the size asked for in the message.
  static Result<KvCache> Create(int64_t n_layers, int64_t n_blocks, const KvLayout& layout);
  // As Create, layer l's arrays in the memory of layer_backends[l] (one entry
  // per layer): host backends (IsHost) get host memory, others their own
  // Alloc. `device_names[l]` (optional, e.g. "cuda:0") names the device in the
  // out-of-memory message. The backends must outlive the cache.
  static Result<KvCache> Create(int64_t n_blocks, const KvLayout& layout, const std::vector<Backend*>& layer_backends,
                                const std::vector<std::string>& device_names = {});

  int64_t n_layers() const { return static_cast<int64_t>(k_.size()); }
  int64_t n_blocks() const { return n_blocks_; }
  const KvLayout& layout() const { return layout_; }
  KvLayerView layer(int64_t il) {
    return dev_k_.empty() || dev_k_[il].data() == nullptr ? KvLayerView{k_[il].data(), v_[il].data(), layout_}
                                                          : KvLayerView{dev_k_[il].data(), dev_v_[il].data(), layout_};
  }
  // The backend whose memory holds layer il, or nullptr for host memory.
  Backend* layer_backend(int64_t il) const {
    return dev_k_.empty() ? nullptr : dev_k_[static_cast<size_t>(il)].backend();
  }
  // Bytes held (K and V, all layers).
  uint64_t bytes() const;
  // Bytes held by layers in one backend's memory (nullptr: host memory).
  uint64_t bytes_on(const Backend* be) const;
  // Bytes per token position (all layers, K and V): 2 * layers * row bytes of KH * D.
  static uint64_t BytesPerToken(int64_t n_layers, const KvLayout& layout);

 private:
  static Status CheckLayout(int64_t n_layers, int64_t n_blocks, const KvLayout& layout);
  uint64_t LayerBytes() const;  // one of K or V, one layer

  int64_t n_blocks_ = 0;
  KvLayout layout_;
  // NOTE: uint8_t storage keeps f16/f32 layouts in one type; the element type
  // is in layout_. std::vector zero-fills, which also touches the pages so the
  // resident size printed by --verbose is what the cache really costs. A layer
  // on a device has empty host vectors and its arrays in dev_k_/dev_v_.
  std::vector<std::vector<uint8_t>> k_, v_;
  std::vector<BackendBuffer> dev_k_, dev_v_;  // empty when every layer is on the host
};

}  // namespace formiga
