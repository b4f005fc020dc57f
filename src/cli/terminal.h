// Terminal helpers shared by the subcommands: human-readable sizes and a
// progress bar on stderr.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace formiga::cli {

// 1536 -> "1.50 KiB"; binary units, the same everywhere formiga prints sizes.
std::string HumanBytes(uint64_t bytes);

// A one-line progress bar on stderr. It draws only when stderr is a terminal
// (logs and CI output stay clean) and only when the shown value changes.
class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  void Update(uint64_t done, uint64_t total, std::string_view detail);
  // Ends the line (if anything was drawn).
  void Finish();

 private:
  std::string label_;
  bool tty_;
  bool drawn_ = false;
  int last_permille_ = -1;
};

}  // namespace formiga::cli
