#include "channels/whatsapp/config.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace formiga::whatsapp {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": cannot open: check the path and its permissions");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Texts DefaultTexts(const std::string& language) {
  Texts t;
  if (language.rfind("pt", 0) == 0) {
    t.help =
        "Olá! Sou um assistente que roda num modelo de linguagem local. Mande sua pergunta em texto.\n"
        "Comandos:\n/reiniciar (ou /reset) — apaga a nossa conversa e começa do zero\n/help — esta ajuda";
    t.reset_done = "Pronto, esqueci a nossa conversa. Podemos começar de novo.";
    t.non_text = "Desculpe, por enquanto só entendo mensagens de texto. Pode escrever a sua pergunta?";
    t.rate_limited = "Você mandou muitas mensagens em pouco tempo. Espere um minuto e tente de novo, por favor.";
    t.too_long = "Sua mensagem é longa demais para mim. Pode resumir em uma mensagem menor?";
    t.error = "Desculpe, tive um problema para responder agora. Tente de novo daqui a pouco.";
    t.empty_reply = "Desculpe, não consegui formular uma resposta. Pode reformular a pergunta?";
  } else {
    t.help =
        "Hi! I am an assistant running on a local language model. Send your question as text.\n"
        "Commands:\n/reset (or /reiniciar) — forget our conversation and start over\n/help — this help";
    t.reset_done = "Done, I forgot our conversation. We can start over.";
    t.non_text = "Sorry, for now I only understand text messages. Could you type your question?";
    t.rate_limited = "You sent many messages in a short time. Please wait a minute and try again.";
    t.too_long = "Your message is too long for me. Could you send a shorter one?";
    t.error = "Sorry, I had a problem answering just now. Please try again in a moment.";
    t.empty_reply = "Sorry, I could not come up with an answer. Could you rephrase the question?";
  }
  return t;
}

Status WhatsappConfig::Validate() const {
  if (app_secret.empty() && !insecure_dev) {
    return Status::InvalidArgument(
        std::string("whatsapp: no app secret: set ") + kEnvAppSecret +
        " (or \"app_secret\" in the config file) so webhook signatures can be verified; "
        "for local development only, `formiga serve --whatsapp-insecure-dev` (or `formiga whatsapp serve "
        "--insecure-dev`) accepts unsigned webhooks");
  }
  if (verify_token.empty()) {
    return Status::InvalidArgument(std::string("whatsapp: no verify token: set ") + kEnvVerifyToken +
                                   " (or \"verify_token\" in the config file) to the token entered in Meta's "
                                   "webhook settings");
  }
  if (access_token.empty()) {
    return Status::InvalidArgument(std::string("whatsapp: no access token: set ") + kEnvAccessToken + " or " +
                                   kEnvAccessTokenFile + " (or \"access_token\"/\"access_token_file\" in the config)");
  }
  if (phone_number_id.empty()) {
    return Status::InvalidArgument(std::string("whatsapp: no phone-number id: set ") + kEnvPhoneNumberId +
                                   " (or \"phone_number_id\"); Meta's app dashboard shows it under WhatsApp > API setup");
  }
  if (webhook_path.empty() || webhook_path[0] != '/') {
    return Status::InvalidArgument("whatsapp: webhook_path must start with '/' (e.g. \"/webhook\")");
  }
  if (graph_base_url.rfind("http://", 0) != 0 && graph_base_url.rfind("https://", 0) != 0) {
    return Status::InvalidArgument("whatsapp: graph_base_url must start with http:// or https://, got '" +
                                   graph_base_url + "'");
  }
  if (quiet_window_s < 0 || workers < 1 || max_reply_tokens < 1 || max_attempts < 1 || retry_base_s < 0 ||
      max_body_bytes < 1024 || max_message_chars < 1 || history_tokens < 0) {
    return Status::InvalidArgument(
        "whatsapp: out-of-range setting (need quiet_window_s >= 0, workers >= 1, max_reply_tokens >= 1, "
        "max_attempts >= 1, retry_base_s >= 0, max_body_bytes >= 1024, max_message_chars >= 1, history_tokens >= 0)");
  }
  if (sqlite_synchronous != "FULL" && sqlite_synchronous != "NORMAL") {
    return Status::InvalidArgument("whatsapp: sqlite_synchronous must be FULL or NORMAL");
  }
  return Status::Ok();
}

std::string WhatsappConfig::Describe() const {
  auto set = [](const std::string& s) { return s.empty() ? "unset" : "set"; };
  std::ostringstream o;
  o << "webhook " << webhook_path << ", graph " << graph_base_url << "/" << graph_version << ", phone-number id "
    << phone_number_id << ", db " << db_path << ", app secret " << set(app_secret) << ", verify token "
    << set(verify_token) << ", access token " << set(access_token) << (insecure_dev ? ", INSECURE dev mode" : "")
    << ", language " << language << ", quiet window " << quiet_window_s << " s, workers " << workers;
  if (!allow_list.empty()) o << ", allow-list of " << allow_list.size();
  return o.str();
}

