#include "kernels/kv_cache.h"

#include <algorithm>
#include <new>
#include <string>

namespace formiga {

uint64_t KvCache::BytesPerToken(int64_t n_layers, const KvLayout& layout) {
  return 2ull * static_cast<uint64_t>(n_layers) *
         DTypeRowBytes(layout.type, static_cast<uint64_t>(layout.n_kv_heads * layout.head_dim));
}

uint64_t KvCache::LayerBytes() const {
  return BytesPerToken(1, layout_) / 2 * static_cast<uint64_t>(n_blocks_) * static_cast<uint64_t>(layout_.block_size);
}

uint64_t KvCache::bytes() const {
  return BytesPerToken(n_layers(), layout_) * static_cast<uint64_t>(n_blocks_) *
         static_cast<uint64_t>(layout_.block_size);
}

uint64_t KvCache::bytes_on(const Backend* be) const {
  uint64_t n = 0;
  for (int64_t il = 0; il < n_layers(); ++il) {
    if (layer_backend(il) == be) n += 2 * LayerBytes();
  }
  return n;
}

Status KvCache::CheckLayout(int64_t n_layers, int64_t n_blocks, const KvLayout& layout) {
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
  return Status::Ok();
}

Result<KvCache> KvCache::Create(int64_t n_layers, int64_t n_blocks, const KvLayout& layout) {
  return Create(n_blocks, layout, std::vector<Backend*>(static_cast<size_t>(std::max<int64_t>(n_layers, 0)), nullptr));
}

Result<KvCache> KvCache::Create(int64_t n_blocks, const KvLayout& layout, const std::vector<Backend*>& layer_backends,
                                const std::vector<std::string>& device_names) {
  const int64_t n_layers = static_cast<int64_t>(layer_backends.size());
  FORMIGA_RETURN_IF_ERROR(CheckLayout(n_layers, n_blocks, layout));
  KvCache cache;
  cache.n_blocks_ = n_blocks;
  cache.layout_ = layout;
  const uint64_t per_layer = cache.LayerBytes();
  bool any_device = false;
  for (Backend* be : layer_backends) any_device |= be != nullptr && !be->IsHost();
  try {
    cache.k_.resize(static_cast<size_t>(n_layers));
    cache.v_.resize(static_cast<size_t>(n_layers));
    if (any_device) {
      cache.dev_k_.resize(static_cast<size_t>(n_layers));
      cache.dev_v_.resize(static_cast<size_t>(n_layers));
    }
    for (int64_t il = 0; il < n_layers; ++il) {
      Backend* be = layer_backends[static_cast<size_t>(il)];
      if (be == nullptr || be->IsHost()) {
        cache.k_[il].resize(per_layer);
        cache.v_[il].resize(per_layer);
        continue;
      }
      Result<BackendBuffer> k = BackendBuffer::Allocate(*be, per_layer);
      Result<BackendBuffer> v = k.ok() ? BackendBuffer::Allocate(*be, per_layer) : Result<BackendBuffer>(k.status());
      if (!v.ok()) {
        const std::string dev = static_cast<size_t>(il) < device_names.size() ? device_names[il] : be->name();
        return Status::ResourceExhausted(
            "the KV cache of layer " + std::to_string(il) + " (" + std::to_string(2 * per_layer / (1 << 20)) +
            " MiB) does not fit on " + dev + " (" + v.status().message() +
            "): use a shorter context (--ctx), --kv-type q8_0, or fewer layers on " + dev +
            " (--gpu-layers / --device-map; formiga plan -m MODEL shows what fits)");
      }
      cache.dev_k_[il] = std::move(*k);
      cache.dev_v_[il] = std::move(*v);
    }
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("KV cache of " + std::to_string(per_layer * 2 * n_layers / (1 << 20)) +
                                     " MiB could not be allocated: use a shorter context (--ctx)");
  }
  return cache;
}

}  // namespace formiga
