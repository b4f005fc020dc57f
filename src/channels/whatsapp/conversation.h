// Building the model's input from a user's stored history and new messages:
// system prompt, then the newest turns that fit the token budget, then the
// new user turn (several burst messages joined by newlines).
//
// Thread safety: pure functions (the generator must be thread-safe).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "channels/whatsapp/reply_generator.h"
#include "channels/whatsapp/store.h"

namespace formiga::whatsapp {

// Default system prompt per language ("pt-BR" or "en").
std::string DefaultSystemPrompt(const std::string& language);

// Messages for the model: [system] + the newest history turns such that the
// rendered prompt takes at most `budget_tokens` + `user_text`. The oldest
// turns go first (in user/assistant pairs, so the history never starts with
// an assistant turn). Errors when even the system prompt and the new
// message alone exceed the budget.
Result<nlohmann::json> BuildMessages(const std::string& system_prompt, const std::vector<Turn>& history,
                                     const std::string& user_text, int64_t budget_tokens,
                                     ReplyGenerator& generator);

}  // namespace formiga::whatsapp
