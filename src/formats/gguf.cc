#include "formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

namespace formiga {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian u32

// Smallest encoding of a value of each type: used to reject a count before
// allocating anything for it (N items need at least N * min bytes left).
uint64_t MinEncodedSize(GgufType type) {
  if (const size_t width = GgufScalarWidth(type); width != 0) return width;
  return type == GgufType::kString ? 8    // u64 length, empty string
                                   : 12;  // u32 elem type + u64 count, empty array
}

bool IsKnownType(uint32_t raw) { return raw <= static_cast<uint32_t>(GgufType::kFloat64); }

// Sequential little-endian reader over untrusted bytes. Every read checks the
// remaining size first; errors name the file and the byte offset.
// NOTE: formiga only builds for little-endian hosts (x86-64, aarch64), so
// fixed-width fields are read with memcpy, no byte swapping.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& name)
      : data_(data), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  void Rewind(size_t pos) { pos_ = pos; }  // REQUIRES: pos <= pos()
  size_t remaining() const { return size_ - pos_; }

  Status Error(size_t at, const std::string& problem) const {
    return Status::Corruption(name_ + ": offset " + std::to_string(at) + ": " + problem);
  }

  template <class T>
  Status Read(T* out, const char* what) {
    if (remaining() < sizeof(T)) {
      return Error(pos_, std::string("file truncated while reading ") + what + " (" +
                             std::to_string(sizeof(T)) + " bytes needed, " +
                             std::to_string(remaining()) + " left)");
    }
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  // The next `n` bytes, in place; moves past them.
  Status View(size_t n, const char* what, std::string_view* out) {
    if (remaining() < n) {
      return Error(pos_, std::string("file truncated while reading ") + what + " (" + std::to_string(n) +
                             " bytes needed, " + std::to_string(remaining()) + " left)");
    }
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return Status::Ok();
  }

  Status ReadString(std::string* out, const char* what, uint64_t max_len) {
    size_t at = pos_;
    uint64_t len = 0;
    FORMIGA_RETURN_IF_ERROR(Read(&len, what));
    if (len > remaining()) {
      return Error(at, std::string(what) + " length " + std::to_string(len) +
                           " goes beyond the end of the file (" + std::to_string(remaining()) +
                           " bytes left)");
    }
    if (len > max_len) {
      return Error(at, std::string(what) + " length " + std::to_string(len) +
                           " exceeds the limit of " + std::to_string(max_len));
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return Status::Ok();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  const std::string& name_;
  size_t pos_ = 0;
};

// Reads metadata values, bounding nesting and the total number of array items.
// NOTE: arrays of scalars and strings are viewed in place (gguf.h), but an
// array of arrays costs a GgufValue (~170 bytes) per item, and a string array
// a 4-byte end per item; kGgufMaxArrayItems caps that blow-up for hostile
// files while leaving room for real vocabularies (a few 100k tokens, scores,
// types, merges).
class ValueReader {
 public:
  explicit ValueReader(Cursor* cur) : cur_(cur) {}

  Status ReadValue(GgufType type, int depth, GgufValue* out) {
    out->type = type;
    switch (type) {
      case GgufType::kUint8: return ReadUnsigned<uint8_t>(out);
      case GgufType::kUint16: return ReadUnsigned<uint16_t>(out);
      case GgufType::kUint32: return ReadUnsigned<uint32_t>(out);
      case GgufType::kUint64: return ReadUnsigned<uint64_t>(out);
      case GgufType::kInt8: return ReadSigned<int8_t>(out);
      case GgufType::kInt16: return ReadSigned<int16_t>(out);
      case GgufType::kInt32: return ReadSigned<int32_t>(out);
      case GgufType::kInt64: return ReadSigned<int64_t>(out);
      case GgufType::kFloat32: {
        float v = 0;
        FORMIGA_RETURN_IF_ERROR(cur_->Read(&v, "float32 value"));
        out->f = v;
        return Status::Ok();
      }
      case GgufType::kFloat64: {
        double v = 0;
        FORMIGA_RETURN_IF_ERROR(cur_->Read(&v, "float64 value"));
        out->f = v;
        return Status::Ok();
      }
      case GgufType::kBool: {
        size_t at = cur_->pos();
        uint8_t v = 0;
        FORMIGA_RETURN_IF_ERROR(cur_->Read(&v, "bool value"));
        if (v > 1) return cur_->Error(at, "bool value " + std::to_string(v) + " is neither 0 nor 1");
        out->u = v;
        return Status::Ok();
      }
      case GgufType::kString:
        return cur_->ReadString(&out->str, "string value", std::numeric_limits<uint64_t>::max());
      case GgufType::kArray: return ReadArray(depth, out);
    }
    return cur_->Error(cur_->pos(), "unknown value type");
  }

 private:
  template <class T>
  Status ReadUnsigned(GgufValue* out) {
    T v{};
    FORMIGA_RETURN_IF_ERROR(cur_->Read(&v, "integer value"));
    out->u = v;
    return Status::Ok();
  }
  template <class T>
  Status ReadSigned(GgufValue* out) {
    T v{};
    FORMIGA_RETURN_IF_ERROR(cur_->Read(&v, "integer value"));
    out->i = v;
    return Status::Ok();
  }

  Status ReadArray(int depth, GgufValue* out) {
    size_t at = cur_->pos();
    if (depth >= kGgufMaxNesting) {
      return cur_->Error(at, "arrays nested deeper than " + std::to_string(kGgufMaxNesting) + " levels");
    }
    uint32_t raw_elem = 0;
    FORMIGA_RETURN_IF_ERROR(cur_->Read(&raw_elem, "array element type"));
    if (!IsKnownType(raw_elem)) {
      return cur_->Error(at, "unknown array element type " + std::to_string(raw_elem));
    }
    GgufType elem = static_cast<GgufType>(raw_elem);
    size_t count_at = cur_->pos();
    uint64_t count = 0;
    FORMIGA_RETURN_IF_ERROR(cur_->Read(&count, "array length"));
    uint64_t min = MinEncodedSize(elem);
    if (count > cur_->remaining() / min) {
      return cur_->Error(count_at, "array of " + std::to_string(count) + " " + GgufTypeName(elem) +
                                       " items cannot fit in the " + std::to_string(cur_->remaining()) +
                                       " bytes left in the file");
    }
    if (count > kGgufMaxArrayItems - total_items_) {
      return cur_->Error(count_at, "metadata arrays hold more than " + std::to_string(kGgufMaxArrayItems) +
                                       " items in total (limit of this reader)");
    }
    total_items_ += count;
    out->elem_type = elem;
    const size_t n = static_cast<size_t>(count);
    if (elem == GgufType::kArray) {
      out->items.resize(n);
      for (GgufValue& item : out->items) {
        FORMIGA_RETURN_IF_ERROR(ReadValue(elem, depth + 1, &item));
      }
      return Status::Ok();
    }
    if (elem == GgufType::kString) return ReadStringItems(n, out);
    // Scalars: the compact form is the on-disk bytes, viewed in place
    // (count * width bytes, checked above against the bytes left).
    const size_t data_at = cur_->pos();
    FORMIGA_RETURN_IF_ERROR(cur_->View(n * GgufScalarWidth(elem), "array items", &out->mapped));
    if (elem == GgufType::kBool) {
      for (size_t k = 0; k < n; ++k) {
        const uint8_t v = static_cast<uint8_t>(out->mapped[k]);
        if (v > 1) return cur_->Error(data_at + k, "bool value " + std::to_string(v) + " is neither 0 nor 1");
      }
    }
    return Status::Ok();
  }

  // Strings: viewed in place (u64 length + characters each); `ends` records
  // where each one ends, from the start of the array's items.
  Status ReadStringItems(size_t n, GgufValue* out) {
    const size_t start = cur_->pos();
    out->ends.reserve(n);
    for (size_t k = 0; k < n; ++k) {
      size_t at = cur_->pos();
      uint64_t len = 0;
      FORMIGA_RETURN_IF_ERROR(cur_->Read(&len, "string value"));
      if (len > cur_->remaining()) {
        return cur_->Error(at, "string value length " + std::to_string(len) +
                                   " goes beyond the end of the file (" + std::to_string(cur_->remaining()) +
                                   " bytes left)");
      }
      const uint64_t end = static_cast<uint64_t>(cur_->pos() - start) + len;
      if (end > kGgufMaxStringArrayBytes) {
        return cur_->Error(at, "one string array takes more than " + std::to_string(kGgufMaxStringArrayBytes) +
                                   " bytes (limit of this reader)");
      }
      std::string_view chars;
      FORMIGA_RETURN_IF_ERROR(cur_->View(static_cast<size_t>(len), "string value", &chars));
      out->ends.push_back(static_cast<uint32_t>(end));
    }
    const size_t end = cur_->pos();
    cur_->Rewind(start);
    return cur_->View(end - start, "string array", &out->mapped);
  }

  Cursor* cur_;
  uint64_t total_items_ = 0;
};

bool MulOverflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

// Rounds `v` up to a multiple of `align` (a power of two); false on overflow.
bool AlignUp(uint64_t v, uint64_t align, uint64_t* out) {
  uint64_t sum = 0;
  if (__builtin_add_overflow(v, align - 1, &sum)) return false;
  *out = sum & ~(align - 1);
  return true;
}

}  // namespace

const char* GgufTypeName(GgufType type) {
  switch (type) {
    case GgufType::kUint8: return "uint8";
    case GgufType::kInt8: return "int8";
    case GgufType::kUint16: return "uint16";
    case GgufType::kInt16: return "int16";
    case GgufType::kUint32: return "uint32";
    case GgufType::kInt32: return "int32";
    case GgufType::kFloat32: return "float32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "uint64";
    case GgufType::kInt64: return "int64";
    case GgufType::kFloat64: return "float64";
  }
  return "unknown";
}

int64_t GgufTensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- GgufFile --------------------------------------------------------------

Result<GgufFile> GgufFile::Open(const std::string& path) {
  FORMIGA_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::Open(path));
  FORMIGA_ASSIGN_OR_RETURN(GgufFile file, Parse(mapped.data(), mapped.size(), path));
  // NOTE: moving a MappedFile keeps the mapping address, so the tensor data
  // pointers computed by Parse stay valid.
  file.file_ = std::move(mapped);
  return file;
}

Result<GgufFile> GgufFile::Parse(const uint8_t* data, size_t size, const std::string& name) {
  GgufFile file;
  file.path_ = name;
  file.file_size_ = size;
  Cursor cur(data, size, name);

  // -- header
  uint32_t magic = 0;
  if (size < 4) {
    return cur.Error(0, "file too small to be GGUF (" + std::to_string(size) + " bytes)");
  }
  FORMIGA_RETURN_IF_ERROR(cur.Read(&magic, "magic"));
  if (magic != kGgufMagic) {
    return cur.Error(0, "bad magic: not a GGUF file (expected the bytes 'GGUF')");
  }
  uint32_t version = 0;
  FORMIGA_RETURN_IF_ERROR(cur.Read(&version, "version"));
  if (version == 1) {
    return Status::Unsupported(name + ": offset 4: GGUF version 1 is obsolete (2023) and not supported; "
                               "re-convert the model with a current converter");
  }
  if (version != 2 && version != 3) {
    uint32_t swapped = __builtin_bswap32(version);
    if (swapped == 2 || swapped == 3) {
      return Status::Unsupported(name + ": offset 4: big-endian GGUF files are not supported");
    }
    return Status::Unsupported(name + ": offset 4: unsupported GGUF version " + std::to_string(version) +
                               " (formiga reads versions 2 and 3)");
  }
  file.version_ = version;
  size_t n_tensors_at = cur.pos();
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
  FORMIGA_RETURN_IF_ERROR(cur.Read(&n_tensors, "tensor count"));
  size_t n_kv_at = cur.pos();
  FORMIGA_RETURN_IF_ERROR(cur.Read(&n_kv, "metadata key/value count"));
  // Smallest key/value: empty-ish key (u64 length) + u32 type + 1-byte value.
  constexpr uint64_t kMinKvSize = 8 + 4 + 1;
  // Smallest tensor info: u64 name length + u32 n_dims + u32 type + u64 offset.
  constexpr uint64_t kMinTensorInfoSize = 8 + 4 + 4 + 8;
  if (n_kv > cur.remaining() / kMinKvSize) {
    return cur.Error(n_kv_at, "metadata count " + std::to_string(n_kv) + " cannot fit in the " +
                                  std::to_string(cur.remaining()) + " bytes left in the file");
  }
  if (n_tensors > cur.remaining() / kMinTensorInfoSize) {
    return cur.Error(n_tensors_at, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                                       std::to_string(cur.remaining()) + " bytes left in the file");
  }

  // -- metadata
  ValueReader values(&cur);
  file.kv_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    size_t kv_at = cur.pos();
    std::string key;
    FORMIGA_RETURN_IF_ERROR(cur.ReadString(&key, "metadata key", kGgufMaxKeyLength));
    if (key.empty()) return cur.Error(kv_at, "empty metadata key");
    if (file.kv_index_.count(key) != 0) return cur.Error(kv_at, "duplicate metadata key '" + key + "'");
    size_t type_at = cur.pos();
    uint32_t raw_type = 0;
    FORMIGA_RETURN_IF_ERROR(cur.Read(&raw_type, "metadata value type"));
    if (!IsKnownType(raw_type)) {
      return cur.Error(type_at, "unknown value type " + std::to_string(raw_type) + " for key '" + key + "'");
    }
    GgufValue value;
    Status st = values.ReadValue(static_cast<GgufType>(raw_type), 0, &value);
    if (!st.ok()) return Status(st.code(), st.message() + " (in the value of key '" + key + "')");
    file.kv_index_.emplace(key, file.kv_.size());
    file.kv_.emplace_back(std::move(key), std::move(value));
  }

