// GgufWriter: writes a GGUF v3 file (metadata, tensor infos, tensor data),
// streaming the tensor data so that memory use does not depend on its size (a
// 70B-parameter file is written with a few MB of RAM).
//
// Usage:
//   GgufWriter w;                        // alignment 32 (GGUF default)
//   w.SetString("general.architecture", "llama");
//   FORMIGA_RETURN_IF_ERROR(w.AddTensor("token_embd.weight", {576, 49152}, DType::kQ8_0));
//   FORMIGA_RETURN_IF_ERROR(w.Begin("out.gguf"));
//   FORMIGA_RETURN_IF_ERROR(w.WriteTensorData(bytes, n));   // in order, in pieces
//   FORMIGA_RETURN_IF_ERROR(w.Finish());                     // fsync + atomic rename
//
// Metadata keeps insertion order; setting a key again replaces its value in
// place. Tensors are declared in file order with AddTensor() before Begin();
// their shape is in GGUF order, ne[0] (the contiguous dimension) first, exactly
// as GgufTensorInfo::shape reports it. Begin() writes `path + ".partial"`;
// Finish() renames it to `path` only when every tensor was completely written,
// so a crash or an error never leaves a truncated file under the final name.
// A writer destroyed before Finish() removes its .partial file.
//
// Thread safety: none; use one writer from one thread.
// Ownership: the writer owns its open file; data passed to WriteTensorData is
// copied (to the OS) before the call returns.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "formats/gguf.h"

namespace formiga {

class GgufWriter {
 public:
  // REQUIRES: `alignment` is a nonzero power of two (checked by Begin()).
  explicit GgufWriter(uint32_t alignment = 32);
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata. Validated by Begin() (array item types, nesting, and a
  // general.alignment key, which must equal the writer's alignment).
  void Set(std::string key, GgufValue value);
  void SetString(std::string key, std::string v);
  void SetUint32(std::string key, uint32_t v);
  void SetInt32(std::string key, int32_t v);
  void SetUint64(std::string key, uint64_t v);
  void SetFloat32(std::string key, float v);
  void SetBool(std::string key, bool v);
  void SetStringArray(std::string key, std::vector<std::string> v);
  void SetFloat32Array(std::string key, std::vector<float> v);
  void SetInt32Array(std::string key, std::vector<int32_t> v);

  // Declares the next tensor in file order. `shape` is ne[0] first (1..4
  // dimensions, each > 0, ne[0] a multiple of the type's block size).
  // REQUIRES: called before Begin(). Fails on a duplicate name or bad shape.
  Status AddTensor(std::string name, std::vector<int64_t> shape, DType type);

  // Creates `path + ".partial"` and writes header, metadata and tensor infos.
  Status Begin(const std::string& path);

  // Appends bytes of the current tensor (the first not yet complete). May be
  // called in pieces; one call never crosses into the next tensor. Alignment
  // padding between tensors is written automatically.
  Status WriteTensorData(const void* data, size_t nbytes);

  // Checks every tensor was completely written, flushes, fsyncs and renames
  // the .partial file to its final path.
  Status Finish();

  // Bytes the finished file will have (valid after Begin()).
  uint64_t file_size() const { return total_size_; }

 private:
  struct PendingTensor {
    std::string name;
    std::vector<int64_t> shape;
    DType type;
    uint64_t nbytes;
    uint64_t offset;  // within the data section
  };

  Status Fail(Status st);  // remembers the first error, closes and removes the .partial
  Status WriteRaw(const void* data, size_t n);
  Status WritePadding(uint64_t align);
  Status WriteValue(const GgufValue& v);
  Status WriteString(std::string_view s);
  void Abort();

  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<PendingTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
  uint64_t data_size_ = 0;  // sum of tensor sizes with padding

  std::string path_;
  std::string partial_path_;
  std::FILE* file_ = nullptr;
  uint64_t pos_ = 0;          // bytes written so far
  uint64_t total_size_ = 0;
  size_t current_ = 0;        // index of the tensor being written
  uint64_t current_done_ = 0; // bytes of it written
  bool began_ = false;
  bool finished_ = false;
  Status error_;
};

}  // namespace formiga
