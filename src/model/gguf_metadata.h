// GGUF architecture metadata: the "<arch>.*" keys llama.cpp reads to build a
// model (llama-arch.cpp LLM_KV_*), written from a ModelConfig.
//
// Shared by every writer of model files (`formiga synth`, `formiga convert`)
// so that a config round-trips the same way whatever produced the file:
// ConfigFromGguf(file written with these keys) gives back the config.
//
// Thread safety: pure function of its arguments; the writer is not shared.
// Ownership: nothing retained.
#pragma once

#include "formats/gguf_writer.h"
#include "model/config.h"

namespace formiga {

// Sets context/embedding/block/feed-forward sizes, head counts, norm epsilon,
// rope base and dimension, key/value length (gemma3 or head_dim * n_heads !=
// hidden_size), sliding window, vocab size (llama), linear/yarn rope scaling
// and the soft-capping values. Llama-3 rope scaling is not a key: it is the
// rope_freqs.weight tensor, which the caller writes.
// NOTE: gemma3's sliding-window pattern is written only when it is not
// llama.cpp's hard-coded 6 (formiga reads the key; llama.cpp ignores it).
void WriteArchMetadata(const ModelConfig& config, GgufWriter& writer);

}  // namespace formiga
