#include "cli/terminal.h"

#include <unistd.h>

#include <cstdio>

namespace formiga::cli {

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

ProgressBar::ProgressBar(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Update(uint64_t done, uint64_t total, std::string_view detail) {
  if (!tty_) return;
  const int permille = total ? static_cast<int>(1000.0 * static_cast<double>(done) / static_cast<double>(total)) : 1000;
  if (permille == last_permille_) return;
  last_permille_ = permille;
  const int width = 30, filled = permille * width / 1000;
  std::fprintf(stderr, "\r%s [%-*s] %5.1f%% %-40.40s", label_.c_str(), width, std::string(filled, '#').c_str(),
               permille / 10.0, std::string(detail).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace formiga::cli
