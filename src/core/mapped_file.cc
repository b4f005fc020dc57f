#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <utility>
#include <vector>

namespace formiga {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// The file mapped read-only at a 2 MB-aligned address (files of 2 MB or
// more), so that the kernel can map 2 MB page cache folios with PMD entries:
// decode streams every weight once per token, and with 4 KB entries the
// TLB misses cost 5-17 % of decode speed on the 2-core Zen 5 (session 10,
// docs/kernels.md "Huge pages"). MAP_FAILED on error (errno set).
// fd < 0: anonymous read-write memory (HostPages) instead.
void* MapAligned(int fd, size_t size) {
  const int prot = fd < 0 ? PROT_READ | PROT_WRITE : PROT_READ;
  const int flags = fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED;
  if (size < kHugePage) return mmap(nullptr, size, prot, flags, fd, 0);
  void* reserve = mmap(nullptr, size + kHugePage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) return MAP_FAILED;
  const auto base = reinterpret_cast<uintptr_t>(reserve);
  const uintptr_t aligned = (base + kHugePage - 1) & ~(kHugePage - 1);
  void* p = mmap(reinterpret_cast<void*>(aligned), size, prot, flags | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    munmap(reserve, size + kHugePage);
    errno = err;
    return MAP_FAILED;
  }
  // The reservation's slack on both sides goes back.
  if (aligned > base) munmap(reserve, aligned - base);
  const uintptr_t end = aligned + size, reserve_end = base + size + kHugePage;
  const uintptr_t end_page = (end + 4095) & ~uintptr_t{4095};
  if (reserve_end > end_page) munmap(reinterpret_cast<void*>(end_page), reserve_end - end_page);
  return p;
}

}  // namespace

MappedFile::~MappedFile() {
  if (data_ != nullptr && size_ > 0) munmap(const_cast<uint8_t*>(data_), size_);
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr && size_ > 0) munmap(const_cast<uint8_t*>(data_), size_);
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Result<MappedFile> MappedFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = path + ": cannot open: " + std::strerror(err);
    if (err == ENOENT) return Status::NotFound(msg + " (check the path)");
    return Status::IOError(msg);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::IOError(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + ": not a regular file");
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(st.st_size);
  if (file.size_ > 0) {
    void* p = MapAligned(fd, file.size_);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      file.size_ = 0;
      return Status::IOError(path + ": mmap failed: " + std::strerror(err));
    }
    file.data_ = static_cast<const uint8_t*>(p);
    // Page cache pages read in through this mapping come as 2 MB folios
    // where the kernel can (THP, a file system with large folios), which
    // the aligned mapping then maps with one TLB entry each. Harmless (an
    // error, ignored) where it cannot.
    if (file.size_ >= kHugePage) (void)madvise(p, file.size_, MADV_HUGEPAGE);
  }
  ::close(fd);  // the mapping keeps the file alive
  return file;
}

double MappedFile::ResidentFraction() const {
  if (size_ == 0) return 1.0;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t pages = (size_ + page - 1) / page;
  std::vector<unsigned char> vec(pages);
  if (mincore(const_cast<uint8_t*>(data_), size_, vec.data()) != 0) return 0.0;
  size_t resident = 0;
  for (unsigned char v : vec) resident += v & 1;
  return static_cast<double>(resident) / static_cast<double>(pages);
}

void MappedFile::Prefetch(const std::function<void(size_t, size_t)>& progress, bool read_ahead) const {
  if (size_ == 0) return;
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  constexpr size_t kChunk = size_t{32} << 20;
  volatile uint8_t sink = 0;
  for (size_t off = 0; off < size_; off += kChunk) {
    const size_t len = std::min(kChunk, size_ - off);
    // Ask the kernel to read the chunk ahead (one large sequential I/O), then
    // touch one byte per page so that it is in before we report progress.
    // NOTE: without read_ahead the faults read the file in, 2 MB folios at a
    // time where the kernel can (MADV_HUGEPAGE); MADV_WILLNEED would fill
    // the page cache with small folios first.
    if (read_ahead) madvise(const_cast<uint8_t*>(data_) + off, len, MADV_WILLNEED);
    for (size_t p = 0; p < len; p += page) sink = sink ^ data_[off + p];
    if (progress) progress(off + len, size_);
  }
  (void)sink;
}

double MappedFile::HugeMappedFraction(int samples) const {
  if (size_ < kHugePage || samples <= 0) return 0.0;
  // Touch one byte in `samples` whole 2 MB pages spread over the file (each
  // fault maps a whole huge folio with one PMD entry, or small pages).
  const size_t n_huge = size_ / kHugePage;
  const size_t n = std::min<size_t>(static_cast<size_t>(samples), n_huge);
  volatile uint8_t sink = 0;
  for (size_t i = 0; i < n; ++i) sink = sink ^ data_[(i * n_huge / n) * kHugePage];
  (void)sink;
  // The mapping's FilePmdMapped in /proc/self/smaps: bytes mapped by PMDs.
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return 0.0;
  char line[512];
  bool in_vma = false;
  size_t pmd_kb = 0;
  const auto start = reinterpret_cast<uintptr_t>(data_);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && std::strchr(line, ':') != nullptr &&
        std::strchr(line, '-') < std::strchr(line, ' ')) {
      in_vma = lo == start;
      continue;
    }
    unsigned long kb = 0;
    if (in_vma && std::sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) {
      pmd_kb = kb;
      break;
    }
  }
  std::fclose(f);
  return std::min(1.0, static_cast<double>(pmd_kb) * 1024.0 / static_cast<double>(n * kHugePage));
}

Status MappedFile::DropFromPageCache() const {
  if (size_ == 0) return Status::Ok();
  // Our own mappings first (a mapped page is never dropped), then the
  // file's clean pages (POSIX_FADV_DONTNEED; pages other processes map stay).
  if (madvise(const_cast<uint8_t*>(data_), size_, MADV_DONTNEED) != 0) {
    return Status::IOError(path_ + ": madvise(MADV_DONTNEED) failed: " + std::strerror(errno));
  }
  const int fd = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IOError(path_ + ": cannot reopen: " + std::strerror(errno));
  const int err = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
  if (err != 0) return Status::IOError(path_ + ": posix_fadvise(DONTNEED) failed: " + std::strerror(err));
  return Status::Ok();
}

// ---- HostPages --------------------------------------------------------------

HostPages::~HostPages() {
  if (data_ != nullptr) munmap(data_, size_);
}

HostPages::HostPages(HostPages&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

HostPages& HostPages::operator=(HostPages&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Result<HostPages> HostPages::Allocate(size_t bytes) {
  HostPages h;
  if (bytes == 0) return h;
  void* p = MapAligned(-1, bytes);
  if (p == MAP_FAILED) {
    return Status::ResourceExhausted("cannot allocate " + std::to_string(bytes >> 20) + " MiB of host memory (" +
                                     std::strerror(errno) + "): free memory, or use a smaller model or quant");
  }
  if (bytes >= kHugePage) (void)madvise(p, bytes, MADV_HUGEPAGE);
  h.data_ = p;
  h.size_ = bytes;
  return h;
}

}  // namespace formiga
