// API-key check of `formiga serve` (Authorization: Bearer KEY).
#pragma once

#include <string>
#include <vector>

namespace formiga::server {

// Constant-time comparison of `presented` against every key (no early exit
// on the first differing byte or the first matching key).
bool ApiKeyMatches(const std::string& presented, const std::vector<std::string>& keys);

}  // namespace formiga::server
