#include "runtime/sampler.h"

#include "core/vec_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace formiga {

Status SamplingParams::Validate(int64_t vocab_size) const {
  auto bad = [](const std::string& m) { return Status::InvalidArgument(m); };
  if (!std::isfinite(temperature) || temperature > 100.0f) return bad("temperature must be a finite number in [0, 100]");
  if (top_p <= 0.0f || top_p > 1.0f || !std::isfinite(top_p)) return bad("top_p must be in (0, 1]");
  if (min_p < 0.0f || min_p > 1.0f || !std::isfinite(min_p)) return bad("min_p must be in [0, 1]");
  if (typical_p <= 0.0f || typical_p > 1.0f || !std::isfinite(typical_p)) return bad("typical_p must be in (0, 1]");
  if (repetition_penalty <= 0.0f || !std::isfinite(repetition_penalty)) {
    return bad("repetition_penalty must be a positive number (1 = off)");
  }
  if (!std::isfinite(presence_penalty) || std::fabs(presence_penalty) > 100.0f) {
    return bad("presence_penalty must be in [-100, 100]");
  }
  if (!std::isfinite(frequency_penalty) || std::fabs(frequency_penalty) > 100.0f) {
    return bad("frequency_penalty must be in [-100, 100]");
  }
  if (top_logprobs < 0 || top_logprobs > 20) return bad("top_logprobs must be in [0, 20]");
  if (penalty_last_n < -1) return bad("penalty_last_n must be -1 (whole history), 0 (off) or positive");
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || id >= vocab_size) {
      return bad("logit_bias names token " + std::to_string(id) + ", outside the vocabulary [0, " +
                 std::to_string(vocab_size) + ")");
    }
    if (std::isnan(bias)) return bad("logit_bias value for token " + std::to_string(id) + " is NaN");
  }
  return Status::Ok();
}

Sampler::Sampler(SamplingParams params, int64_t vocab_size)
    : params_(std::move(params)), vocab_size_(vocab_size), rng_(params_.seed) {}

void Sampler::ApplyPenalties(std::span<float> logits, std::span<const int32_t> history) {
  const bool any = params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                   params_.frequency_penalty != 0.0f;
  if (!any || params_.penalty_last_n == 0 || history.empty()) return;
  size_t n = history.size();
  if (params_.penalty_last_n > 0) n = std::min(n, static_cast<size_t>(params_.penalty_last_n));
  std::span<const int32_t> window = history.subspan(history.size() - n);
  counts_.assign(static_cast<size_t>(vocab_size_), 0);
  for (int32_t id : window) {
    if (id >= 0 && id < vocab_size_) ++counts_[id];
  }
  for (int32_t id : window) {
    if (id < 0 || id >= vocab_size_ || counts_[id] == 0) continue;
    float& l = logits[id];
    if (params_.repetition_penalty != 1.0f) l = l > 0 ? l / params_.repetition_penalty : l * params_.repetition_penalty;
    l -= params_.presence_penalty + params_.frequency_penalty * static_cast<float>(counts_[id]);
    counts_[id] = 0;  // each distinct token once
  }
}

