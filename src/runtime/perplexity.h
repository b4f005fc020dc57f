// Perplexity of a model on a token stream, with llama.cpp's rules so that the
// numbers compare 1:1 with its `llama-perplexity` tool:
//   - the tokens are split into floor(n / n_ctx) chunks of n_ctx tokens (the
//     tail that does not fill a chunk is not used);
//   - each chunk is evaluated from an empty cache; when the model adds BOS,
//     the chunk's first token is replaced by BOS;
//   - only the second half of each chunk is scored: logits at positions
//     j = n_ctx/2 … n_ctx-2 predict token j+1 (the first half is context).
// PPL = exp(mean negative log-likelihood over every scored token).
//
// Optionally the scored logits are dumped ([n_scored, vocab] float32 .npy)
// and compared with a dump from another run or engine: mean/max KL
// divergence KL(base || this) and top-1 agreement.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"

namespace formiga {

struct PerplexityOptions {
  int64_t n_ctx = 512;
  int64_t batch = 128;       // tokens per forward pass (bounds the logits buffer)
  int64_t max_chunks = 0;    // 0: all
  int32_t bos_id = -1;       // >= 0: first token of each chunk becomes BOS
  std::string dump_logits;   // .npy path, or empty
  std::string kl_base;       // .npy path, or empty
};

struct PerplexityResult {
  int64_t n_tokens = 0;
  int64_t n_chunks = 0;
  int64_t n_scored = 0;
  double perplexity = 0;
  double nll_stderr = 0;            // standard error of the mean NLL
  std::vector<double> chunk_ppl;    // cumulative PPL after each chunk (what llama.cpp prints)
  bool has_kl = false;
  double mean_kl = 0, max_kl = 0, top1_agreement = 0;
};

Result<PerplexityResult> ComputePerplexity(Model& model, const std::vector<int32_t>& tokens,
                                           const PerplexityOptions& options,
                                           const std::function<void(int64_t chunk, double ppl)>& progress = nullptr);

}  // namespace formiga
