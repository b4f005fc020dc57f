#include "model/pack_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "formats/gguf.h"

namespace formiga {
namespace {

constexpr char kMagic[8] = {'F', 'G', 'A', 'P', 'A', 'C', 'K', '1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kFormatBytes = 48;
constexpr uint64_t kAlign = 4096;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t n_entries;
  uint64_t src_size, src_mtime_ns, src_ino, src_dev;
  char format[kFormatBytes];
};
struct EntryRecord {
  uint64_t src_offset, src_bytes, packed_bytes, data_offset;
};

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t AlignUp(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

Status WriteAll(int fd, const void* data, size_t bytes, uint64_t offset, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (bytes > 0) {
    const ssize_t n = pwrite(fd, p, std::min<size_t>(bytes, size_t{1} << 30), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::IOError(path + ": write failed: " + std::strerror(n < 0 ? errno : ENOSPC));
    p += n;
    bytes -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

}  // namespace

std::string PackCache::DefaultDir() {
  const char* env = std::getenv("FORMIGA_PACK_CACHE");
  if (env != nullptr && *env != '\0') return std::string(env) == "0" ? std::string() : std::string(env);
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && *xdg != '\0') return std::string(xdg) + "/formiga/packed";
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return std::string(home) + "/.cache/formiga/packed";
  return "";
}

PackCache PackCache::Open(const GgufFile& file, const std::string& format, const std::string& dir) {
  PackCache c;
  const MappedFile& map = file.mapping();
  if (dir.empty() || format.empty() || format.size() >= kFormatBytes || map.data() == nullptr) return c;
  char real[PATH_MAX];
  struct stat st {};
  if (realpath(file.path().c_str(), real) == nullptr || stat(real, &st) != 0 ||
      static_cast<uint64_t>(st.st_size) != map.size()) {
    return c;
  }
  char name[32];
  std::snprintf(name, sizeof(name), "%016llx.fpk",
                static_cast<unsigned long long>(Fnv1a(std::string(real) + "|" + format)));
  c.path_ = dir + "/" + name;
  c.format_ = format;
  c.src_base_ = map.data();
  c.src_size_ = map.size();
  c.src_mtime_ns_ = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull + static_cast<uint64_t>(st.st_mtim.tv_nsec);
  c.src_ino_ = st.st_ino;
  c.src_dev_ = st.st_dev;

  Result<MappedFile> cached = MappedFile::Open(c.path_);
  if (!cached.ok() || cached->size() < sizeof(Header)) return c;
  Header h;
  std::memcpy(&h, cached->data(), sizeof(h));
  char want_format[kFormatBytes] = {};
  std::memcpy(want_format, format.data(), format.size());
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0 || h.version != kVersion || h.src_size != c.src_size_ ||
      h.src_mtime_ns != c.src_mtime_ns_ || h.src_ino != c.src_ino_ || h.src_dev != c.src_dev_ ||
      std::memcmp(h.format, want_format, kFormatBytes) != 0 ||
      cached->size() < sizeof(Header) + uint64_t{h.n_entries} * sizeof(EntryRecord)) {
    return c;  // stale or foreign: rewritten after this load
  }
  std::map<uint64_t, Entry> entries;
  for (uint32_t i = 0; i < h.n_entries; ++i) {
    EntryRecord e;
    std::memcpy(&e, cached->data() + sizeof(Header) + i * sizeof(EntryRecord), sizeof(e));
    if (e.data_offset % kAlign != 0 || e.data_offset > cached->size() || e.packed_bytes > cached->size() - e.data_offset ||
        e.src_offset > c.src_size_ || e.src_bytes > c.src_size_ - e.src_offset) {
      return c;  // damaged: ignored, rewritten
    }
    entries[e.src_offset] = Entry{e.src_bytes, e.packed_bytes, cached->data() + e.data_offset};
  }
  c.mapped_ = std::move(*cached);
  c.entries_ = std::move(entries);
  return c;
}

const void* PackCache::Find(const void* src, size_t src_bytes, size_t packed_bytes) {
  if (!active()) return nullptr;
  const auto* p = static_cast<const uint8_t*>(src);
  if (p < src_base_ || p + src_bytes > src_base_ + src_size_) return nullptr;
  const auto it = entries_.find(static_cast<uint64_t>(p - src_base_));
  if (it == entries_.end() || it->second.src_bytes != src_bytes || it->second.packed_bytes != packed_bytes ||
      mapped_.data() == nullptr) {
    return nullptr;
  }
  found_bytes_ += packed_bytes;
  return it->second.data;
}

void PackCache::Add(const void* src, size_t src_bytes, const void* packed, size_t packed_bytes) {
  if (!active()) return;
  const auto* p = static_cast<const uint8_t*>(src);
  if (p < src_base_ || p + src_bytes > src_base_ + src_size_) return;
  entries_[static_cast<uint64_t>(p - src_base_)] = Entry{src_bytes, packed_bytes, packed};
  added_ = true;
}

Status PackCache::Write() {
  if (!active() || !added_) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  const std::string tmp = path_ + ".tmp." + std::to_string(getpid());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError(tmp + ": cannot create the packed-weight cache: " + std::strerror(errno));
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.n_entries = static_cast<uint32_t>(entries_.size());
  h.src_size = src_size_;
  h.src_mtime_ns = src_mtime_ns_;
  h.src_ino = src_ino_;
  h.src_dev = src_dev_;
  std::memcpy(h.format, format_.data(), format_.size());
  std::vector<EntryRecord> records;
  uint64_t at = AlignUp(sizeof(Header) + entries_.size() * sizeof(EntryRecord));
  for (const auto& [offset, e] : entries_) {
    records.push_back({offset, e.src_bytes, e.packed_bytes, at});
    at = AlignUp(at + e.packed_bytes);
  }
  Status st = WriteAll(fd, &h, sizeof(h), 0, tmp);
  if (st.ok()) st = WriteAll(fd, records.data(), records.size() * sizeof(EntryRecord), sizeof(h), tmp);
  size_t i = 0;
  for (const auto& [offset, e] : entries_) {
    if (!st.ok()) break;
    st = WriteAll(fd, e.data, e.packed_bytes, records[i++].data_offset, tmp);
  }
  if (st.ok() && ftruncate(fd, static_cast<off_t>(at)) != 0) st = Status::IOError(tmp + ": " + std::strerror(errno));
  ::close(fd);
  if (st.ok() && std::rename(tmp.c_str(), path_.c_str()) != 0) {
    st = Status::IOError(path_ + ": cannot rename the packed-weight cache into place: " + std::strerror(errno));
  }
  if (!st.ok()) std::remove(tmp.c_str());
  return st;
}

}  // namespace formiga
