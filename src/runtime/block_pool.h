// BlockPool: the fixed-size blocks of the paged KV cache, with reference
// counts and prefix caching (DESIGN.md decision 2).
//
// A block holds the K/V of `block_size` consecutive positions of one sequence.
// A full block can be registered under a hash of its whole token prefix; a
// later request whose prompt starts with the same tokens looks the hash up
// and shares the block instead of recomputing it. Blocks whose reference
// count drops to 0 go to the free queue but keep their cached content until
// they are reused, least recently released first (LRU eviction).
//
// NOTE: the pool only does bookkeeping (ids, counts, hashes); the memory the
// ids index is owned by the KV cache of each backend. The scheduler sees only
// "blocks free / blocks needed".
//
// Thread safety: not thread-safe; the engine loop owns the pool.
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace formiga {

class BlockPool {
 public:
  // REQUIRES: n_blocks > 0, block_size > 0.
  BlockPool(int32_t n_blocks, int32_t block_size);

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t block_size() const { return block_size_; }
  // Blocks that Allocate() can hand out now (free, cached or not).
  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t ref_count(int32_t block) const { return blocks_[block].refs; }

  // A block with reference count 1 and no cached content, or nullopt when
  // every block is in use. Evicts the least recently released cached block.
  std::optional<int32_t> Allocate();
  // REQUIRES: ref_count(block) > 0.
  void Retain(int32_t block);
  // Drops one reference; at 0 the block becomes reusable (keeping its cache
  // entry until it is actually reused). REQUIRES: ref_count(block) > 0.
  void Release(int32_t block);

  // Hash of a full block: its tokens chained to the hash of the blocks before
  // it (0 for the first block), so equal hashes mean equal whole prefixes.
  static uint64_t HashBlock(uint64_t parent_hash, std::span<const int32_t> tokens);

  // Marks a full block as holding the prefix `hash` (tokens kept to verify
  // lookups). A hash already registered to another block is left alone.
  void Register(int32_t block, uint64_t hash, std::span<const int32_t> tokens);
  // The block caching `hash` with exactly `tokens`, retained for the caller
  // (revived from the free queue if it had no users), or nullopt.
  std::optional<int32_t> Lookup(uint64_t hash, std::span<const int32_t> tokens);

  // Prefix-cache statistics (for /metrics): lookups and hits since creation.
  uint64_t lookups() const { return lookups_; }
  uint64_t hits() const { return hits_; }

 private:
  struct Block {
    int32_t refs = 0;
    bool cached = false;
    uint64_t hash = 0;
    std::vector<int32_t> tokens;         // the block's tokens when cached
    std::list<int32_t>::iterator free_it;  // valid when refs == 0
  };

  void Uncache(int32_t block);

  int32_t block_size_;
  std::vector<Block> blocks_;
  std::list<int32_t> free_;  // front = next to reuse (least recently released)
  std::unordered_map<uint64_t, int32_t> by_hash_;
  uint64_t lookups_ = 0;
  uint64_t hits_ = 0;
};

}  // namespace formiga
