// Hugging Face checkpoint -> GGUF conversion (what `formiga convert` runs; the
// CLI only adds the progress bar).
//
// Input: a folder with config.json and safetensors weights (one
// model.safetensors, or model.safetensors.index.json + shards), optionally
// tokenizer.json (+ tokenizer_config.json). Output: a GGUF file that formiga
// and llama.cpp load, with
//   - general.* and "<arch>.*" metadata (WriteArchMetadata, shared with synth);
//   - every tensor of ModelTensors(config), in llama.cpp's order, named and
//     transformed as hf_names.h describes (llama q/k rope permutation, gemma
//     norm + 1, falcon QKV regrouping, gpt2 Conv1D transpose), plus Llama-3's
//     rope_freqs.weight computed from the rope scaling parameters;
//   - the tokenizer: tokenizer.json's vocabulary, merges and added tokens as
//     tokenizer.ggml.* keys (model "gpt2" + the pre-tokenizer's name for
//     byte-level BPE; "llama" for SentencePiece-style byte-fallback BPE such as
//     Llama-2's or Gemma's tokenizer.json), special ids, add_bos/add_eos and
//     the chat template from tokenizer_config.json. Without tokenizer.json a
//     PLACEHOLDER vocabulary is written (see kPlaceholderTokenPrefix) so the
//     file still loads; the report says so and the CLI warns.
//
// Types: the same presets as `formiga quantize` (f32, f16, bf16, q8_0,
// q4_k_m, ...) with the same per-tensor plan (model/quantize.h
// PlanQuantization): 1-D tensors (norms, biases, rope factors) stay f32;
// matrices are quantized row by row from f32.
//
// Streaming: rows are read from the mapped safetensors, converted to f32,
// transformed, quantized and written a chunk at a time, so memory is the
// mapping (page cache) plus a bounded scratch (ConvertOptions::chunk_bytes),
// whatever the model size. The output is written atomically (.partial then
// rename).
//
// Errors name the file and the tensor: a folder without config.json, an
// unsupported model_type, a missing shard, an HF tensor formiga cannot map, a
// tensor of the wrong shape or dtype, a GGUF tensor that no HF tensor
// provides, two HF tensors that map to the same GGUF tensor.
//
// Thread safety: ConvertHfCheckpoint is reentrant; it starts `threads` worker
// threads internally. The progress callback runs on the calling thread.
// Ownership: nothing is retained after a call returns.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"
#include "model/hf_names.h"
#include "model/quantize.h"

namespace formiga {

class GgufWriter;

// The placeholder vocabulary (no tokenizer.json in the folder), tokenizer
// model "llama" (SentencePiece-style), scores 0:
//   ids [0, V - 256): "<formiga_tok_ID>", type NORMAL; config.json's
//     bos_token_id / eos_token_id among them are type CONTROL;
//   ids [V - 256, V): the byte tokens "<0x00>".."<0xFF>" (type BYTE), so any
//     text encodes (one token per byte) and llama.cpp finds its newline
//     token. Only when they fit above config.json's special ids (V > 256 +
//     the largest of them); smaller vocabularies get no byte tokens.
// It only makes the file loadable; it is not the model's real tokenizer.
inline constexpr const char* kPlaceholderTokenPrefix = "<formiga_tok_";

struct ConvertOptions {
  std::string type = "f16";        // quantize preset name (f32, f16, bf16, q8_0, q4_k_m, ...)
  int threads = 0;                 // worker threads; 0 = all hardware threads
  std::string name;                // general.name; "" = the config's name, else the folder's name
  // f32 scratch per chunk of rows (trade-off: larger = fewer thread
  // synchronisations, more memory). Default 16 MiB.
  size_t chunk_bytes = 16u << 20;
};

struct ConvertProgress {
  size_t tensor_index = 0;  // 0-based, of n_tensors
  size_t n_tensors = 0;
  const char* tensor = "";  // GGUF name
  uint64_t bytes_done = 0;  // output tensor bytes written so far
  uint64_t bytes_total = 0;
};
using ConvertProgressFn = std::function<void(const ConvertProgress&)>;

// What the tokenizer part wrote.
struct ConvertTokenizerInfo {
  bool placeholder = false;  // no tokenizer.json: <formiga_tok_N> tokens were written
  std::string model;         // tokenizer.ggml.model: "gpt2" or "llama"
  std::string pre;           // tokenizer.ggml.pre ("" for llama)
  int64_t n_tokens = 0;      // written (the model's vocab_size)
  int64_t n_padding = 0;     // "[PAD<id>]" tokens added because the embedding has more rows
  int64_t n_merges = 0;
  bool chat_template = false;
};

struct ConvertReport {
  ModelConfig config;
  std::vector<TensorQuantPlan> tensors;  // GGUF tensors in file order; `from` = the HF dtype
  std::vector<std::string> skipped;      // HF tensors not converted (rotary buffers, tied lm_head, vision tower)
  ConvertTokenizerInfo tokenizer;
  uint64_t n_elements = 0;
  uint64_t input_tensor_bytes = 0;   // safetensors bytes read
  uint64_t output_tensor_bytes = 0;
  uint64_t output_file_bytes = 0;
  size_t n_fallback = 0;
  std::map<DType, size_t> type_counts;

  double bits_per_weight() const {
    return n_elements ? 8.0 * static_cast<double>(output_tensor_bytes) / static_cast<double>(n_elements) : 0.0;
  }
};

// Converts the checkpoint in `dir` to `out_gguf`.
// REQUIRES: out_gguf is not inside a shard (it is written next to nothing it reads).
Result<ConvertReport> ConvertHfCheckpoint(const std::string& dir, const std::string& out_gguf,
                                          const ConvertOptions& options,
                                          const ConvertProgressFn& progress = nullptr);

// The tokenizer part alone: writes tokenizer.ggml.* keys for `config` from
// DIR/tokenizer.json (+ tokenizer_config.json, config.json's bos/eos ids), or
// the placeholder vocabulary when the folder has no tokenizer.json.
Result<ConvertTokenizerInfo> WriteHfTokenizerMetadata(const std::string& dir, const ModelConfig& config,
                                                      GgufWriter& writer);

// Llama-3 rope scaling as llama.cpp stores it: rope_freqs.weight, one factor
// per rotary pair (head_dim / 2) that divides the pair's frequency.
std::vector<float> Llama3RopeFactors(const ModelConfig& config);

// The HF row that GGUF row `out_row` of a mapped tensor comes from, for the
// transforms that move whole rows (none, add_one, permute_rope, falcon_qkv).
// `hf_rows` is hf_shape[0]. (kTranspose gathers columns instead.)
int64_t HfSourceRow(const ModelConfig& config, const HfTensorMapping& m, int64_t hf_rows, int64_t out_row);

}  // namespace formiga
