// WhatsappConfig: everything the channel needs, from a JSON config file and
// the environment. Secrets (verify token, app secret, access token) come
// only from the environment or the file — never from the command line — and
// are never logged (Describe() prints them as "set"/"unset").
//
// Thread safety: a plain value.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace formiga::whatsapp {

// Texts the bot sends without the model. Defaults per `language`
// ("pt-BR" or "en"); each can be overridden in the config file.
struct Texts {
  std::string help;
  std::string reset_done;
  std::string non_text;       // audio, image, sticker, location, video, document, unsupported
  std::string rate_limited;
  std::string too_long;
  std::string error;          // the model failed to answer
  std::string empty_reply;    // the model produced nothing
};
Texts DefaultTexts(const std::string& language);

struct WhatsappConfig {
  // Secrets. app_secret empty is refused unless insecure_dev.
  std::string verify_token;
  std::string app_secret;
  std::string access_token;
  // When set, the access token is read from this file at start and again
  // while sending is paused by error 190, so fixing the file resumes sending.
  std::string access_token_file;
  std::string phone_number_id;
  std::string graph_base_url = "https://graph.facebook.com";
  std::string graph_version = "v23.0";

  std::string webhook_path = "/webhook";
  std::string db_path = "formiga-whatsapp.db";
  std::string sqlite_synchronous = "FULL";  // FULL: survives power loss; NORMAL: process crashes only
  bool insecure_dev = false;  // accept unsigned webhooks (development only)

  // Conversation.
  std::string language = "pt-BR";
  std::string system_prompt;                 // empty: a default per language
  int64_t history_tokens = 2048;             // budget of the rendered history (0: model context)
  int64_t max_reply_tokens = 256;
  float temperature = 0.7f;
  int64_t seed = -1;                         // -1: random per reply
  double quiet_window_s = 3.0;               // wait this long after a user's last message
  int workers = 4;                           // replies generated at once
  bool reply_to_reactions = true;
  bool typing_indicator = true;              // read receipt + "typing…" while generating
  Texts texts;

  // Abuse control.
  std::vector<std::string> allow_list;       // empty: everyone
  int64_t rate_limit_per_minute = 20;        // messages per user per minute (0: off)
  int64_t max_message_chars = 4096;
  int64_t max_body_bytes = 1 << 20;

  // Sending.
  int64_t max_attempts = 12;
  double retry_base_s = 1.0;
  double retry_max_s = 300.0;
  double paused_probe_s = 30.0;              // while paused by 190, retry this often
  double graph_timeout_s = 20.0;

  // Checks values and that the secrets needed are present; says which
  // variable or key to set.
  Status Validate() const;
  // A log line without secrets.
  std::string Describe() const;
};

// Environment variables read by LoadConfig (they override the file).
inline constexpr const char* kEnvVerifyToken = "FORMIGA_WHATSAPP_VERIFY_TOKEN";
inline constexpr const char* kEnvAppSecret = "FORMIGA_WHATSAPP_APP_SECRET";
inline constexpr const char* kEnvAccessToken = "FORMIGA_WHATSAPP_ACCESS_TOKEN";
inline constexpr const char* kEnvAccessTokenFile = "FORMIGA_WHATSAPP_ACCESS_TOKEN_FILE";
inline constexpr const char* kEnvPhoneNumberId = "FORMIGA_WHATSAPP_PHONE_NUMBER_ID";
inline constexpr const char* kEnvGraphUrl = "FORMIGA_WHATSAPP_GRAPH_URL";
inline constexpr const char* kEnvGraphVersion = "FORMIGA_WHATSAPP_GRAPH_VERSION";
inline constexpr const char* kEnvDb = "FORMIGA_WHATSAPP_DB";

// Applies a JSON object (the file's "whatsapp" section, or the whole file).
// Unknown keys are errors (a typo must not silently fall back to a default).
Status ApplyConfigJson(const nlohmann::json& j, WhatsappConfig& config);
// Defaults, then `path` (when not empty), then the environment.
Result<WhatsappConfig> LoadConfig(const std::string& path);
// Re-reads access_token_file (when set) into config.access_token.
Status ReloadAccessToken(WhatsappConfig& config);

}  // namespace formiga::whatsapp
