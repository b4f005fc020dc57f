// Model quantization: GGUF in, GGUF out, with llama.cpp-compatible type mixes
// (what `formiga quantize` runs; the CLI only adds the progress bar).
//
// A preset ("q4_k_m", "q8_0", "f16", ...) names a base type and, for the
// quantized presets, llama.cpp's per-tensor rules (llama_tensor_get_type):
// output/tied embeddings get Q6_K, half of attn_v/ffn_down layers get more
// bits in the _M mixes, 1-D tensors (norms, biases) are copied unchanged,
// and a tensor whose row length does not fit a K-quant's 256-element
// super-block falls back to a compatible 32-element type. The full table is
// in quantize.cc (PlanTensorType) and docs/quantization.md.
//
// Quantization streams: a few rows of one tensor at a time are dequantized
// to f32, re-quantized and written, so memory use stays at the mapped input
// plus a bounded scratch buffer (never the whole model). An input tensor that
// already has the target type is copied byte for byte.
//
// Thread safety: QuantizeModel is reentrant (no global state); it uses
// `threads` worker threads internally. The progress callback is called from
// the calling thread only.
// Ownership: nothing is retained after a call returns.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "formats/gguf.h"

namespace formiga {

// llama.cpp's llama_ftype values (general.file_type), explicit as on disk.
enum class LlamaFileType : uint32_t {
  kAllF32 = 0,
  kMostlyF16 = 1,
  kMostlyQ4_0 = 2,
  kMostlyQ4_1 = 3,
  kMostlyQ8_0 = 7,
  kMostlyQ5_0 = 8,
  kMostlyQ5_1 = 9,
  kMostlyQ2_K = 10,
  kMostlyQ3_K_M = 12,
  kMostlyQ4_K_M = 15,
  kMostlyQ5_K_M = 17,
  kMostlyQ6_K = 18,
  kMostlyBF16 = 32,
};

struct QuantizePreset {
  std::string name;        // "q4_k_m"
  DType base_type;         // type of most 2-D weights (Q4_K for q4_k_m)
  LlamaFileType file_type; // written to general.file_type
  bool mixed;              // applies llama.cpp's per-tensor rules (quantized presets)
};

// Known presets, in the order `--help` lists them.
const std::vector<QuantizePreset>& QuantizePresets();
// Case-insensitive lookup; InvalidArgument listing the valid names otherwise.
Result<QuantizePreset> ParseQuantizePreset(std::string_view name);

// What happens to one tensor.
struct TensorQuantPlan {
  std::string name;
  std::vector<int64_t> shape;  // ne[0] first
  DType from = DType::kF32;
  DType to = DType::kF32;
  bool quantized = false;  // false: copied unchanged (1-D, norms, ...)
  bool fallback = false;   // the mix's type did not fit ne[0]; `to` is the fallback
  uint64_t out_bytes = 0;
};

// Decides every tensor's output type (in file order, as the rules count
// layers in file order). Does not read tensor data.
Result<std::vector<TensorQuantPlan>> PlanQuantization(const GgufFile& in, const QuantizePreset& preset);
// The same rules from a tensor list (name, shape and `from` of each entry, in
// file order) and the architecture's head counts, for writers that plan
// before any input GGUF exists (`formiga convert`). n_head_kv 0 = n_head.
Result<std::vector<TensorQuantPlan>> PlanQuantization(std::vector<TensorQuantPlan> tensors, std::string_view arch,
                                                      int64_t n_head, int64_t n_head_kv,
                                                      const QuantizePreset& preset);

struct QuantizeOptions {
  std::string preset = "q8_0";
  int threads = 0;  // worker threads; 0 = all hardware threads
  // Bytes of f32 scratch per chunk of rows (trade-off: larger = fewer
  // synchronisations, more memory). Default 16 MiB.
  size_t chunk_bytes = 16u << 20;
};

struct QuantizeProgress {
  size_t tensor_index = 0;  // 0-based, of n_tensors
  size_t n_tensors = 0;
  const TensorQuantPlan* tensor = nullptr;
  uint64_t bytes_done = 0;   // output tensor bytes written so far (all tensors)
  uint64_t bytes_total = 0;  // output tensor bytes of the whole file
};
using QuantizeProgressFn = std::function<void(const QuantizeProgress&)>;

struct QuantizeReport {
  std::vector<TensorQuantPlan> tensors;
  uint64_t n_elements = 0;         // all tensors
  uint64_t input_tensor_bytes = 0;
  uint64_t output_tensor_bytes = 0;
  uint64_t output_file_bytes = 0;
  size_t n_fallback = 0;
  size_t n_requantized = 0;  // tensors whose input was already block-quantized
  std::map<DType, size_t> type_counts;  // output tensors per type

  // Bits per weight of the output's tensor data: 8 * bytes / elements.
  double bits_per_weight() const {
    return n_elements ? 8.0 * static_cast<double>(output_tensor_bytes) / static_cast<double>(n_elements) : 0.0;
  }
};

// Quantizes `in_path` into `out_path` (written atomically: `out_path`.partial
// then rename). Metadata is copied; general.file_type, general.quantized_by
// ("formiga") and general.quantization_version (2, as ggml) are set.
// REQUIRES: in_path != out_path.
Result<QuantizeReport> QuantizeModel(const std::string& in_path, const std::string& out_path,
                                     const QuantizeOptions& options,
                                     const QuantizeProgressFn& progress = nullptr);

}  // namespace formiga
