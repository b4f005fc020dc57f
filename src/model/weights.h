// WeightLoader: typed, shape-checked views of a GGUF file's tensors for the
// architecture files. Every mismatch names the tensor, the shape found and the
// shape expected, so a broken or foreign file fails at load, not mid-forward.
//
// Ownership: matrices are views into the file's mapping; 1-D tensors stored in
// f16/bf16 are converted once into memory the loader owns (so it must live as
// long as the model — architecture classes keep it as a member).
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"

namespace formiga {

class GgufFile;

class WeightLoader {
 public:
  explicit WeightLoader(const GgufFile& file) : file_(&file) {}

  // A (rows x cols) matrix: GGUF ne = {cols, rows}.
  Result<WeightView> Matrix(const std::string& name, int64_t cols, int64_t rows) const;
  // A vector of n floats (f32, or f16/bf16 converted once).
  Result<const float*> Vector(const std::string& name, int64_t n);
  // As Vector, but nullptr when the tensor is absent.
  Result<const float*> OptionalVector(const std::string& name, int64_t n);
  bool Has(const std::string& name) const;
  const GgufFile& file() const { return *file_; }

 private:
  const GgufFile* file_;
  std::deque<std::vector<float>> converted_;
};

// Rows [first, first + count) of a matrix, as a matrix of its own (fused
// projections such as falcon's attn_qkv are read as three views).
WeightView SliceRows(const WeightView& w, int64_t first, int64_t count);

}  // namespace formiga
