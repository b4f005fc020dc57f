#include "cli/whatsapp_generator.h"

#include <condition_variable>
#include <memory>
#include <random>

namespace formiga::cli {

Result<std::vector<int32_t>> EngineReplyGenerator::Encode(const nlohmann::json& messages) {
  std::lock_guard<std::mutex> lock(encode_mu_);
  return session_.EncodeChat(messages, /*add_generation_prompt=*/true);
}

Result<int64_t> EngineReplyGenerator::CountTokens(const nlohmann::json& messages) {
  FORMIGA_ASSIGN_OR_RETURN(std::vector<int32_t> ids, Encode(messages));
  return static_cast<int64_t>(ids.size());
}

int64_t EngineReplyGenerator::ContextTokens() const { return session_.engine->options().n_ctx; }

Result<std::string> EngineReplyGenerator::Generate(const nlohmann::json& messages,
                                                   const whatsapp::GenerateOptions& options) {
  if (cancelled_) return Status::Cancelled("whatsapp: shutting down");
  FORMIGA_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, Encode(messages));

  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::string text;
    bool done = false;
    FinishReason finish = FinishReason::kNone;
    Status error;
  };
  auto shared = std::make_shared<Shared>();
  GenerationRequest req;
  req.prompt = std::move(prompt);
  req.max_tokens = options.max_tokens;
  req.sampling.temperature = options.temperature;
  req.sampling.seed = options.seed >= 0 ? static_cast<uint64_t>(options.seed) : std::random_device{}();
  // Runs on the engine thread: only appends and signals.
  req.on_event = [shared](const TokenEvent& ev) {
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->text += ev.text;
    if (ev.done) {
      shared->done = true;
      shared->finish = ev.finish;
      shared->error = ev.error;
      shared->cv.notify_all();
    }
    return true;
  };
  FORMIGA_ASSIGN_OR_RETURN(int64_t id, service_.Submit(std::move(req)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.insert(id);
  }
  if (cancelled_) service_.Cancel(id);  // CancelAll ran between Submit and the insert
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->done; });
  {
    std::lock_guard<std::mutex> l(mu_);
    in_flight_.erase(id);
  }
  if (shared->finish == FinishReason::kCancelled) return Status::Cancelled("whatsapp: generation cancelled");
  if (shared->finish == FinishReason::kError) {
    return shared->error.ok() ? Status::Internal("whatsapp: generation failed") : shared->error;
  }
  return shared->text;
}

void EngineReplyGenerator::CancelAll() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t id : in_flight_) service_.Cancel(id);
}

}  // namespace formiga::cli
