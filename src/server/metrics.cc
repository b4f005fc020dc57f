#include "server/metrics.h"

#include <cstdio>

namespace formiga::server {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

void Gauge(std::string& out, const char* name, const char* help, const char* type, double v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " + Num(v) +
         "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::Render(const std::string& name, const std::string& help, std::string& out) const {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    char le[32];
    std::snprintf(le, sizeof(le), "%g", bounds_[i]);
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cum) + "\n";
  }
  cum += counts_.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + Num(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

ServerMetrics::ServerMetrics()
    : ttft_({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      itl_({0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.25, 0.5, 1, 2.5}),
      duration_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}) {}

void ServerMetrics::CountRequest(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void ServerMetrics::AddTokens(int64_t prompt, int64_t generated, int64_t cached_prompt) {
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += static_cast<uint64_t>(prompt);
  generated_tokens_ += static_cast<uint64_t>(generated);
  cached_prompt_tokens_ += static_cast<uint64_t>(cached_prompt);
}

void ServerMetrics::ObserveTimeToFirstToken(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  ttft_.Observe(s);
}

void ServerMetrics::ObserveInterTokenLatency(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  itl_.Observe(s);
}

void ServerMetrics::ObserveRequestDuration(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  duration_.Observe(s);
}

void ServerMetrics::AddInFlight(int delta) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_ += delta;
}

void ServerMetrics::CountCancelled() {
  std::lock_guard<std::mutex> lock(mu_);
  ++cancelled_;
}

std::string ServerMetrics::Render(const EngineSnapshot& e) const {
  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  out += "# HELP formiga_requests_total HTTP requests by route and status code.\n"
         "# TYPE formiga_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += "formiga_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
           std::to_string(n) + "\n";
  }
  Gauge(out, "formiga_prompt_tokens_total", "Prompt tokens of finished generations.", "counter",
        static_cast<double>(prompt_tokens_));
  Gauge(out, "formiga_prompt_tokens_cached_total", "Prompt tokens whose KV came from the prefix cache.", "counter",
        static_cast<double>(cached_prompt_tokens_));
  Gauge(out, "formiga_generated_tokens_total", "Generated tokens.", "counter", static_cast<double>(generated_tokens_));
  Gauge(out, "formiga_requests_cancelled_total", "Generations cancelled (client gone, timeout, shutdown).", "counter",
        static_cast<double>(cancelled_));
  Gauge(out, "formiga_requests_in_flight", "Generation requests being served now.", "gauge",
        static_cast<double>(in_flight_));
  Gauge(out, "formiga_queue_depth", "Accepted sequences waiting for a slot in the engine.", "gauge",
        static_cast<double>(e.waiting));
  Gauge(out, "formiga_running_sequences", "Sequences with KV in the cache.", "gauge", static_cast<double>(e.running));
  Gauge(out, "formiga_kv_blocks_total", "KV cache blocks.", "gauge", static_cast<double>(e.kv_blocks_total));
  Gauge(out, "formiga_kv_blocks_free", "KV cache blocks allocatable now (free or only cached).", "gauge",
        static_cast<double>(e.kv_blocks_free));
  Gauge(out, "formiga_kv_blocks_used", "KV cache blocks held by sequences.", "gauge",
        static_cast<double>(e.kv_blocks_total - e.kv_blocks_free));
  Gauge(out, "formiga_kv_block_size", "Positions per KV block.", "gauge", static_cast<double>(e.kv_block_size));
  Gauge(out, "formiga_prefix_cache_lookups_total", "Full-block prefix-cache lookups.", "counter",
        static_cast<double>(e.prefix_lookups));
  Gauge(out, "formiga_prefix_cache_hits_total", "Full-block prefix-cache hits.", "counter",
        static_cast<double>(e.prefix_hits));
  Gauge(out, "formiga_prefix_cache_hit_rate", "Prefix-cache hits / lookups since start.", "gauge",
        e.prefix_lookups ? static_cast<double>(e.prefix_hits) / static_cast<double>(e.prefix_lookups) : 0.0);
  Gauge(out, "formiga_preemptions_total", "Sequences preempted (KV dropped, recomputed later).", "counter",
        static_cast<double>(e.preemptions));
  Gauge(out, "formiga_engine_steps_total", "Engine iterations that ran the model.", "counter",
        static_cast<double>(e.steps));
  ttft_.Render("formiga_time_to_first_token_seconds", "Time from arrival to the first generated token.", out);
  itl_.Render("formiga_inter_token_latency_seconds", "Time between consecutive generated tokens of a request.", out);
  duration_.Render("formiga_request_duration_seconds", "Time from arrival to the last token.", out);
  return out;
}

}  // namespace formiga::server
