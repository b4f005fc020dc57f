#include "model/weights.h"

#include <cstring>

#include "core/quant.h"
#include "formats/gguf.h"

namespace formiga {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

bool WeightLoader::Has(const std::string& name) const { return file_->FindTensor(name) != nullptr; }

Result<WeightView> WeightLoader::Matrix(const std::string& name, int64_t cols, int64_t rows) const {
  const GgufTensorInfo* t = file_->FindTensor(name);
  if (t == nullptr) return Status::NotFound(file_->path() + ": tensor " + name + " is missing");
  if (t->shape.size() != 2 || t->shape[0] != cols || t->shape[1] != rows) {
    return Status::Corruption(file_->path() + ": tensor " + name + " has shape " + ShapeString(t->shape) +
                              ", expected " + ShapeString({cols, rows}));
  }
  if (!GetDTypeTraits(t->type).computable) {
    return Status::Unsupported(file_->path() + ": tensor " + name + " is " + DTypeName(t->type) +
                               ", which formiga cannot compute with yet (re-quantize to q4_k_m or q8_0)");
  }
  return WeightView{t->type, t->data, cols, rows, static_cast<size_t>(DTypeRowBytes(t->type, cols))};
}

Result<const float*> WeightLoader::Vector(const std::string& name, int64_t n) {
  const GgufTensorInfo* t = file_->FindTensor(name);
  if (t == nullptr) return Status::NotFound(file_->path() + ": tensor " + name + " is missing");
  if (t->n_elements() != n) {
    return Status::Corruption(file_->path() + ": tensor " + name + " has shape " + ShapeString(t->shape) +
                              ", expected " + std::to_string(n) + " elements");
  }
  // NOTE: copied even when f32: these vectors are tiny, and read from the
  // mapping every forward pass they would keep a 2 MB page of the file
  // mapped each (the mapping's granularity with huge pages) around weights
  // whose pages were released (packed weights, device uploads).
  std::vector<float>& out = converted_.emplace_back(static_cast<size_t>(n));
  if (t->type == DType::kF32) {
    std::memcpy(out.data(), t->data, static_cast<size_t>(n) * sizeof(float));
    return static_cast<const float*>(out.data());
  }
  FORMIGA_RETURN_IF_ERROR(DequantizeRow(t->type, t->data, out.data(), n).WithContext(file_->path() + ": " + name));
  return static_cast<const float*>(out.data());
}

Result<const float*> WeightLoader::OptionalVector(const std::string& name, int64_t n) {
  if (!Has(name)) return static_cast<const float*>(nullptr);
  return Vector(name, n);
}

WeightView SliceRows(const WeightView& w, int64_t first, int64_t count) {
  WeightView s = w;
  s.data = static_cast<const uint8_t*>(w.data) + static_cast<size_t>(first) * w.row_bytes;
  s.rows = count;
  return s;
}

}  // namespace formiga
