#include "channels/whatsapp/conversation.h"

namespace formiga::whatsapp {

std::string DefaultSystemPrompt(const std::string& language) {
  if (language.rfind("pt", 0) == 0) {
    return "Você é um assistente prestativo que conversa pelo WhatsApp. Responda em português do Brasil, "
           "de forma curta e clara, no idioma do usuário quando ele escrever em outro.";
  }
  return "You are a helpful assistant chatting over WhatsApp. Answer briefly and clearly, in the user's language.";
}

Result<nlohmann::json> BuildMessages(const std::string& system_prompt, const std::vector<Turn>& history,
                                     const std::string& user_text, int64_t budget_tokens,
                                     ReplyGenerator& generator) {
  auto build = [&](size_t first) {
    nlohmann::json m = nlohmann::json::array();
    if (!system_prompt.empty()) m.push_back({{"role", "system"}, {"content", system_prompt}});
    for (size_t i = first; i < history.size(); ++i) {
      m.push_back({{"role", history[i].role}, {"content", history[i].content}});
    }
    m.push_back({{"role", "user"}, {"content", user_text}});
    return m;
  };
  // Never start with an assistant turn, nor with two user turns after a
  // crash left one unanswered: skip to the first user turn.
  auto next_user = [&](size_t i) {
    while (i < history.size() && history[i].role != "user") ++i;
    return i;
  };
  // NOTE: binary search over the first kept turn: rendering is linear in the
  // history, and a history of n turns needs log n renders, not n.
  size_t lo = next_user(0), hi = history.size();  // answer in [lo, hi]
  FORMIGA_ASSIGN_OR_RETURN(int64_t all, generator.CountTokens(build(lo)));
  if (all <= budget_tokens) return build(lo);
  FORMIGA_ASSIGN_OR_RETURN(int64_t none, generator.CountTokens(build(history.size())));
  if (none > budget_tokens) {
    return Status::OutOfRange("the message takes " + std::to_string(none) + " tokens with the system prompt, over "
                              "the budget of " + std::to_string(budget_tokens) +
                              ": raise history_tokens or lower max_message_chars");
  }
  while (lo + 1 < hi) {
    size_t mid = lo + (hi - lo) / 2;
    FORMIGA_ASSIGN_OR_RETURN(int64_t n, generator.CountTokens(build(mid)));
    if (n <= budget_tokens) {
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return build(next_user(hi));
}

}  // namespace formiga::whatsapp
