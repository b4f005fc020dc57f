#include "channels/whatsapp/graph_client.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace formiga::whatsapp {

std::pair<std::string, std::string> SplitUrl(const std::string& url) {
  size_t scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t slash = url.find('/', start);
  if (slash == std::string::npos) return {url, ""};
  std::string prefix = url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return {url.substr(0, slash), prefix};
}

Disposition Classify(const GraphResult& r) {
  if (r.ok()) return Disposition::kDone;
  switch (r.error_code) {
    case 190: return Disposition::kAuth;
    case 1: case 2: case 4: case 130429: case 131056: case 80007: case 131000: case 133004:
      return Disposition::kRetry;
    case 131047: case 131026: case 100: case 10: case 368: case 131031: case 131051: case 131052:
      return Disposition::kPermanent;
    default: break;
  }
  if (r.http_status == 0 || r.http_status >= 500 || r.http_status == 429) return Disposition::kRetry;
  if (r.http_status == 401) return Disposition::kAuth;
  return Disposition::kPermanent;
}

GraphResult GraphClient::Post(const std::string& body, const std::string& token) const {
  GraphResult out;
  auto [host, prefix] = SplitUrl(endpoint_.base_url);
  httplib::Client cli(host);
  const auto secs = static_cast<time_t>(endpoint_.timeout_s);
  const auto usecs = static_cast<time_t>((endpoint_.timeout_s - static_cast<double>(secs)) * 1e6);
  cli.set_connection_timeout(secs, usecs);
  cli.set_read_timeout(secs, usecs);
  cli.set_write_timeout(secs, usecs);
  cli.set_keep_alive(false);
  const std::string path = prefix + "/" + endpoint_.version + "/" + endpoint_.phone_number_id + "/messages";
  httplib::Headers headers = {{"Authorization", "Bearer " + token}};
  httplib::Result res = cli.Post(path, headers, body, "application/json");
  if (!res) {
    out.error_message = "no answer from " + host + ": " + httplib::to_string(res.error());
    return out;
  }
  out.http_status = res->status;
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const nlohmann::json& e = j["error"];
    out.error_code = e.value("code", 0);
    out.error_message = e.value("message", std::string("(no message)"));
    if (e.contains("error_data") && e["error_data"].is_object()) {
      std::string details = e["error_data"].value("details", std::string());
      if (!details.empty()) out.error_message += ": " + details;
    }
    if (out.error_code == 0 && out.ok()) out.error_code = -1;  // an error body with 2xx: not delivered
    return out;
  }
  if (!out.ok()) {
    out.error_message = "HTTP " + std::to_string(res->status) + " without a Graph error body";
    return out;
  }
  if (j.is_object() && j.contains("messages") && j["messages"].is_array() && !j["messages"].empty() &&
      j["messages"][0].is_object()) {
    out.wamid = j["messages"][0].value("id", std::string());
  }
  return out;
}

GraphResult GraphClient::Send(const SendText& msg, const std::string& token) const {
  nlohmann::json body = {{"messaging_product", "whatsapp"},
                         {"recipient_type", "individual"},
                         {"to", msg.to},
                         {"type", "text"},
                         {"text", {{"preview_url", false}, {"body", msg.body}}}};
  if (!msg.context_wamid.empty()) body["context"] = {{"message_id", msg.context_wamid}};
  if (!msg.callback_data.empty()) body["biz_opaque_callback_data"] = msg.callback_data;
  return Post(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), token);
}

GraphResult GraphClient::MarkRead(const std::string& wamid, bool typing, const std::string& token) const {
  nlohmann::json body = {{"messaging_product", "whatsapp"}, {"status", "read"}, {"message_id", wamid}};
  if (typing) body["typing_indicator"] = {{"type", "text"}};
  return Post(body.dump(), token);
}

}  // namespace formiga::whatsapp
