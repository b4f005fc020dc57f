// tokenizer_internal::Vocab: token texts in one buffer and a text -> id hash.
#include <functional>
#include <limits>

#include "tokenizer/tokenizer_impl.h"

namespace formiga {
namespace tokenizer_internal {

namespace {

size_t HashText(std::string_view s) { return std::hash<std::string_view>{}(s); }

}  // namespace

Status Vocab::Build(const std::vector<std::string>& tokens) {
  size_t total = 0;
  for (const std::string& t : tokens) total += t.size();
  if (total > std::numeric_limits<uint32_t>::max()) {
    return Status::OutOfRange("tokenizer: the token texts exceed 4 GiB");
  }
  chars_.clear();
  chars_.reserve(total);
  ends_.clear();
  ends_.reserve(tokens.size());
  for (const std::string& t : tokens) {
    chars_ += t;
    ends_.push_back(static_cast<uint32_t>(chars_.size()));
  }
  // Load factor at most 1/2: linear probing then takes ~1.5 probes for a hit
  // and ~2.5 for a miss.
  size_t cap = 16;
  while (cap < 2 * tokens.size()) cap *= 2;
  slots_.assign(cap, -1);
  const size_t mask = cap - 1;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string_view text = Text(id);
    for (size_t h = HashText(text) & mask;; h = (h + 1) & mask) {
      if (slots_[h] < 0) {
        slots_[h] = static_cast<int32_t>(id);
        break;
      }
      if (Text(static_cast<size_t>(slots_[h])) == text) break;  // duplicate: the first id wins
    }
  }
  return Status::Ok();
}

int32_t Vocab::Find(std::string_view text) const {
  if (slots_.empty()) return -1;
  const size_t mask = slots_.size() - 1;
  for (size_t h = HashText(text) & mask;; h = (h + 1) & mask) {
    const int32_t id = slots_[h];
    if (id < 0) return -1;
    if (Text(static_cast<size_t>(id)) == text) return id;
  }
}

}  // namespace tokenizer_internal
}  // namespace formiga
