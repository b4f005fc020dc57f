// Byte sizes as users write them ("256GiB", "6 GB", "512M", "1.5T") and as
// the planner prints them.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace formiga::planner {

// "24GiB" = 24 * 2^30, "24GB" = 24e9, "24G" = 24 * 2^30 (as HF accelerate's
// max_memory and most tools read a bare G), plain digits = bytes.
Result<uint64_t> ParseBytes(std::string_view text);

// "1.23 GiB", "512.0 MiB", "900 B".
std::string FormatBytes(uint64_t bytes);
// Decimal gigabytes with 2 decimals ("13.48 GB") for comparisons with published figures.
std::string FormatGB(uint64_t bytes);

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kMiB = 1ull << 20;

}  // namespace formiga::planner
