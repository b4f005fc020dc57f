// Safetensors reader: one `.safetensors` file, or a sharded Hugging Face
// checkpoint (`model.safetensors.index.json` + shards), mapped zero-copy.
//
// Layout: u64 little-endian header length N, N bytes of JSON
//   {"<name>": {"dtype": "BF16", "shape": [rows, cols], "data_offsets": [begin, end]},
//    "__metadata__": {"<key>": "<string>"}}
// then the data section; offsets are relative to its start (8 + N).
// Every field is validated (dtype known, shape non-negative, end - begin ==
// elements * dtype size, within the file, no two tensors overlapping, header
// at most kSafetensorsMaxHeader bytes); errors name the file and the tensor.
//
// Thread safety: immutable after Open(); concurrent reads are safe.
// Ownership: a SafetensorsFile / SafetensorsCheckpoint owns its mappings;
// tensor data pointers stay valid while it lives (moving it keeps them valid).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"

namespace formiga {

inline constexpr uint64_t kSafetensorsMaxHeader = 100ull << 20;  // 100 MB, as the reference library

enum class SafetensorsDType {
  kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool, kF8_E4M3, kF8_E5M2,
};

const char* SafetensorsDTypeName(SafetensorsDType dtype);  // "BF16", as in the file
size_t SafetensorsDTypeSize(SafetensorsDType dtype);       // bytes per element
std::optional<SafetensorsDType> ParseSafetensorsDType(std::string_view name);

struct SafetensorsTensor {
  std::string name;
  SafetensorsDType dtype = SafetensorsDType::kF32;
  std::vector<int64_t> shape;     // row-major, outermost first (as in the file; NOT GGUF order)
  const uint8_t* data = nullptr;  // into the mapping
  uint64_t nbytes = 0;
  uint64_t offset = 0;            // from the start of the data section

  int64_t n_elements() const;
};

class SafetensorsFile {
 public:
  // Opens, maps and validates `path`.
  static Result<SafetensorsFile> Open(const std::string& path);
  // Parses bytes already in memory (fuzzing, tests); `data` must outlive the
  // result; `name` is used in error messages.
  static Result<SafetensorsFile> Parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  uint64_t header_size() const { return header_size_; }  // JSON bytes (N)

  // Tensors in data-section order.
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;  // nullptr if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  MappedFile file_;  // empty when built by Parse()
  uint64_t file_size_ = 0;
  uint64_t header_size_ = 0;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: a directory (with model.safetensors.index.json or a single
// model.safetensors), an index .json file, or one .safetensors file.
class SafetensorsCheckpoint {
 public:
  // With an index, every weight_map entry must name a shard in the same
  // directory that holds the tensor, and every shard tensor must be listed
  // exactly once (pointing at that shard).
  static Result<SafetensorsCheckpoint> Open(const std::string& dir_or_file);

  const SafetensorsTensor* Find(std::string_view name) const;  // nullptr if absent
  std::vector<std::string> TensorNames() const;                // sorted
  const std::vector<SafetensorsFile>& shards() const { return shards_; }
  const std::string& directory() const { return dir_; }

 private:
  std::string dir_;
  std::vector<SafetensorsFile> shards_;
  std::map<std::string, std::pair<size_t, size_t>, std::less<>> index_;  // name -> (shard, tensor)
};

}  // namespace formiga
