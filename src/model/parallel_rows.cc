#include "model/parallel_rows.h"

#include <thread>
#include <vector>

namespace formiga {

Status RunRowsInParallel(int64_t n_rows, int n_workers, const std::function<Status(int64_t, int64_t)>& work) {
  if (n_workers <= 1) return work(0, n_rows);
  std::vector<Status> results(static_cast<size_t>(n_workers));
  std::vector<std::thread> pool;
  for (int w = 0; w < n_workers; ++w) {
    const int64_t r0 = n_rows * w / n_workers, r1 = n_rows * (w + 1) / n_workers;
    pool.emplace_back([&, w, r0, r1] { results[static_cast<size_t>(w)] = work(r0, r1); });
  }
  for (std::thread& t : pool) t.join();
  for (const Status& st : results) FORMIGA_RETURN_IF_ERROR(st);
  return Status::Ok();
}

}  // namespace formiga
