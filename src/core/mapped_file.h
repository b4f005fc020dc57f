// MappedFile: a read-only memory mapping of a whole file.
//
// Weights stay where they are (DESIGN.md decision 4): model files are mapped,
// never copied; tensors are views into the mapping.
//
// Thread safety: the mapping is immutable; concurrent reads are safe.
// Ownership: move-only; the mapping lives until the object is destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"

namespace formiga {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps `path` read-only. An empty file gives a valid object with size() 0.
  static Result<MappedFile> Open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Fraction (0..1) of the file's pages that are in the page cache now.
  double ResidentFraction() const;
  // Reads every page of the file into the page cache, sequentially, calling
  // `progress(bytes_done, bytes_total)` after each chunk: the first forward
  // pass then does not stall on random disk reads, and a large cold model
  // can show a progress bar while it loads.
  void Prefetch(const std::function<void(size_t done, size_t total)>& progress = nullptr) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace formiga
