// Synthetic models: random-weight GGUF files with the exact shape, metadata
// and tokenizer of a real architecture, for speed and memory tests of models
// too large to download (`formiga synth`).
//
// The file loads in llama.cpp: metadata keys are the ones llama.cpp reads for
// the architecture, and the tokenizer (tokenizer.* keys) is copied from a
// donor GGUF and resized to the config's vocabulary:
//   - larger vocab: the donor's tokens, then "<formiga_unused_N>" tokens of type
//     UNUSED (5) with score 0; merges unchanged.
//   - smaller vocab: the first vocab_size tokens; merges that use or produce a
//     removed token are dropped; special-token ids that fall outside the new
//     vocabulary are removed (llama.cpp then uses none).
//
// Weights: normal-ish values (sum of 4 uniforms) with std 0.02, norms 1,
// biases 0, from a counter-based PRNG seeded per (seed, tensor, row), so the
// file does not depend on the thread count. Generated, quantized and written
// a chunk of rows at a time: memory stays a few tens of MB whatever the model
// size.
//
// Types: a quantize preset name (same names as `formiga quantize`). Matrices
// get the base type; a matrix whose row length does not fit the type's block
// falls back like llama.cpp (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
// Q2_K/Q3_K -> Q4_0, then F16 if even 32 does not divide it). For the mixed
// presets (q4_k_m, ...) only the rule "output (or tied token_embd) is Q6_K"
// is applied; the per-layer attn_v / ffn_down upgrades are not.
//
// Thread safety: SynthesizeModel is reentrant; it starts `threads` workers.
// The progress callback runs on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/dtype.h"
#include "core/status.h"
#include "model/config.h"

namespace formiga {

struct SynthOptions {
  std::string type = "f16";         // quantize preset name: f32, f16, q8_0, q4_k_m, ...
  std::string tokenizer_from;       // donor GGUF (required)
  uint64_t seed = 42;
  int threads = 0;                  // 0 = hardware threads
  size_t chunk_bytes = 16u << 20;   // f32 scratch per chunk of rows
};

struct SynthProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  const char* tensor = "";
};

struct SynthReport {
  int64_t n_params = 0;
  uint64_t tensor_bytes = 0;
  uint64_t file_bytes = 0;
  double bits_per_weight() const {
    return n_params ? 8.0 * static_cast<double>(tensor_bytes) / static_cast<double>(n_params) : 0.0;
  }
};

// Writes a random-weight GGUF of `config` to `out_path` (atomically).
Result<SynthReport> SynthesizeModel(const ModelConfig& config, const SynthOptions& options,
                                    const std::string& out_path,
                                    const std::function<void(const SynthProgress&)>& progress = nullptr);

// The type a matrix of row length `ne0` gets for `base`, after the fallbacks above.
DType SynthTensorType(DType base, int64_t ne0);

}  // namespace formiga
