#include "server/auth.h"

#include <algorithm>

namespace formiga::server {

bool ApiKeyMatches(const std::string& presented, const std::vector<std::string>& keys) {
  unsigned match = 0;
  for (const std::string& key : keys) {
    // NOTE: compare over the longer length so that timing reveals neither
    // the key's content nor where the first difference is.
    const size_t n = std::max(key.size(), presented.size());
    unsigned diff = static_cast<unsigned>(key.size() ^ presented.size());
    for (size_t i = 0; i < n; ++i) {
      const unsigned char a = i < key.size() ? static_cast<unsigned char>(key[i]) : 0;
      const unsigned char b = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
      diff |= static_cast<unsigned>(a ^ b);
    }
    match |= static_cast<unsigned>(diff == 0);
  }
  return match != 0;
}

}  // namespace formiga::server
