// GGUF reader: metadata, tensor infos and zero-copy tensor data from a mapped
// file (GGUF v2 and v3).
//
// Every count, length and offset read from the file is checked against the
// file size before anything is allocated from it; a bad file yields a
// Corruption status naming the file, the byte offset and the problem.
//
// Thread safety: a GgufFile is immutable after Open(); concurrent reads are safe.
// Ownership: GgufFile owns the mapping; tensor data pointers stay valid while it lives.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/status.h"

namespace formiga {

// On-disk metadata value types (gguf_type), explicit values.
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* GgufTypeName(GgufType type);

// One metadata value. Scalars use the field of their kind. Arrays keep their
// element type and their items in a compact form, the array's on-disk bytes
// (a vocabulary of 262k tokens costs 4 bytes a token beyond the file, not a
// GgufValue per token):
//   - scalars (elem_type kUint8..kFloat64, kBool): the items' little-endian
//     bytes back to back (size() * width bytes);
//   - strings: each item's u64 length then its characters, as on disk;
//     ends[k] is where item k ends in the bytes;
//   - arrays of arrays: `items` (the general form, one GgufValue per item).
// The bytes are `mapped`, a view into the file for arrays read by GgufFile
// (valid while the GgufFile, or Parse()'s buffer, lives, like every pointer a
// GgufFile hands out; copies share the view: Own() makes a value independent,
// and GgufWriter::Set does), or else `packed`, owned. An array built by
// Array()/Append() from items that do not match elem_type (or do not fit its
// width) keeps the general form, so that GgufWriter can reject it. Read items
// with size(), At(), StringAt(), IntAt(), FloatAt().
struct GgufValue {
  GgufType type = GgufType::kUint8;
  uint64_t u = 0;        // kUint8..kUint64, and kBool (0/1)
  int64_t i = 0;         // kInt8..kInt64
  double f = 0.0;        // kFloat32, kFloat64
  std::string str;       // kString
  GgufType elem_type = GgufType::kUint8;  // kArray
  std::string_view mapped;                // kArray, compact form read in place (see above)
  std::string packed;                     // kArray, compact form owned
  std::vector<uint32_t> ends;             // kArray of strings, compact form
  std::vector<GgufValue> items;           // kArray, general form

  bool is_integer() const;
  bool is_float() const;
  bool is_unsigned() const;  // kUint8..kUint64 and kBool (value in `u`)
  bool is_signed() const;    // kInt8..kInt64 (value in `i`)
  // Any integer type (or bool) as int64 / uint64; floats are not converted.
  Result<int64_t> AsInt() const;
  Result<double> AsFloat() const;  // float or integer

  // ---- arrays (REQUIRE type == kArray)
  bool is_compact() const { return items.empty() && elem_type != GgufType::kArray; }
  // The compact form's bytes (see above).
  std::string_view bytes() const { return mapped.data() != nullptr ? mapped : std::string_view(packed); }
  // Copies viewed bytes into `packed` (and so for nested items).
  void Own();
  size_t size() const;
  GgufValue At(size_t k) const;  // item k as a value (copies; for generic code)
  // Item k of an array of strings. REQUIRES: elem_type == kString.
  std::string_view StringAt(size_t k) const;
  // Item k as AsInt() / AsFloat() would convert it.
  Result<int64_t> IntAt(size_t k) const;
  Result<double> FloatAt(size_t k) const;
  // Appends `item`, compactly when it has elem_type and fits its width.
  void Append(const GgufValue& item);
  void AppendString(std::string_view s);  // REQUIRES: elem_type == kString
  void Truncate(size_t n);                // keeps the first n items

  // Builders (for GgufWriter and tests). Array() does not check that the
  // items have `elem`'s type; GgufWriter::Begin does.
  static GgufValue Uint8(uint8_t v);
  static GgufValue Int8(int8_t v);
  static GgufValue Uint16(uint16_t v);
  static GgufValue Int16(int16_t v);
  static GgufValue Uint32(uint32_t v);
  static GgufValue Int32(int32_t v);
  static GgufValue Uint64(uint64_t v);
  static GgufValue Int64(int64_t v);
  static GgufValue Float32(float v);
  static GgufValue Float64(double v);
  static GgufValue Bool(bool v);
  static GgufValue String(std::string v);
  static GgufValue Array(GgufType elem, std::vector<GgufValue> items = {});
};

// Bytes of one scalar of `type` on disk (0 for kString and kArray).
size_t GgufScalarWidth(GgufType type);

// Limits the reader enforces (documented in docs/formats.md).
inline constexpr uint32_t kGgufMaxDims = 4;            // GGML_MAX_DIMS
inline constexpr int kGgufMaxNesting = 8;              // arrays of arrays of ...
inline constexpr uint64_t kGgufMaxArrayItems = 1ull << 23;  // all metadata array items together
inline constexpr uint64_t kGgufMaxKeyLength = 65535;
inline constexpr uint64_t kGgufMaxTensorNameLength = 4096;
inline constexpr uint64_t kGgufMaxStringArrayBytes = 0xffffffffu;  // on-disk bytes of one string array

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> shape;  // ne[0] (contiguous, fastest) first, as on disk
  DType type = DType::kF32;
  uint64_t offset = 0;         // from the start of the data section
  uint64_t nbytes = 0;         // bytes of data (shape product / block_size * type_size)
  const uint8_t* data = nullptr;  // into the mapping

  int64_t n_elements() const;
};

class GgufFile {
 public:
  // Opens, maps and validates `path`.
  static Result<GgufFile> Open(const std::string& path);
  // Parses a file already in memory (fuzzing, tests). `data` must outlive the
  // result; `name` is used in error messages.
  static Result<GgufFile> Parse(const uint8_t* data, size_t size, const std::string& name);

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of tensor data in the file
  uint64_t file_size() const { return file_size_; }
  const std::string& path() const { return path_; }
  // The file's mapping (empty when built by Parse()).
  const MappedFile& mapping() const { return file_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const GgufValue* Find(std::string_view key) const;  // nullptr if absent

  // Typed getters: NotFound if absent, InvalidArgument if of another type.
  Result<std::string> GetString(std::string_view key) const;
  Result<int64_t> GetInt(std::string_view key) const;       // any integer type
  Result<double> GetFloat(std::string_view key) const;      // float or integer
  Result<bool> GetBool(std::string_view key) const;
  // An array with items of type `elem`, read in place (no copy).
  Result<const GgufValue*> GetArray(std::string_view key, GgufType elem) const;
  Result<std::vector<std::string>> GetStringArray(std::string_view key) const;
  Result<std::vector<double>> GetFloatArray(std::string_view key) const;
  Result<std::vector<int64_t>> GetIntArray(std::string_view key) const;

  // "general.architecture", or "" if absent.
  std::string architecture() const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;  // nullptr if absent

 private:
  std::string path_;
  MappedFile file_;  // empty when built by Parse()
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  uint64_t file_size_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace formiga