Status ApplyConfigJson(const nlohmann::json& j, WhatsappConfig& c) {
  if (!j.is_object()) return Status::InvalidArgument("whatsapp config: expected a JSON object");
  // Language first: texts default from it, then individual overrides.
  if (j.contains("language")) {
    if (!j["language"].is_string()) return Status::InvalidArgument("whatsapp config: \"language\" must be a string");
    c.language = j["language"].get<std::string>();
    c.texts = DefaultTexts(c.language);
  }
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const nlohmann::json& v = it.value();
      if (k == "language") continue;
      if (k == "verify_token") c.verify_token = v.get<std::string>();
      else if (k == "app_secret") c.app_secret = v.get<std::string>();
      else if (k == "access_token") c.access_token = v.get<std::string>();
      else if (k == "access_token_file") c.access_token_file = v.get<std::string>();
      else if (k == "phone_number_id") c.phone_number_id = v.get<std::string>();
      else if (k == "graph_base_url") c.graph_base_url = v.get<std::string>();
      else if (k == "graph_version") c.graph_version = v.get<std::string>();
      else if (k == "webhook_path") c.webhook_path = v.get<std::string>();
      else if (k == "db_path") c.db_path = v.get<std::string>();
      else if (k == "sqlite_synchronous") c.sqlite_synchronous = v.get<std::string>();
      else if (k == "system_prompt") c.system_prompt = v.get<std::string>();
      else if (k == "history_tokens") c.history_tokens = v.get<int64_t>();
      else if (k == "max_reply_tokens") c.max_reply_tokens = v.get<int64_t>();
      else if (k == "temperature") c.temperature = v.get<float>();
      else if (k == "seed") c.seed = v.get<int64_t>();
      else if (k == "quiet_window_s") c.quiet_window_s = v.get<double>();
      else if (k == "workers") c.workers = v.get<int>();
      else if (k == "reply_to_reactions") c.reply_to_reactions = v.get<bool>();
      else if (k == "typing_indicator") c.typing_indicator = v.get<bool>();
      else if (k == "allow_list") c.allow_list = v.get<std::vector<std::string>>();
      else if (k == "rate_limit_per_minute") c.rate_limit_per_minute = v.get<int64_t>();
      else if (k == "max_message_chars") c.max_message_chars = v.get<int64_t>();
      else if (k == "max_body_bytes") c.max_body_bytes = v.get<int64_t>();
      else if (k == "max_attempts") c.max_attempts = v.get<int64_t>();
      else if (k == "retry_base_s") c.retry_base_s = v.get<double>();
      else if (k == "retry_max_s") c.retry_max_s = v.get<double>();
      else if (k == "paused_probe_s") c.paused_probe_s = v.get<double>();
      else if (k == "graph_timeout_s") c.graph_timeout_s = v.get<double>();
      else if (k == "texts") {
        for (auto t = v.begin(); t != v.end(); ++t) {
          std::string* dst = nullptr;
          if (t.key() == "help") dst = &c.texts.help;
          else if (t.key() == "reset_done") dst = &c.texts.reset_done;
          else if (t.key() == "non_text") dst = &c.texts.non_text;
          else if (t.key() == "rate_limited") dst = &c.texts.rate_limited;
          else if (t.key() == "too_long") dst = &c.texts.too_long;
          else if (t.key() == "error") dst = &c.texts.error;
          else if (t.key() == "empty_reply") dst = &c.texts.empty_reply;
          if (dst == nullptr) {
            return Status::InvalidArgument("whatsapp config: unknown text \"" + t.key() +
                                           "\" (known: help, reset_done, non_text, rate_limited, too_long, "
                                           "error, empty_reply)");
          }
          *dst = t.value().get<std::string>();
        }
      } else {
        return Status::InvalidArgument("whatsapp config: unknown key \"" + k + "\": see docs/whatsapp.md");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string("whatsapp config: wrong value type: ") + e.what());
  }
  return Status::Ok();
}

Status ReloadAccessToken(WhatsappConfig& c) {
  if (c.access_token_file.empty()) return Status::Ok();
  FORMIGA_ASSIGN_OR_RETURN(std::string token, ReadFile(c.access_token_file));
  token = Trim(token);
  if (token.empty()) return Status::InvalidArgument(c.access_token_file + ": empty access token file");
  c.access_token = token;
  return Status::Ok();
}

Result<WhatsappConfig> LoadConfig(const std::string& path) {
  WhatsappConfig c;
  c.texts = DefaultTexts(c.language);
  if (!path.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return Status::InvalidArgument(path + ": not valid JSON");
    if (j.is_object() && j.contains("whatsapp")) j = j["whatsapp"];
    Status st = ApplyConfigJson(j, c);
    if (!st.ok()) return st.WithContext(path);
  }
  auto env = [](const char* name, std::string& dst) {
    std::string v = Env(name);
    if (!v.empty()) dst = v;
  };
  env(kEnvVerifyToken, c.verify_token);
  env(kEnvAppSecret, c.app_secret);
  env(kEnvAccessToken, c.access_token);
  env(kEnvAccessTokenFile, c.access_token_file);
  env(kEnvPhoneNumberId, c.phone_number_id);
  env(kEnvGraphUrl, c.graph_base_url);
  env(kEnvGraphVersion, c.graph_version);
  env(kEnvDb, c.db_path);
  while (c.graph_base_url.size() > 8 && c.graph_base_url.back() == '/') c.graph_base_url.pop_back();
  FORMIGA_RETURN_IF_ERROR(ReloadAccessToken(c));
  return c;
}

}  // namespace formiga::whatsapp