  // -- alignment
  if (const GgufValue* a = file.Find("general.alignment")) {
    if (!a->is_integer()) {
      return Status::Corruption(name + ": general.alignment has type " + GgufTypeName(a->type) +
                                ", expected an integer");
    }
    uint64_t align = a->is_signed() ? static_cast<uint64_t>(a->i) : a->u;
    if (a->is_signed() && a->i < 0) align = 0;
    if (align == 0 || (align & (align - 1)) != 0 || align > (1ull << 30)) {
      return Status::Corruption(name + ": general.alignment " + std::to_string(align) +
                                " must be a nonzero power of two (at most 2^30)");
    }
    file.alignment_ = align;
  }

  // -- tensor infos
  file.tensors_.reserve(static_cast<size_t>(n_tensors));
  std::vector<size_t> info_offsets;
  info_offsets.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    size_t info_at = cur.pos();
    GgufTensorInfo info;
    FORMIGA_RETURN_IF_ERROR(cur.ReadString(&info.name, "tensor name", kGgufMaxTensorNameLength));
    if (file.tensor_index_.count(info.name) != 0) {
      return cur.Error(info_at, "duplicate tensor name '" + info.name + "'");
    }
    const std::string where = "tensor '" + info.name + "'";
    size_t dims_at = cur.pos();
    uint32_t n_dims = 0;
    FORMIGA_RETURN_IF_ERROR(cur.Read(&n_dims, "tensor dimension count"));
    if (n_dims > kGgufMaxDims) {
      return cur.Error(dims_at, where + " has " + std::to_string(n_dims) + " dimensions (at most " +
                                    std::to_string(kGgufMaxDims) + ")");
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      size_t dim_at = cur.pos();
      uint64_t dim = 0;
      FORMIGA_RETURN_IF_ERROR(cur.Read(&dim, "tensor dimension"));
      if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return cur.Error(dim_at, where + " dimension " + std::to_string(d) + " is " + std::to_string(dim) +
                                     " (must be positive)");
      }
      if (MulOverflows(n_elements, dim, &n_elements) ||
          n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return cur.Error(dim_at, where + " element count overflows 64 bits");
      }
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    size_t type_at = cur.pos();
    uint32_t raw_type = 0;
    FORMIGA_RETURN_IF_ERROR(cur.Read(&raw_type, "tensor type"));
    const DTypeTraits* traits = FindDTypeTraits(raw_type);
    if (traits == nullptr) {
      return cur.Error(type_at, where + " has unknown or removed ggml type id " + std::to_string(raw_type));
    }
    info.type = traits->type;
    uint64_t row = info.shape.empty() ? 1 : static_cast<uint64_t>(info.shape[0]);
    if (row % static_cast<uint64_t>(traits->block_size) != 0) {
      return cur.Error(dims_at, where + " row length " + std::to_string(row) + " is not a multiple of " +
                                    traits->name + "'s block size " + std::to_string(traits->block_size));
    }
    if (MulOverflows(n_elements / static_cast<uint64_t>(traits->block_size),
                     static_cast<uint64_t>(traits->type_size), &info.nbytes)) {
      return cur.Error(dims_at, where + " byte size overflows 64 bits");
    }
    size_t offset_at = cur.pos();
    FORMIGA_RETURN_IF_ERROR(cur.Read(&info.offset, "tensor data offset"));
    if (info.offset % file.alignment_ != 0) {
      return cur.Error(offset_at, where + " data offset " + std::to_string(info.offset) +
                                      " is not a multiple of the alignment " + std::to_string(file.alignment_));
    }
    file.tensor_index_.emplace(info.name, file.tensors_.size());
    file.tensors_.push_back(std::move(info));
    info_offsets.push_back(info_at);
  }

  // -- data section
  if (!AlignUp(cur.pos(), file.alignment_, &file.data_offset_)) {
    return cur.Error(cur.pos(), "data section offset overflows");
  }
  if (!file.tensors_.empty() && file.data_offset_ > size) {
    return cur.Error(cur.pos(), "file truncated: the data section would start at offset " +
                                    std::to_string(file.data_offset_) + ", beyond the end of the file");
  }
  const uint64_t data_size = file.data_offset_ <= size ? size - file.data_offset_ : 0;
  for (size_t t = 0; t < file.tensors_.size(); ++t) {
    GgufTensorInfo& info = file.tensors_[t];
    if (info.offset > data_size || info.nbytes > data_size - info.offset) {
      return cur.Error(info_offsets[t], "tensor '" + info.name + "' data [" + std::to_string(info.offset) + ", +" +
                                            std::to_string(info.nbytes) + ") lies beyond the end of the file (" +
                                            std::to_string(data_size) + " data bytes); the file may be truncated");
    }
    info.data = data + file.data_offset_ + info.offset;
  }
  std::vector<size_t> order(file.tensors_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return file.tensors_[a].offset < file.tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& prev = file.tensors_[order[k - 1]];
    const GgufTensorInfo& cur_t = file.tensors_[order[k]];
    if (prev.offset + prev.nbytes > cur_t.offset) {
      return cur.Error(info_offsets[order[k]], "tensor '" + cur_t.name + "' data overlaps tensor '" + prev.name + "'");
    }
  }
  return file;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

