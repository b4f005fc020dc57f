// PackCache: packed weights (Backend::PackWeight) kept on disk between
// loads, so that packing is paid once per model file and not at every start.
//
// Packing copies the weights into the host backend's layout (cpu: 16-row
// groups, kernels/cpu_pack.h). Done in memory at each load it costs the
// fresh pages' zeroing plus the copy: 1.4-2.4 s for a 3.6 GB 7B Q4_K_M on the
// 2-core dev VM, against 0.2 s to first token from the mapped rows. The
// first load of a file therefore also writes what it packed to
//   <dir>/<hash of the GGUF's real path and the format>.fpk
// and later loads map that file (read-only, 2 MB-aligned, as the GGUF):
// no copy, pages shared through the page cache, DESIGN.md decision 4 kept
// for the packed bytes too. It costs disk: about the packed tensors' size.
//
// <dir>: FORMIGA_PACK_CACHE (a directory; "0" turns the cache off), else
// $XDG_CACHE_HOME/formiga/packed, else ~/.cache/formiga/packed. The cache
// is best effort: a missing, stale (the GGUF's size, mtime, inode or device
// changed), foreign (another format) or damaged file is ignored and
// rewritten; an unwritable directory only means packing in memory again.
//
// File: header {magic "FGAPACK1", u32 version, u32 n_entries, u64 GGUF
// size, mtime (ns), inode, device, char format[48]}, then n_entries
// {u64 src_offset, src_bytes, packed_bytes, data_offset}, then the data,
// each entry 4 KiB-aligned. Written under a temporary name and renamed, so
// a reader never sees a torn file.
//
// Thread safety: none (one model load). Ownership: Find's pointers live as
// long as the PackCache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "core/mapped_file.h"
#include "core/status.h"

namespace formiga {

class GgufFile;

class PackCache {
 public:
  PackCache() = default;  // inactive

  // The directory the cache lives in ("" = off), from the environment.
  static std::string DefaultDir();

  // The cache of `file` for packing format `format` in `dir`: inactive when
  // dir or format is empty or the file is not mapped from a path that
  // exists. An existing, valid cache file is mapped.
  static PackCache Open(const GgufFile& file, const std::string& format, const std::string& dir);

  bool active() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

  // The cached packed bytes (packed_bytes of them) of the tensor whose rows
  // are src_bytes at `src` (inside the GGUF's mapping), or null.
  const void* Find(const void* src, size_t src_bytes, size_t packed_bytes);
  // A tensor this load packed (`packed` stays valid until Write).
  void Add(const void* src, size_t src_bytes, const void* packed, size_t packed_bytes);
  // Bytes found in the cache file so far.
  uint64_t found_bytes() const { return found_bytes_; }

  // Writes the cache file if this load packed anything not in it: every
  // tensor found or added. A no-op when inactive or nothing is new.
  Status Write();

 private:
  struct Entry {
    size_t src_bytes = 0, packed_bytes = 0;
    const void* data = nullptr;  // in the mapping or the caller's memory
  };
  std::string path_, format_;
  const uint8_t* src_base_ = nullptr;
  uint64_t src_size_ = 0, src_mtime_ns_ = 0, src_ino_ = 0, src_dev_ = 0;
  MappedFile mapped_;
  std::map<uint64_t, Entry> entries_;  // by offset in the GGUF
  bool added_ = false;
  uint64_t found_bytes_ = 0;
};

}  // namespace formiga