SampledToken Sampler::Sample(std::span<float> logits, std::span<const int32_t> history) {
  ApplyPenalties(logits, history);
  for (const auto& [id, bias] : params_.logit_bias) logits[id] += bias;

  if (params_.temperature <= 0.0f) {
    // The first largest logit, and its log-softmax straight from the logits
    // (float exp terms within 2e-7, a double sum). NOTE: both are vector
    // loops (core/vec_math.h): as plain loops they were 8.5 % of a Gemma-3
    // decode step (a 262k vocabulary) on 2 threads, all of it on one thread.
    const auto best = static_cast<int32_t>(ArgMax(logits.data(), vocab_size_));
    const float max_l = logits[best];
    const double sum = SumExpShifted(logits.data(), vocab_size_, max_l);
    SampledToken t;
    t.id = best;
    t.logprob = static_cast<float>(-std::log(sum));
    if (params_.top_logprobs > 0) FillTopLogprobs(logits, static_cast<double>(max_l) + std::log(sum), t);
    return t;
  }

  // Candidates best first (larger logit, then smaller id); banned (-inf)
  // and NaN logits never enter.
  auto by_logit = [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); };
  if (params_.top_k > 0 && params_.top_k < vocab_size_) {
    // top-k in one vector pass (core/vec_math.h), not a sort of the vocabulary.
    TopK(logits.data(), vocab_size_, params_.top_k, &candidates_);
  } else {
    candidates_.clear();
    candidates_.reserve(static_cast<size_t>(vocab_size_));
    for (int32_t i = 0; i < vocab_size_; ++i) {
      if (logits[i] > -std::numeric_limits<float>::infinity()) candidates_.emplace_back(logits[i], i);
    }
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }
  if (candidates_.empty()) {  // everything banned: fall back to the least banned, id order
    candidates_.emplace_back(0.0f, 0);
  }

  // Probabilities (at temperature 1, as llama.cpp's filters see them).
  std::vector<double> probs(candidates_.size());
  auto softmax = [&]() {
    const double max_l = candidates_.front().first;
    double sum = 0.0;
    for (size_t i = 0; i < candidates_.size(); ++i) sum += probs[i] = std::exp(candidates_[i].first - max_l);
    for (double& p : probs) p /= sum;
  };

  // typical-p: keep tokens whose surprise is closest to the entropy until mass >= typical_p.
  if (params_.typical_p < 1.0f && candidates_.size() > 1) {
    softmax();
    double entropy = 0.0;
    for (double p : probs) entropy -= p > 0 ? p * std::log(p) : 0.0;
    std::vector<size_t> order(candidates_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto shift = [&](size_t i) { return std::fabs(-std::log(std::max(probs[i], 1e-300)) - entropy); };
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return shift(a) < shift(b); });
    double cum = 0.0;
    size_t keep = 0;
    while (keep < order.size()) {
      cum += probs[order[keep++]];
      if (cum >= params_.typical_p) break;
    }
    std::vector<std::pair<float, int32_t>> kept;
    for (size_t i = 0; i < keep; ++i) kept.push_back(candidates_[order[i]]);
    std::sort(kept.begin(), kept.end(), by_logit);
    candidates_ = std::move(kept);
    probs.resize(candidates_.size());
  }

  // top-p: the smallest prefix (by probability) whose mass reaches top_p.
  if (params_.top_p < 1.0f && candidates_.size() > 1) {
    softmax();
    double cum = 0.0;
    size_t keep = 0;
    while (keep < candidates_.size()) {
      cum += probs[keep++];
      if (cum >= params_.top_p) break;
    }
    candidates_.resize(keep);
    probs.resize(keep);
  }

  // min-p: drop tokens with p < min_p * p_max.
  if (params_.min_p > 0.0f && candidates_.size() > 1) {
    softmax();
    const double threshold = params_.min_p * probs.front();
    size_t keep = 1;
    while (keep < candidates_.size() && probs[keep] >= threshold) ++keep;
    candidates_.resize(keep);
    probs.resize(keep);
  }

  // temperature, then draw.
  const float inv_t = 1.0f / params_.temperature;
  const double max_l = candidates_.front().first * inv_t;
  double sum = 0.0;
  for (size_t i = 0; i < candidates_.size(); ++i) sum += probs[i] = std::exp(candidates_[i].first * inv_t - max_l);
  std::uniform_real_distribution<double> uniform(0.0, sum);
  const double r = uniform(rng_);
  double cum = 0.0;
  size_t pick = candidates_.size() - 1;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cum += probs[i];
    if (r < cum) {
      pick = i;
      break;
    }
  }
  const float logprob = static_cast<float>(std::log(probs[pick] / sum));
  SampledToken t;
  t.id = candidates_[pick].second;
  t.logprob = logprob;
  if (params_.top_logprobs > 0) FillTopLogprobs(logits, LogSumExp(logits), t);
  return t;
}

// NOTE: the filters above work on copies (candidates_), so `logits` still
// holds the penalized, biased model distribution here.
double Sampler::LogSumExp(std::span<const float> logits) {
  const auto n = static_cast<int64_t>(logits.size());
  const float max_l = logits[static_cast<size_t>(ArgMax(logits.data(), n))];
  return static_cast<double>(max_l) + std::log(SumExpShifted(logits.data(), n, max_l));
}

void Sampler::FillTopLogprobs(std::span<const float> logits, double lse, SampledToken& t) {
  const auto n_logits = static_cast<int64_t>(logits.size());
  const size_t n = std::min(static_cast<size_t>(params_.top_logprobs), logits.size());
  // The n best in one vector pass (core/vec_math.h); only when -inf or NaN
  // logits leave fewer than n does the whole row get sorted (they are listed
  // last, as before).
  std::vector<std::pair<float, int32_t>> all;
  TopK(logits.data(), n_logits, static_cast<int>(n), &all);
  if (all.size() < n) {
    all.clear();
    all.reserve(logits.size());
    for (size_t i = 0; i < logits.size(); ++i) all.emplace_back(logits[i], static_cast<int32_t>(i));
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  }
  t.top.clear();
  for (size_t i = 0; i < n; ++i) t.top.emplace_back(all[i].second, static_cast<float>(all[i].first - lse));
  t.model_logprob = static_cast<float>(logits[static_cast<size_t>(t.id)] - lse);
}

}  // namespace formiga
