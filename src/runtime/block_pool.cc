#include "runtime/block_pool.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace formiga {

BlockPool::BlockPool(int32_t n_blocks, int32_t block_size)
    : block_size_(block_size), blocks_(static_cast<size_t>(n_blocks > 0 ? n_blocks : 0)) {
  for (int32_t b = 0; b < num_blocks(); ++b) {
    free_.push_back(b);
    blocks_[b].free_it = std::prev(free_.end());
  }
}

std::optional<int32_t> BlockPool::Allocate() {
  if (free_.empty()) return std::nullopt;
  const int32_t b = free_.front();
  free_.pop_front();
  Uncache(b);
  blocks_[b].refs = 1;
  return b;
}

void BlockPool::Retain(int32_t block) {
  assert(blocks_[block].refs > 0);
  ++blocks_[block].refs;
}

void BlockPool::Release(int32_t block) {
  Block& b = blocks_[block];
  assert(b.refs > 0);
  if (--b.refs == 0) {
    free_.push_back(block);
    b.free_it = std::prev(free_.end());
  }
}

uint64_t BlockPool::HashBlock(uint64_t parent_hash, std::span<const int32_t> tokens) {
  // FNV-1a over the parent hash and the token bytes, then a final avalanche
  // (splitmix64) so that nearby prefixes spread over the table.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ull;
    }
  };
  mix(&parent_hash, sizeof parent_hash);
  mix(tokens.data(), tokens.size_bytes());
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

void BlockPool::Register(int32_t block, uint64_t hash, std::span<const int32_t> tokens) {
  if (by_hash_.count(hash) != 0) return;
  Block& b = blocks_[block];
  Uncache(block);
  b.cached = true;
  b.hash = hash;
  b.tokens.assign(tokens.begin(), tokens.end());
  by_hash_[hash] = block;
}

std::optional<int32_t> BlockPool::Lookup(uint64_t hash, std::span<const int32_t> tokens) {
  ++lookups_;
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) return std::nullopt;
  const int32_t block = it->second;
  Block& b = blocks_[block];
  // NOTE: a 64-bit hash collision would silently share the wrong KV; the
  // stored tokens make that impossible for this block (the parent chain is
  // covered by the hash).
  if (b.tokens.size() != tokens.size() ||
      !std::equal(tokens.begin(), tokens.end(), b.tokens.begin())) {
    return std::nullopt;
  }
  if (b.refs == 0) free_.erase(b.free_it);
  ++b.refs;
  ++hits_;
  return block;
}

void BlockPool::Uncache(int32_t block) {
  Block& b = blocks_[block];
  if (!b.cached) return;
  by_hash_.erase(b.hash);
  b.cached = false;
  b.tokens.clear();
}

}  // namespace formiga
