#include "formats/npy.h"

#include <cstring>
#include <memory>
#include <regex>

namespace formiga {

NpyWriter::~NpyWriter() {
  if (f_ != nullptr) std::fclose(f_);
}

Result<std::unique_ptr<NpyWriter>> NpyWriter::Create(const std::string& path, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0) return Status::InvalidArgument("npy: bad shape");
  std::unique_ptr<NpyWriter> w(new NpyWriter());
  w->f_ = std::fopen(path.c_str(), "wb");
  if (w->f_ == nullptr) return Status::IOError(path + ": cannot create: " + std::strerror(errno));
  w->path_ = path;
  w->rows_ = rows;
  w->cols_ = cols;
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "), }";
  // magic(6) + version(2) + header length(2) + dict + padding + '\n', total a multiple of 64.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  const uint16_t hlen = static_cast<uint16_t>(dict.size());
  const unsigned char prefix[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                    static_cast<unsigned char>(hlen & 0xff), static_cast<unsigned char>(hlen >> 8)};
  if (std::fwrite(prefix, 1, 10, w->f_) != 10 || std::fwrite(dict.data(), 1, dict.size(), w->f_) != dict.size()) {
    return Status::IOError(path + ": write failed");
  }
  return w;
}

Status NpyWriter::AppendRow(const float* row) {
  if (written_ >= rows_) return Status::OutOfRange(path_ + ": more rows than declared");
  if (std::fwrite(row, sizeof(float), static_cast<size_t>(cols_), f_) != static_cast<size_t>(cols_)) {
    return Status::IOError(path_ + ": write failed (disk full?)");
  }
  ++written_;
  return Status::Ok();
}

Status NpyWriter::Close() {
  if (written_ != rows_) {
    return Status::Internal(path_ + ": " + std::to_string(written_) + " of " + std::to_string(rows_) + " rows written");
  }
  const bool ok = std::fclose(f_) == 0;
  f_ = nullptr;
  return ok ? Status::Ok() : Status::IOError(path_ + ": close failed");
}

Result<NpyMatrix> NpyMatrix::Open(const std::string& path) {
  NpyMatrix m;
  FORMIGA_ASSIGN_OR_RETURN(m.file_, MappedFile::Open(path));
  const uint8_t* p = m.file_.data();
  const size_t n = m.file_.size();
  if (n < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0) return Status::Corruption(path + ": not a .npy file");
  size_t hlen = 0, off = 0;
  if (p[6] == 1) {
    hlen = p[8] | (p[9] << 8);
    off = 10;
  } else if ((p[6] == 2 || p[6] == 3) && n >= 12) {
    hlen = p[8] | (p[9] << 8) | (static_cast<size_t>(p[10]) << 16) | (static_cast<size_t>(p[11]) << 24);
    off = 12;
  } else {
    return Status::Unsupported(path + ": .npy version " + std::to_string(p[6]));
  }
  if (off + hlen > n) return Status::Corruption(path + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(p + off), hlen);
  std::smatch mt;
  if (!std::regex_search(header, mt, std::regex(R"('descr'\s*:\s*'([^']*)')")) || mt[1] != "<f4") {
    return Status::Unsupported(path + ": only little-endian float32 (<f4) arrays are read");
  }
  if (std::regex_search(header, mt, std::regex(R"('fortran_order'\s*:\s*True)"))) {
    return Status::Unsupported(path + ": Fortran-order arrays are not read");
  }
  if (!std::regex_search(header, mt, std::regex(R"('shape'\s*:\s*\(\s*(\d+)\s*,\s*(\d+)\s*\))"))) {
    return Status::Unsupported(path + ": only 2-D arrays are read");
  }
  m.rows_ = std::stoll(mt[1]);
  m.cols_ = std::stoll(mt[2]);
  const size_t data_off = off + hlen;
  const uint64_t need = static_cast<uint64_t>(m.rows_) * static_cast<uint64_t>(m.cols_) * 4;
  if (m.cols_ <= 0 || data_off + need > n) return Status::Corruption(path + ": data shorter than its shape says");
  if (data_off % 4 != 0) return Status::Corruption(path + ": misaligned data");
  m.data_ = reinterpret_cast<const float*>(p + data_off);
  return m;
}

}  // namespace formiga
