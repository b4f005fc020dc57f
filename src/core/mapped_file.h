// MappedFile: a read-only memory mapping of a whole file.
//
// Weights stay where they are (DESIGN.md decision 4): model files are mapped,
// never copied; tensors are views into the mapping. The mapping is 2 MB
// aligned and asks for huge pages (MADV_HUGEPAGE), so page cache folios of
// 2 MB are mapped with one TLB entry each (see HugeMappedFraction).
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
  // can show a progress bar while it loads. read_ahead: ask the kernel for
  // each chunk first (MADV_WILLNEED: large I/Os, but small page cache
  // folios); without it the page faults read the file, in 2 MB folios where
  // the kernel supports them (the mapping is 2 MB-aligned, MADV_HUGEPAGE).
  void Prefetch(const std::function<void(size_t done, size_t total)>& progress = nullptr,
                bool read_ahead = true) const;
  // Fraction (0..1) of `samples` 2 MB pages spread over the file that this
  // mapping maps with one 2 MB entry each (touches them: reads them in if
  // they are not cached). 0 for files under 2 MB, or where /proc/self/smaps
  // cannot say.
  double HugeMappedFraction(int samples = 16) const;
  // Unmaps this mapping's pages and drops the file's clean pages from the
  // page cache (those no other process maps), so that the next touches read
  // the file again (in 2 MB folios where the kernel can). The contents seen
  // through data() do not change.
  Status DropFromPageCache() const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Anonymous host memory (read-write, zero-filled), 2 MB-aligned and advised
// into 2 MB pages (MADV_HUGEPAGE) when it is at least that big: what the
// CPU backend's packed weights live in (Backend::PackWeight), streamed every
// token like the mapped file. Move-only; unmapped on destruction.
class HostPages {
 public:
  HostPages() = default;
  ~HostPages();
  HostPages(HostPages&& other) noexcept;
  HostPages& operator=(HostPages&& other) noexcept;
  HostPages(const HostPages&) = delete;
  HostPages& operator=(const HostPages&) = delete;

  // ResourceExhausted (with the size) when the memory is not there.
  static Result<HostPages> Allocate(size_t bytes);

  void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace formiga

