// The WhatsApp channel's ReplyGenerator over the shared engine: renders the
// conversation with the model's chat template (ModelSession::EncodeChat) and
// submits it to the EngineService like any other door (no generation loop
// of its own).
//
// Thread safety: Generate/CountTokens from any thread; CancelAll from any.
#pragma once

#include <atomic>
#include <mutex>
#include <set>

#include "channels/whatsapp/reply_generator.h"
#include "cli/model_session.h"
#include "runtime/engine_service.h"

namespace formiga::cli {

class EngineReplyGenerator final : public whatsapp::ReplyGenerator {
 public:
  // `service` and `session` must outlive the generator.
  EngineReplyGenerator(EngineService& service, const ModelSession& session) : service_(service), session_(session) {}

  Result<std::string> Generate(const nlohmann::json& messages, const whatsapp::GenerateOptions& options) override;
  Result<int64_t> CountTokens(const nlohmann::json& messages) override;
  int64_t ContextTokens() const override;
  void CancelAll() override;

 private:
  Result<std::vector<int32_t>> Encode(const nlohmann::json& messages);

  EngineService& service_;
  const ModelSession& session_;
  std::mutex encode_mu_;  // NOTE: the template renderer and tokenizer are not promised thread-safe
  std::mutex mu_;
  std::set<int64_t> in_flight_;  // guarded by mu_
  std::atomic<bool> cancelled_{false};
};

}  // namespace formiga::cli