Status Missing(const std::string& path, std::string_view key) {
  return Status::NotFound(path + ": metadata key '" + std::string(key) + "' is missing");
}

Status WrongType(const std::string& path, std::string_view key, const GgufValue& v, const char* want) {
  std::string have = GgufTypeName(v.type);
  if (v.type == GgufType::kArray) have += std::string(" of ") + GgufTypeName(v.elem_type);
  return Status::InvalidArgument(path + ": metadata key '" + std::string(key) + "' is " + have +
                                 ", expected " + want);
}

}  // namespace

Result<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path_, key);
  if (v->type != GgufType::kString) return WrongType(path_, key, *v, "string");
  return v->str;
}

Result<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path_, key);
  if (!v->is_integer()) return WrongType(path_, key, *v, "an integer");
  Result<int64_t> r = v->AsInt();
  if (!r.ok()) return r.status().WithContext(path_ + ": metadata key '" + std::string(key) + "'");
  return r;
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path_, key);
  if (!v->is_integer() && !v->is_float()) return WrongType(path_, key, *v, "a number");
  return v->AsFloat();
}

Result<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path_, key);
  if (v->type != GgufType::kBool) return WrongType(path_, key, *v, "bool");
  return v->u != 0;
}

Result<const GgufValue*> GgufFile::GetArray(std::string_view key, GgufType elem) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path_, key);
  if (v->type != GgufType::kArray || v->elem_type != elem) {
    return WrongType(path_, key, *v, (std::string("array of ") + GgufTypeName(elem)).c_str());
  }
  return v;
}

