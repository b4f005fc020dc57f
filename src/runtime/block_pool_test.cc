#include "runtime/block_pool.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace formiga {
namespace {

TEST(BlockPoolTest, AllocateUntilEmptyThenReuseReleased) {
  BlockPool pool(3, 16);
  std::vector<int32_t> got;
  for (int i = 0; i < 3; ++i) got.push_back(*pool.Allocate());
  EXPECT_EQ(pool.num_free(), 0);
  EXPECT_FALSE(pool.Allocate().has_value());
  pool.Release(got[1]);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(*pool.Allocate(), got[1]);
}

TEST(BlockPoolTest, SharedBlockFreedOnlyByLastUser) {
  BlockPool pool(2, 4);
  int32_t b = *pool.Allocate();
  pool.Retain(b);
  EXPECT_EQ(pool.ref_count(b), 2);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 1);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockPoolTest, PrefixHashesChain) {
  std::vector<int32_t> a = {1, 2, 3, 4}, b = {5, 6, 7, 8};
  uint64_t ha = BlockPool::HashBlock(0, a);
  EXPECT_EQ(ha, BlockPool::HashBlock(0, a));
  EXPECT_NE(BlockPool::HashBlock(ha, b), BlockPool::HashBlock(0, b));  // same tokens, other prefix
  std::vector<int32_t> a2 = {1, 2, 3, 5};
  EXPECT_NE(ha, BlockPool::HashBlock(0, a2));
}

TEST(BlockPoolTest, LookupSharesCachedBlockAndRevivesFreedOne) {
  BlockPool pool(4, 4);
  std::vector<int32_t> toks = {10, 11, 12, 13};
  uint64_t h = BlockPool::HashBlock(0, toks);
  int32_t b = *pool.Allocate();
  pool.Register(b, h, toks);
  // A second request with the same prefix shares it.
  auto hit = pool.Lookup(h, toks);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(*hit, b);
  EXPECT_EQ(pool.ref_count(b), 2);
  pool.Release(b);
  pool.Release(b);
  EXPECT_EQ(pool.num_free(), 4);
  // Freed but still cached: a lookup revives it.
  hit = pool.Lookup(h, toks);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(pool.ref_count(b), 1);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.hits(), 2u);
  // Different tokens under the same hash (a forged collision) never match.
  std::vector<int32_t> other = {10, 11, 12, 99};
  EXPECT_FALSE(pool.Lookup(h, other).has_value());
}

TEST(BlockPoolTest, ReuseEvictsLeastRecentlyReleasedCache) {
  BlockPool pool(2, 2);
  std::vector<int32_t> t1 = {1, 1}, t2 = {2, 2};
  uint64_t h1 = BlockPool::HashBlock(0, t1), h2 = BlockPool::HashBlock(0, t2);
  int32_t b1 = *pool.Allocate(), b2 = *pool.Allocate();
  pool.Register(b1, h1, t1);
  pool.Register(b2, h2, t2);
  pool.Release(b1);  // released first -> evicted first
  pool.Release(b2);
  int32_t fresh = *pool.Allocate();
  EXPECT_EQ(fresh, b1);
  EXPECT_FALSE(pool.Lookup(h1, t1).has_value());
  EXPECT_TRUE(pool.Lookup(h2, t2).has_value());
}

TEST(BlockPoolTest, RandomizedCountsStayConsistent) {
  BlockPool pool(8, 4);
  std::mt19937 rng(7);
  std::vector<int32_t> held;
  for (int step = 0; step < 10000; ++step) {
    if (held.empty() || (rng() % 2 == 0 && pool.num_free() > 0)) {
      held.push_back(*pool.Allocate());
    } else if (rng() % 3 == 0) {
      int32_t b = held[rng() % held.size()];
      pool.Retain(b);
      held.push_back(b);
    } else {
      size_t i = rng() % held.size();
      pool.Release(held[i]);
      held.erase(held.begin() + static_cast<long>(i));
    }
    int32_t in_use = 0;
    for (int32_t b = 0; b < pool.num_blocks(); ++b) in_use += pool.ref_count(b) > 0;
    ASSERT_EQ(in_use + pool.num_free(), pool.num_blocks());
  }
}

}  // namespace
}  // namespace formiga
