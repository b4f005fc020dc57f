// ThreadPool: every task runs exactly once, on a valid thread index, for any
// pool size and task count; back-to-back jobs (the decode pattern) and pools
// idle long enough to block all keep working.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <vector>

namespace formiga {
namespace {

TEST(ThreadPoolTest, EveryTaskRunsOnceOnAValidThread) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.n_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<bool> bad_thread{false};
      pool.Run(n, [&](int64_t task, int thread) {
        if (thread < 0 || thread >= threads) bad_thread = true;
        hits[static_cast<size_t>(task)].fetch_add(1);
      });
      EXPECT_FALSE(bad_thread);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "task " << i;
    }
  }
}

TEST(ThreadPoolTest, ManyBackToBackJobs) {
  ThreadPool pool(3);
  std::vector<int64_t> out(37);
  int64_t total = 0;
  for (int job = 0; job < 2000; ++job) {
    pool.Run(37, [&](int64_t task, int) { out[static_cast<size_t>(task)] = task + job; });
    total += std::accumulate(out.begin(), out.end(), int64_t{0});
  }
  int64_t expect = 0;
  for (int job = 0; job < 2000; ++job) expect += 36 * 37 / 2 + 37 * job;
  EXPECT_EQ(total, expect);
}

TEST(ThreadPoolTest, WorksAfterWorkersFallAsleep) {
  ThreadPool pool(2);
  std::atomic<int> count{0};
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin phase
    pool.Run(10, [&](int64_t, int) { count.fetch_add(1); });
  }
  EXPECT_EQ(count.load(), 30);
}

TEST(ThreadPoolTest, DefaultUsesAllHardwareThreads) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.n_threads(), ThreadPool::HardwareThreads());
  EXPECT_GE(pool.n_threads(), 1);
}

}  // namespace
}  // namespace formiga
