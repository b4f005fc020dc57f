#include "kernels/kv_cache.h"

#include <new>
#include <string>

namespace formiga {

uint64_t KvCache::BytesPerToken(int64_t n_layers, const KvLayout& layout) {
  return 2ull * static_cast<uint64_t>(n_layers) *
         DTypeRowBytes(layout.type, static_cast<uint64_t>(layout.n_kv_heads * layout.head_dim));
}

uint64_t KvCache::bytes() const {
  return BytesPerToken(n_layers(), layout_) * static_cast<uint64_t>(n_blocks_) *
         static_cast<uint64_t>(layout_.block_size);
}

Result<KvCache> KvCache::Create(int64_t n_layers, int64_t n_blocks, const KvLayout& layout) {
  if (layout.type != DType::kF16 && layout.type != DType::kF32 && layout.type != DType::kQ8_0) {
    return Status::Unsupported(std::string("KV cache type ") + DTypeName(layout.type) + " (use f16, q8_0 or f32)");
  }
  if (layout.type == DType::kQ8_0 && layout.head_dim % 32 != 0) {
    return Status::Unsupported("a q8_0 KV cache needs a head dimension divisible by 32 (this model's is " +
                               std::to_string(layout.head_dim) + "): use --kv-type f16");
  }
  if (n_layers <= 0 || n_blocks <= 0 || layout.block_size <= 0 || layout.n_kv_heads <= 0 || layout.head_dim <= 0) {
    return Status::InvalidArgument("KV cache sizes must be positive");
  }
  KvCache cache;
  cache.n_blocks_ = n_blocks;
  cache.layout_ = layout;
  const uint64_t per_layer = BytesPerToken(1, layout) / 2 * static_cast<uint64_t>(n_blocks) *
                             static_cast<uint64_t>(layout.block_size);
  try {
    cache.k_.resize(static_cast<size_t>(n_layers));
    cache.v_.resize(static_cast<size_t>(n_layers));
    for (int64_t il = 0; il < n_layers; ++il) {
      cache.k_[il].resize(per_layer);
      cache.v_[il].resize(per_layer);
    }
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("KV cache of " + std::to_string(per_layer * 2 * n_layers / (1 << 20)) +
                                     " MiB could not be allocated: use a shorter context (--ctx)");
  }
  return cache;
}

}  // namespace formiga
