// Prometheus metrics of `formiga serve` (text exposition format 0.0.4):
// requests by route and status, prompt/generated tokens, time to first token
// and inter-token latency histograms, plus the engine's gauges (queue depth,
// running sequences, KV blocks, prefix-cache hit rate) taken from an
// EngineSnapshot when rendered.
//
// Thread safety: every method is thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/engine_service.h"

namespace formiga::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  // Appends the _bucket/_sum/_count lines of `name`.
  void Render(const std::string& name, const std::string& help, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); last = +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

class ServerMetrics {
 public:
  ServerMetrics();

  void CountRequest(const std::string& route, int status);
  void AddTokens(int64_t prompt, int64_t generated, int64_t cached_prompt);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveInterTokenLatency(double seconds);
  void ObserveRequestDuration(double seconds);
  void AddInFlight(int delta);
  void CountCancelled();

  std::string Render(const EngineSnapshot& engine) const;

 private:
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  uint64_t prompt_tokens_ = 0;
  uint64_t generated_tokens_ = 0;
  uint64_t cached_prompt_tokens_ = 0;
  uint64_t cancelled_ = 0;
  int64_t in_flight_ = 0;
  Histogram ttft_;
  Histogram itl_;
  Histogram duration_;
};

}  // namespace formiga::server
