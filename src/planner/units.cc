#include "planner/units.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace formiga::planner {

Result<uint64_t> ParseBytes(std::string_view text) {
  std::string s;
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) s += c;
  }
  const std::string bad = "'" + std::string(text) + "' is not a size (write e.g. 24GiB, 16GB, 512MiB or a byte count)";
  if (s.empty()) return Status::InvalidArgument(bad);
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return Status::InvalidArgument(bad);
  char* end = nullptr;
  const std::string num = s.substr(0, i);
  const double value = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size() || !(value >= 0)) return Status::InvalidArgument(bad);
  std::string unit;
  for (char c : s.substr(i)) unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kib") mult = 1024.0;
  else if (unit == "kb") mult = 1e3;
  else if (unit == "m" || unit == "mib") mult = 1024.0 * 1024;
  else if (unit == "mb") mult = 1e6;
  else if (unit == "g" || unit == "gib") mult = 1024.0 * 1024 * 1024;
  else if (unit == "gb") mult = 1e9;
  else if (unit == "t" || unit == "tib") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "tb") mult = 1e12;
  else return Status::InvalidArgument(bad);
  return static_cast<uint64_t>(std::llround(value * mult));
}

std::string FormatBytes(uint64_t bytes) {
  char buf[64];
  const double b = static_cast<double>(bytes);
  if (bytes >= kGiB) std::snprintf(buf, sizeof buf, "%.2f GiB", b / static_cast<double>(kGiB));
  else if (bytes >= kMiB) std::snprintf(buf, sizeof buf, "%.1f MiB", b / static_cast<double>(kMiB));
  else if (bytes >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

std::string FormatGB(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

}  // namespace formiga::planner
