#include "formats/gguf_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

namespace formiga {
namespace {

constexpr uint32_t kGgufVersion = 3;
// NOTE: llama.cpp stores tensor names in a 64-byte buffer (GGML_MAX_NAME) and
// rejects longer ones; formiga-written files must load there (DESIGN.md 5).
constexpr size_t kMaxLlamaTensorName = 63;
constexpr size_t kWriteBuffer = 1 << 20;

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// Checks a value before anything is written: item types match the array's
// element type, nesting is bounded, integers fit their declared width.
Status ValidateValue(const std::string& key, const GgufValue& v, int depth) {
  auto bad = [&](const std::string& problem) {
    return Status::InvalidArgument("GGUF metadata key '" + key + "': " + problem);
  };
  if (static_cast<uint32_t>(v.type) > static_cast<uint32_t>(GgufType::kFloat64)) {
    return bad("unknown value type " + std::to_string(static_cast<uint32_t>(v.type)));
  }
  auto fits_u = [&](uint64_t max) { return v.u <= max ? Status::Ok() : bad("value " + std::to_string(v.u) + " does not fit " + GgufTypeName(v.type)); };
  auto fits_i = [&](int64_t min, int64_t max) {
    return v.i >= min && v.i <= max ? Status::Ok() : bad("value " + std::to_string(v.i) + " does not fit " + GgufTypeName(v.type));
  };
  switch (v.type) {
    case GgufType::kUint8: return fits_u(0xff);
    case GgufType::kUint16: return fits_u(0xffff);
    case GgufType::kUint32: return fits_u(0xffffffffu);
    case GgufType::kBool: return fits_u(1);
    case GgufType::kInt8: return fits_i(-128, 127);
    case GgufType::kInt16: return fits_i(-32768, 32767);
    case GgufType::kInt32: return fits_i(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
    case GgufType::kArray: {
      if (depth + 1 >= kGgufMaxNesting) return bad("arrays nested too deeply");
      if (static_cast<uint32_t>(v.elem_type) > static_cast<uint32_t>(GgufType::kFloat64)) {
        return bad("unknown array element type");
      }
      if (v.is_compact()) return Status::Ok();  // items of elem_type that fit (GgufValue::Append)
      for (const GgufValue& item : v.items) {
        if (item.type != v.elem_type) {
          return bad(std::string("array of ") + GgufTypeName(v.elem_type) + " holds an item of type " +
                     GgufTypeName(item.type));
        }
        FORMIGA_RETURN_IF_ERROR(ValidateValue(key, item, depth + 1));
      }
      return Status::Ok();
    }
    default: return Status::Ok();
  }
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {}

GgufWriter::~GgufWriter() { Abort(); }

void GgufWriter::Abort() {
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
  if (began_ && !finished_ && !partial_path_.empty()) {
    ::unlink(partial_path_.c_str());
    partial_path_.clear();
  }
}

Status GgufWriter::Fail(Status st) {
  if (error_.ok()) error_ = st;
  Abort();
  return st;
}

void GgufWriter::Set(std::string key, GgufValue value) {
  value.Own();  // a value read from a file may view its mapping, which may not outlive this writer
  auto it = kv_index_.find(key);
  if (it != kv_index_.end()) {
    kv_[it->second].second = std::move(value);
    return;
  }
  kv_index_.emplace(key, kv_.size());
  kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::SetString(std::string key, std::string v) { Set(std::move(key), GgufValue::String(std::move(v))); }
void GgufWriter::SetUint32(std::string key, uint32_t v) { Set(std::move(key), GgufValue::Uint32(v)); }
void GgufWriter::SetInt32(std::string key, int32_t v) { Set(std::move(key), GgufValue::Int32(v)); }
void GgufWriter::SetUint64(std::string key, uint64_t v) { Set(std::move(key), GgufValue::Uint64(v)); }
void GgufWriter::SetFloat32(std::string key, float v) { Set(std::move(key), GgufValue::Float32(v)); }
void GgufWriter::SetBool(std::string key, bool v) { Set(std::move(key), GgufValue::Bool(v)); }

void GgufWriter::SetStringArray(std::string key, std::vector<std::string> v) {
  GgufValue a = GgufValue::Array(GgufType::kString);
  size_t bytes = 0;
  for (const std::string& s : v) bytes += sizeof(uint64_t) + s.size();
  a.packed.reserve(bytes);
  a.ends.reserve(v.size());
  for (const std::string& s : v) a.AppendString(s);
  Set(std::move(key), std::move(a));
}

void GgufWriter::SetFloat32Array(std::string key, std::vector<float> v) {
  GgufValue a = GgufValue::Array(GgufType::kFloat32);
  a.packed.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  Set(std::move(key), std::move(a));
}

void GgufWriter::SetInt32Array(std::string key, std::vector<int32_t> v) {
  GgufValue a = GgufValue::Array(GgufType::kInt32);
  a.packed.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
  Set(std::move(key), std::move(a));
}

Status GgufWriter::AddTensor(std::string name, std::vector<int64_t> shape, DType type) {
  if (began_) return Status::InvalidArgument("GgufWriter: AddTensor('" + name + "') after Begin()");
  if (name.empty()) return Status::InvalidArgument("GgufWriter: empty tensor name");
  if (name.size() > kMaxLlamaTensorName) {
    return Status::InvalidArgument("GgufWriter: tensor name '" + name + "' is longer than " +
                                   std::to_string(kMaxLlamaTensorName) + " bytes (llama.cpp's limit)");
  }
  if (tensor_index_.count(name) != 0) {
    return Status::InvalidArgument("GgufWriter: duplicate tensor name '" + name + "'");
  }
  const DTypeTraits* traits = FindDTypeTraits(static_cast<uint32_t>(type));
  if (traits == nullptr) {
    return Status::InvalidArgument("GgufWriter: tensor '" + name + "' has an invalid type id " +
                                   std::to_string(static_cast<uint32_t>(type)));
  }
  if (shape.empty() || shape.size() > kGgufMaxDims) {
    return Status::InvalidArgument("GgufWriter: tensor '" + name + "' has " + std::to_string(shape.size()) +
                                   " dimensions (1 to " + std::to_string(kGgufMaxDims) + " allowed)");
  }
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return Status::InvalidArgument("GgufWriter: tensor '" + name + "' has a dimension <= 0");
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n) ||
        n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Status::InvalidArgument("GgufWriter: tensor '" + name + "' element count overflows");
    }
  }
  if (shape[0] % traits->block_size != 0) {
    return Status::InvalidArgument("GgufWriter: tensor '" + name + "' row length " + std::to_string(shape[0]) +
                                   " is not a multiple of " + traits->name + "'s block size " +
                                   std::to_string(traits->block_size));
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(n / static_cast<uint64_t>(traits->block_size),
                             static_cast<uint64_t>(traits->type_size), &nbytes)) {
    return Status::InvalidArgument("GgufWriter: tensor '" + name + "' byte size overflows");
  }
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back(PendingTensor{std::move(name), std::move(shape), type, nbytes, 0});
  return Status::Ok();
}

Status GgufWriter::WriteRaw(const void* data, size_t n) {
  if (n == 0) return Status::Ok();
  if (std::fwrite(data, 1, n, file_) != n) {
    return Fail(Status::IOError(Errno(partial_path_ + ": write failed")));
  }
  pos_ += n;
  return Status::Ok();
}

Status GgufWriter::WritePadding(uint64_t align) {
  static const uint8_t kZeros[256] = {};
  uint64_t pad = (align - pos_ % align) % align;
  while (pad > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(pad, sizeof(kZeros)));
    FORMIGA_RETURN_IF_ERROR(WriteRaw(kZeros, chunk));
    pad -= chunk;
  }
  return Status::Ok();
}

Status GgufWriter::WriteString(std::string_view s) {
  uint64_t len = s.size();
  FORMIGA_RETURN_IF_ERROR(WriteRaw(&len, sizeof(len)));
  return WriteRaw(s.data(), s.size());
}

Status GgufWriter::WriteValue(const GgufValue& v) {
  switch (v.type) {
    case GgufType::kUint8:
    case GgufType::kBool: { uint8_t x = static_cast<uint8_t>(v.u); return WriteRaw(&x, 1); }
    case GgufType::kInt8: { int8_t x = static_cast<int8_t>(v.i); return WriteRaw(&x, 1); }
    case GgufType::kUint16: { uint16_t x = static_cast<uint16_t>(v.u); return WriteRaw(&x, 2); }
    case GgufType::kInt16: { int16_t x = static_cast<int16_t>(v.i); return WriteRaw(&x, 2); }
    case GgufType::kUint32: { uint32_t x = static_cast<uint32_t>(v.u); return WriteRaw(&x, 4); }
    case GgufType::kInt32: { int32_t x = static_cast<int32_t>(v.i); return WriteRaw(&x, 4); }
    case GgufType::kUint64: return WriteRaw(&v.u, 8);
    case GgufType::kInt64: return WriteRaw(&v.i, 8);
    case GgufType::kFloat32: { float x = static_cast<float>(v.f); return WriteRaw(&x, 4); }
    case GgufType::kFloat64: return WriteRaw(&v.f, 8);
    case GgufType::kString: return WriteString(v.str);
    case GgufType::kArray: {
      uint32_t elem = static_cast<uint32_t>(v.elem_type);
      uint64_t count = v.size();
      FORMIGA_RETURN_IF_ERROR(WriteRaw(&elem, 4));
      FORMIGA_RETURN_IF_ERROR(WriteRaw(&count, 8));
      if (!v.is_compact()) {
        for (const GgufValue& item : v.items) FORMIGA_RETURN_IF_ERROR(WriteValue(item));
      } else {
        // The compact form is the items' on-disk bytes.
        FORMIGA_RETURN_IF_ERROR(WriteRaw(v.bytes().data(), v.bytes().size()));
      }
      return Status::Ok();
    }
  }
  return Status::Internal("GgufWriter: unknown value type");
}

Status GgufWriter::Begin(const std::string& path) {
  if (began_) return Status::InvalidArgument("GgufWriter: Begin() called twice");
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1)) != 0) {
    return Status::InvalidArgument("GgufWriter: alignment " + std::to_string(alignment_) +
                                   " is not a nonzero power of two");
  }
  // Validate everything before creating the file.
  auto align_it = kv_index_.find("general.alignment");
  if (align_it != kv_index_.end()) {
    const GgufValue& a = kv_[align_it->second].second;
    Result<int64_t> v = a.AsInt();
    if (!v.ok() || *v != static_cast<int64_t>(alignment_)) {
      return Status::InvalidArgument("GgufWriter: metadata general.alignment disagrees with the writer's alignment " +
                                     std::to_string(alignment_));
    }
  } else if (alignment_ != 32) {
    // NOTE: readers assume 32 without the key, so a different alignment must be stated.
    Set("general.alignment", GgufValue::Uint32(alignment_));
  }
  for (const auto& [key, value] : kv_) {
    if (key.empty() || key.size() > kGgufMaxKeyLength) {
      return Status::InvalidArgument("GgufWriter: metadata key '" + key + "' is empty or too long");
    }
    FORMIGA_RETURN_IF_ERROR(ValidateValue(key, value, 0));
  }
  uint64_t offset = 0;
  for (PendingTensor& t : tensors_) {
    t.offset = offset;
    offset += t.nbytes;
    offset = (offset + alignment_ - 1) / alignment_ * alignment_;
  }
  data_size_ = offset;

  path_ = path;
  partial_path_ = path + ".partial";
  file_ = std::fopen(partial_path_.c_str(), "wb");
  if (file_ == nullptr) {
    Status st = Status::IOError(Errno(partial_path_ + ": cannot create"));
    partial_path_.clear();
    return st;
  }
  began_ = true;
  std::setvbuf(file_, nullptr, _IOFBF, kWriteBuffer);

  const char magic[4] = {'G', 'G', 'U', 'F'};
  uint32_t version = kGgufVersion;
  uint64_t n_tensors = tensors_.size();
  uint64_t n_kv = kv_.size();
  FORMIGA_RETURN_IF_ERROR(WriteRaw(magic, 4));
  FORMIGA_RETURN_IF_ERROR(WriteRaw(&version, 4));
  FORMIGA_RETURN_IF_ERROR(WriteRaw(&n_tensors, 8));
  FORMIGA_RETURN_IF_ERROR(WriteRaw(&n_kv, 8));
  for (const auto& [key, value] : kv_) {
    FORMIGA_RETURN_IF_ERROR(WriteString(key));
    uint32_t type = static_cast<uint32_t>(value.type);
    FORMIGA_RETURN_IF_ERROR(WriteRaw(&type, 4));
    FORMIGA_RETURN_IF_ERROR(WriteValue(value));
  }
  for (const PendingTensor& t : tensors_) {
    FORMIGA_RETURN_IF_ERROR(WriteString(t.name));
    uint32_t n_dims = static_cast<uint32_t>(t.shape.size());
    FORMIGA_RETURN_IF_ERROR(WriteRaw(&n_dims, 4));
    for (int64_t d : t.shape) {
      uint64_t ud = static_cast<uint64_t>(d);
      FORMIGA_RETURN_IF_ERROR(WriteRaw(&ud, 8));
    }
    uint32_t type = static_cast<uint32_t>(t.type);
    FORMIGA_RETURN_IF_ERROR(WriteRaw(&type, 4));
    FORMIGA_RETURN_IF_ERROR(WriteRaw(&t.offset, 8));
  }
  FORMIGA_RETURN_IF_ERROR(WritePadding(alignment_));
  total_size_ = pos_ + data_size_;
  current_ = 0;
  current_done_ = 0;
  return Status::Ok();
}

