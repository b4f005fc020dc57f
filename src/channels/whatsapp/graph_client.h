// GraphClient: the calls the channel makes to Meta's Graph API — send a text
// message, mark a message read (with the "typing…" indicator) — and how
// their errors are classified. Branches on the error code, never the text.
//
// Thread safety: thread-safe (each call uses its own connection).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace formiga::whatsapp {

// "https://host:port/prefix/" -> {"https://host:port", "/prefix"} (prefix
// empty when the URL has no path).
std::pair<std::string, std::string> SplitUrl(const std::string& url);

struct GraphEndpoint {
  std::string base_url;        // "https://graph.facebook.com" (a path prefix is allowed)
  std::string version;         // "v23.0"
  std::string phone_number_id;
  double timeout_s = 20.0;
};

struct GraphResult {
  int http_status = 0;        // 0: no HTTP answer (connection refused, timeout)
  int64_t error_code = 0;     // error.code of Meta's error body, 0 when none
  std::string error_message;  // for logs and the outbox row (never contains the token)
  std::string wamid;          // messages[0].id on success
  bool ok() const { return http_status >= 200 && http_status < 300 && error_code == 0; }
};

enum class Disposition {
  kDone,       // delivered to the Graph API
  kRetry,      // transient: retry with backoff (5xx, 1, 2, 130429, 131056, 80007, no answer)
  kPermanent,  // never retry (131047, 131026, 100, 10, 368, 131031, other 4xx)
  kAuth,       // 190: the access token is expired or invalid — pause sending
};
Disposition Classify(const GraphResult& r);

struct SendText {
  std::string to;             // wa_id
  std::string body;           // at most 4,096 characters
  std::string context_wamid;  // quote this message (empty: none)
  std::string callback_data;  // biz_opaque_callback_data (echoed in status webhooks)
};

class GraphClient {
 public:
  explicit GraphClient(GraphEndpoint endpoint) : endpoint_(std::move(endpoint)) {}
  GraphResult Send(const SendText& msg, const std::string& access_token) const;
  // Read receipt for `wamid`, plus "typing…" when `typing`.
  GraphResult MarkRead(const std::string& wamid, bool typing, const std::string& access_token) const;

 private:
  GraphResult Post(const std::string& json_body, const std::string& access_token) const;
  GraphEndpoint endpoint_;
};

}  // namespace formiga::whatsapp
