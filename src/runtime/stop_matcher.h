// StopMatcher: finds stop strings in streamed text without ever emitting the
// part of a stop string that arrives split over several tokens.
//
// Text is pushed as it is detokenized; Push returns what may be shown now.
// The longest tail that could still grow into a stop string is held back;
// once a stop string appears, everything before it is released and the
// matcher reports it stopped. Flush releases the held tail at the end.
//
// Thread safety: one per sequence.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace formiga {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Returns the text safe to emit. After a match, stopped() is true and
  // later pushes return "".
  std::string Push(std::string_view text);
  std::string Flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace formiga
