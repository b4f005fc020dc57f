// Resident memory of this process (Linux /proc/self/status), for --verbose
// reports and for checking the planner's predictions against reality.
#pragma once

#include <cstdint>

namespace formiga {

struct ProcessMemory {
  uint64_t rss_bytes = 0;       // VmRSS: resident now
  uint64_t peak_rss_bytes = 0;  // VmHWM: resident high-water mark
};

// Zeros when /proc is unavailable.
ProcessMemory ReadProcessMemory();

}  // namespace formiga