Status GgufWriter::WriteTensorData(const void* data, size_t nbytes) {
  if (!error_.ok()) return error_;
  if (!began_ || finished_) return Status::InvalidArgument("GgufWriter: WriteTensorData outside Begin()..Finish()");
  if (nbytes == 0) return Status::Ok();
  if (current_ >= tensors_.size()) {
    return Fail(Status::InvalidArgument("GgufWriter: " + std::to_string(nbytes) +
                                        " bytes written after the last tensor was complete"));
  }
  PendingTensor& t = tensors_[current_];
  if (nbytes > t.nbytes - current_done_) {
    return Fail(Status::InvalidArgument("GgufWriter: tensor '" + t.name + "' is " + std::to_string(t.nbytes) +
                                        " bytes; writing " + std::to_string(nbytes) + " more after " +
                                        std::to_string(current_done_) + " would exceed it"));
  }
  FORMIGA_RETURN_IF_ERROR(WriteRaw(data, nbytes));
  current_done_ += nbytes;
  if (current_done_ == t.nbytes) {
    // NOTE: pad after every tensor, the last included, as gguf-py does.
    FORMIGA_RETURN_IF_ERROR(WritePadding(alignment_));
    ++current_;
    current_done_ = 0;
  }
  return Status::Ok();
}

