// Sampler: turns a row of logits into the next token.
//
// The chain, in order (llama.cpp's default order, so that the same settings
// give the same distribution as there):
//   1. penalties over the last `penalty_last_n` tokens of the history:
//      repetition (logit / r if positive, logit * r if negative), then
//      presence (- p once a token occurred) and frequency (- f * count);
//   2. logit bias (added; -inf bans a token);
//   3. top-k, typical-p, top-p, min-p filters (each keeps at least one token);
//   4. temperature, softmax, and a draw from a seeded generator.
// temperature <= 0 means greedy: the arg-max after steps 1-2 (ties: lowest id).
//
// Thread safety: a Sampler holds its random state; one per sequence.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <utility>
#include <vector>

#include "core/status.h"

namespace formiga {

struct SamplingParams {
  float temperature = 0.8f;   // <= 0: greedy
  int32_t top_k = 40;         // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off (keep tokens with p >= min_p * p_max)
  float typical_p = 1.0f;     // >= 1: off
  float repetition_penalty = 1.0f;  // 1: off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t penalty_last_n = 64;      // window of the history the penalties look at; -1 = all
  std::vector<std::pair<int32_t, float>> logit_bias;  // token id -> added value
  uint64_t seed = 0;
  // > 0: also report the model's `top_logprobs` most likely tokens (log-softmax
  // after penalties and bias, before the filters and temperature) and the
  // sampled token's log-probability under that same distribution (the API's
  // logprobs). 0: off, no extra cost. At most 20.
  int32_t top_logprobs = 0;

  // Range checks with messages that name the field and the valid range.
  Status Validate(int64_t vocab_size) const;
};

struct SampledToken {
  int32_t id = -1;
  float logprob = 0.0f;  // log-probability of `id` under the final distribution
  // Only when params.top_logprobs > 0: log-probability of `id` under the
  // model's distribution, and the top_logprobs most likely (id, logprob), best first.
  float model_logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;
};

class Sampler {
 public:
  // REQUIRES: params.Validate(vocab_size).ok()
  Sampler(SamplingParams params, int64_t vocab_size);

  // Picks the next token. `logits` (vocab_size) is used as scratch and
  // modified; `history` is the sequence so far (prompt + generated).
  SampledToken Sample(std::span<float> logits, std::span<const int32_t> history);

  const SamplingParams& params() const { return params_; }

 private:
  void ApplyPenalties(std::span<float> logits, std::span<const int32_t> history);
  // log Σ exp(logits): the model distribution's normalizer.
  static double LogSumExp(std::span<const float> logits);
  // `lse`: LogSumExp(logits), which the greedy path has already computed.
  void FillTopLogprobs(std::span<const float> logits, double lse, SampledToken& t);

  SamplingParams params_;
  int64_t vocab_size_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> candidates_;  // scratch: (logit, id)
  std::vector<int32_t> counts_;                       // scratch: occurrences in the window
};

}  // namespace formiga
