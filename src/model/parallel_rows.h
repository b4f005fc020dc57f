// Splitting a tensor's rows over short-lived worker threads, for the
// file-writing pipelines (quantize, convert, synth): each worker gets one
// contiguous range, and the first error in row order is returned.
#pragma once

#include <cstdint>
#include <functional>

#include "core/status.h"

namespace formiga {

// Calls work(r0, r1) over [0, n_rows) split into `n_workers` contiguous
// ranges, one thread each (inline when n_workers <= 1).
Status RunRowsInParallel(int64_t n_rows, int n_workers, const std::function<Status(int64_t, int64_t)>& work);

}  // namespace formiga