Status GgufWriter::Finish() {
  if (!error_.ok()) return error_;
  if (!began_) return Status::InvalidArgument("GgufWriter: Finish() before Begin()");
  if (finished_) return Status::InvalidArgument("GgufWriter: Finish() called twice");
  if (current_ < tensors_.size()) {
    const PendingTensor& t = tensors_[current_];
    return Fail(Status::InvalidArgument("GgufWriter: tensor '" + t.name + "' has " + std::to_string(current_done_) +
                                        " of its " + std::to_string(t.nbytes) + " bytes written (" +
                                        std::to_string(tensors_.size() - current_) + " tensors incomplete)"));
  }
  if (std::fflush(file_) != 0) return Fail(Status::IOError(Errno(partial_path_ + ": flush failed")));
  if (::fsync(fileno(file_)) != 0) return Fail(Status::IOError(Errno(partial_path_ + ": fsync failed")));
  if (std::fclose(file_) != 0) {
    file_ = nullptr;
    return Fail(Status::IOError(Errno(partial_path_ + ": close failed")));
  }
  file_ = nullptr;
  if (std::rename(partial_path_.c_str(), path_.c_str()) != 0) {
    return Fail(Status::IOError(Errno("cannot rename " + partial_path_ + " to " + path_)));
  }
  finished_ = true;
  // Make the rename itself durable.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace formiga