Result<std::vector<std::string>> GgufFile::GetStringArray(std::string_view key) const {
  FORMIGA_ASSIGN_OR_RETURN(const GgufValue* v, GetArray(key, GgufType::kString));
  std::vector<std::string> out;
  out.reserve(v->size());
  for (size_t k = 0; k < v->size(); ++k) out.emplace_back(v->StringAt(k));
  return out;
}

Result<std::vector<double>> GgufFile::GetFloatArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path_, key);
  GgufValue probe;
  probe.type = v->elem_type;
  if (v->type != GgufType::kArray || !(probe.is_float() || probe.is_integer())) {
    return WrongType(path_, key, *v, "array of numbers");
  }
  std::vector<double> out;
  out.reserve(v->size());
  for (size_t k = 0; k < v->size(); ++k) {
    FORMIGA_ASSIGN_OR_RETURN(double x, v->FloatAt(k));
    out.push_back(x);
  }
  return out;
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(path_, key);
  GgufValue probe;
  probe.type = v->elem_type;
  if (v->type != GgufType::kArray || !probe.is_integer()) return WrongType(path_, key, *v, "array of integers");
  std::vector<int64_t> out;
  out.reserve(v->size());
  for (size_t k = 0; k < v->size(); ++k) {
    Result<int64_t> x = v->IntAt(k);
    if (!x.ok()) return x.status().WithContext(path_ + ": metadata key '" + std::string(key) + "'");
    out.push_back(*x);
  }
  return out;
}

std::string GgufFile::architecture() const {
  const GgufValue* v = Find("general.architecture");
  return v != nullptr && v->type == GgufType::kString ? v->str : std::string();
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace formiga
