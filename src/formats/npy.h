// Minimal NumPy .npy files: 2-D little-endian float32 arrays in C order,
// the format `formiga perplexity --dump-logits` writes and `--kl-base` reads.
//
// Writing streams rows so that a [n_tokens, n_vocab] dump never has to sit
// in memory at once; reading maps the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "core/status.h"

namespace formiga {

class NpyWriter {
 public:
  ~NpyWriter();
  // Creates `path` for a (rows, cols) float32 array; rows are then appended.
  static Result<std::unique_ptr<NpyWriter>> Create(const std::string& path, int64_t rows, int64_t cols);
  Status AppendRow(const float* row);  // `cols` floats
  Status Close();                      // checks all rows were written

 private:
  std::FILE* f_ = nullptr;
  std::string path_;
  int64_t rows_ = 0, cols_ = 0, written_ = 0;
};

class NpyMatrix {
 public:
  // Opens a 2-D '<f4' C-order .npy (version 1, 2 or 3 header).
  static Result<NpyMatrix> Open(const std::string& path);
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  const float* row(int64_t r) const { return data_ + r * cols_; }

 private:
  MappedFile file_;
  const float* data_ = nullptr;
  int64_t rows_ = 0, cols_ = 0;
};

}  // namespace formiga
