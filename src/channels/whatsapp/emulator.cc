#include "channels/whatsapp/emulator.h"

#include <httplib.h>

#include <chrono>

#include "channels/whatsapp/emulator_page.h"
#include "channels/whatsapp/graph_client.h"
#include "channels/whatsapp/signature.h"
#include "channels/whatsapp/split.h"

namespace formiga::whatsapp {
namespace {

using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// HTTP status Meta uses with each error code (the channel branches on the code).
int HttpStatusFor(int64_t code) {
  if (code == 190) return 401;
  if (code == 1 || code == 2) return 503;
  if (code == 130429 || code == 80007) return 429;
  return 400;
}

std::string ErrorMessageFor(int64_t code) {
  switch (code) {
    case 190: return "Error validating access token: Session has expired";
    case 130429: return "Rate limit hit";
    case 131056: return "(Business Account, Consumer Account) pair rate limit hit";
    case 131047: return "Re-engagement message";
    case 131026: return "Message Undeliverable";
    case 100: return "Invalid parameter";
    case 2: return "Service temporarily unavailable";
    default: return "Error " + std::to_string(code);
  }
}

json ErrorBody(int64_t code) {
  return {{"error",
           {{"message", ErrorMessageFor(code)},
            {"type", "OAuthException"},
            {"code", code},
            {"error_data", {{"messaging_product", "whatsapp"}, {"details", ErrorMessageFor(code)}}},
            {"fbtrace_id", "AemulatorTrace"}}}};
}

}  // namespace

namespace {

// Meta's envelope around one change value: object, entry (the WhatsApp
// Business Account id), changes[0] with field "messages".
json Envelope(const std::string& phone_number_id, const std::string& display_number, json value) {
  value["messaging_product"] = "whatsapp";
  value["metadata"] = {{"display_phone_number", display_number}, {"phone_number_id", phone_number_id}};
  return {{"object", "whatsapp_business_account"},
          {"entry", {{{"id", "102290129340398"}, {"changes", {{{"value", std::move(value)}, {"field", "messages"}}}}}}}};
}

}  // namespace

json MakeMessageNotification(const std::string& phone_number_id, const std::string& display_number,
                             const std::string& from, const std::string& profile_name, const json& message) {
  return Envelope(phone_number_id, display_number,
                  {{"contacts", {{{"profile", {{"name", profile_name}}}, {"wa_id", from}}}}, {"messages", {message}}});
}

json MakeTextMessage(const std::string& from, const std::string& wamid, const std::string& text, int64_t timestamp) {
  return {{"from", from},
          {"id", wamid},
          {"timestamp", std::to_string(timestamp)},
          {"type", "text"},
          {"text", {{"body", text}}}};
}

json MakeStatusNotification(const std::string& phone_number_id, const std::string& display_number,
                            const std::string& wamid, const std::string& recipient, const std::string& status,
                            int64_t timestamp, const std::string& callback_data) {
  json st = {{"id", wamid},
             {"status", status},
             {"timestamp", std::to_string(timestamp)},
             {"recipient_id", recipient}};
  if (!callback_data.empty()) st["biz_opaque_callback_data"] = callback_data;
  return Envelope(phone_number_id, display_number, {{"statuses", {st}}});
}

GraphEmulator::GraphEmulator(EmulatorOptions options)
    : options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {}

GraphEmulator::~GraphEmulator() { Stop(); }

std::string GraphEmulator::base_url() const { return "http://" + options_.host + ":" + std::to_string(port_); }

Result<std::unique_ptr<GraphEmulator>> GraphEmulator::Start(EmulatorOptions options) {
  std::unique_ptr<GraphEmulator> e(new GraphEmulator(std::move(options)));
  e->Routes();
  if (e->options_.port == 0) {
    e->port_ = e->server_->bind_to_any_port(e->options_.host);
  } else if (e->server_->bind_to_port(e->options_.host, e->options_.port)) {
    e->port_ = e->options_.port;
  }
  if (e->port_ <= 0) {
    return Status::IOError("emulator: cannot listen on " + e->options_.host + ":" + std::to_string(e->options_.port) +
                           ": is the port in use? pick another with --port");
  }
  GraphEmulator* raw = e.get();
  e->thread_ = std::thread([raw] { raw->server_->listen_after_bind(); });
  e->status_thread_ = std::thread([raw] { raw->StatusLoop(); });
  while (!e->server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return e;
}

void GraphEmulator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  status_cv_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  if (status_thread_.joinable()) status_thread_.join();
}

void GraphEmulator::QueueErrors(const std::vector<int64_t>& codes) {
  std::lock_guard<std::mutex> lock(mu_);
  errors_.insert(errors_.end(), codes.begin(), codes.end());
}

void GraphEmulator::SetAccessToken(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.access_token = token;
}

void GraphEmulator::SetWebhookUrl(const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.webhook_url = url;
}

json GraphEmulator::Sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

json GraphEmulator::Calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

void GraphEmulator::HandleGraph(const std::string& body, const std::string& auth, int& status, std::string& out) {
  json req = json::parse(body, nullptr, false);
  std::lock_guard<std::mutex> lock(mu_);
  json call = {{"seq", ++seq_}};
  auto fail = [&](int64_t code) {
    status = HttpStatusFor(code);
    out = ErrorBody(code).dump();
    call["result_code"] = code;
    calls_.push_back(call);
  };
  if (!req.is_object() || req.value("messaging_product", "") != "whatsapp") {
    call["kind"] = "invalid";
    return fail(100);
  }
  const bool is_read = req.value("status", "") == "read";
  call["kind"] = is_read ? "read" : "text";
  if (is_read) {
    call["message_id"] = req.value("message_id", "");
    call["typing"] = req.contains("typing_indicator");
  } else {
    call["to"] = req.value("to", "");
  }
  if (!options_.access_token.empty() && auth != "Bearer " + options_.access_token) return fail(190);
  if (!is_read) {
    if (!errors_.empty()) {
      int64_t code = errors_.front();
      errors_.pop_front();
      if (code != 0) return fail(code);
    }
    if (req.value("type", "") != "text" || !req.contains("text") || !req["text"].is_object() ||
        !req["text"].contains("body") || !req["text"]["body"].is_string()) {
      return fail(100);
    }
    const std::string text = req["text"]["body"].get<std::string>();
    if (Utf8Length(text) > kMaxTextChars) return fail(100);
  }
  call["result_code"] = 0;
  calls_.push_back(call);
  status = 200;
  if (is_read) {
    out = R"({"success":true})";
    return;
  }
  const std::string wamid = "wamid.emu.out." + std::to_string(NowMs()) + "." + std::to_string(next_wamid_++);
  json rec = {{"seq", seq_},
              {"to", req.value("to", "")},
              {"body", req["text"]["body"]},
              {"wamid", wamid},
              {"ms", NowMs()},
              {"context", req.contains("context") && req["context"].is_object()
                              ? req["context"].value("message_id", "")
                              : ""},
              {"callback_data", req.value("biz_opaque_callback_data", "")}};
  sent_.push_back(rec);
  out = json{{"messaging_product", "whatsapp"},
             {"contacts", {{{"input", rec["to"]}, {"wa_id", rec["to"]}}}},
             {"messages", {{{"id", wamid}}}}}
            .dump();
  if (options_.send_statuses && !options_.webhook_url.empty()) {
    const int64_t ts = NowMs() / 1000;
    for (const char* s : {"sent", "delivered"}) {
      status_queue_.push_back(MakeStatusNotification(options_.phone_number_id, options_.display_phone_number, wamid,
                                                     rec["to"], s, ts, rec["callback_data"])
                                  .dump());
    }
    status_cv_.notify_all();
  }
}

Status GraphEmulator::PostWebhook(const std::string& body) {
  std::string url, secret;
  {
    std::lock_guard<std::mutex> lock(mu_);
    url = options_.webhook_url;
    secret = options_.app_secret;
  }
  if (url.empty()) return Status::InvalidArgument("emulator: no webhook URL: start it with --webhook URL");
  auto [host, path] = SplitUrl(url);
  if (path.empty()) path = "/";
  httplib::Client cli(host);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(10, 0);
  httplib::Headers headers;
  if (!secret.empty()) headers.emplace("X-Hub-Signature-256", SignatureHeader(secret, body));
  httplib::Result res = cli.Post(path, headers, body, "application/json");
  if (!res) return Status::IOError("emulator: webhook " + url + " unreachable: " + httplib::to_string(res.error()));
  if (res->status != 200) {
    return Status::IOError("emulator: webhook " + url + " answered " + std::to_string(res->status) + ": " + res->body);
  }
  return Status::Ok();
}

void GraphEmulator::StatusLoop() {
  while (true) {
    std::string body;
    {
      std::unique_lock<std::mutex> lock(mu_);
      status_cv_.wait(lock, [&] { return stop_ || !status_queue_.empty(); });
      if (stop_) return;
      body = std::move(status_queue_.front());
      status_queue_.pop_front();
    }
    (void)PostWebhook(body);  // best effort, like a status lost on the way
  }
}

Result<std::string> GraphEmulator::UserSendsMessage(const std::string& from, const std::string& name, json message) {
  std::string wamid;
  {
    std::lock_guard<std::mutex> lock(mu_);
    wamid = "wamid.emu.in." + std::to_string(NowMs()) + "." + std::to_string(next_wamid_++);
  }
  message["from"] = from;
  if (!message.contains("id")) message["id"] = wamid;
  wamid = message["id"].get<std::string>();
  if (!message.contains("timestamp")) message["timestamp"] = std::to_string(NowMs() / 1000);
  json n = MakeMessageNotification(options_.phone_number_id, options_.display_phone_number, from, name, message);
  FORMIGA_RETURN_IF_ERROR(PostWebhook(n.dump()));
  return wamid;
}

Result<std::string> GraphEmulator::UserSends(const std::string& from, const std::string& name, const std::string& text) {
  return UserSendsMessage(from, name, json{{"type", "text"}, {"text", {{"body", text}}}});
}

void GraphEmulator::Routes() {
  server_->Post(R"(/(v[0-9.]+)/([^/]+)/messages)", [this](const httplib::Request& req, httplib::Response& res) {
    int status = 500;
    std::string out;
    HandleGraph(req.body, req.get_header_value("Authorization"), status, out);
    res.status = status;
    res.set_content(out, "application/json");
  });
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kEmulatorPage, "text/html; charset=utf-8");
  });
  server_->Post("/emulator/send", [this](const httplib::Request& req, httplib::Response& res) {
    json j = json::parse(req.body, nullptr, false);
    if (!j.is_object() || !j.contains("from") || !j["from"].is_string()) {
      res.status = 400;
      res.set_content(R"({"error":"expected {\"from\": \"<wa_id>\", \"text\": \"...\"}"})", "application/json");
      return;
    }
    const std::string from = j["from"], name = j.value("name", "Visitante");
    Result<std::string> r = Status::Internal("unset");
    if (j.contains("message") && j["message"].is_object()) {
      r = UserSendsMessage(from, name, j["message"]);
    } else if (j.contains("text") && j["text"].is_string()) {
      r = UserSends(from, name, j["text"]);
    } else {
      const std::string type = j.value("type", "image");
      r = UserSendsMessage(from, name,
                           json{{"type", type}, {type, {{"id", "1479537139650973"}, {"mime_type", "image/jpeg"}}}});
    }
    if (!r.ok()) {
      res.status = 502;
      res.set_content(json{{"error", r.status().message()}}.dump(), "application/json");
      return;
    }
    res.set_content(json{{"wamid", *r}}.dump(), "application/json");
  });
  server_->Get("/emulator/messages", [this](const httplib::Request& req, httplib::Response& res) {
    const int64_t since = req.has_param("since") ? std::atoll(req.get_param_value("since").c_str()) : 0;
    const std::string to = req.get_param_value("to");
    json out = json::array();
    for (const json& m : Sent()) {
      if (m["seq"].get<int64_t>() > since && (to.empty() || m["to"] == to)) out.push_back(m);
    }
    res.set_content(json{{"messages", out}}.dump(), "application/json");
  });
  server_->Get("/emulator/calls", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(json{{"calls", Calls()}}.dump(), "application/json");
  });
  server_->Post("/emulator/errors", [this](const httplib::Request& req, httplib::Response& res) {
    json j = json::parse(req.body, nullptr, false);
    if (!j.is_object() || !j.contains("codes") || !j["codes"].is_array()) {
      res.status = 400;
      res.set_content(R"({"error":"expected {\"codes\": [130429, 0, ...]}"})", "application/json");
      return;
    }
    std::vector<int64_t> codes;
    for (const json& c : j["codes"]) codes.push_back(c.is_number_integer() ? c.get<int64_t>() : 0);
    QueueErrors(codes);
    res.set_content("{}", "application/json");
  });
  server_->Post("/emulator/token", [this](const httplib::Request& req, httplib::Response& res) {
    json j = json::parse(req.body, nullptr, false);
    if (!j.is_object() || !j.contains("token") || !j["token"].is_string()) {
      res.status = 400;
      res.set_content(R"({"error":"expected {\"token\": \"...\"}"})", "application/json");
      return;
    }
    SetAccessToken(j["token"]);
    res.set_content("{}", "application/json");
  });
  server_->Get("/emulator/state", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu_);
    res.set_content(json{{"sent", sent_.size()}, {"calls", calls_.size()}, {"queued_errors", errors_.size()},
                         {"webhook_url", options_.webhook_url}, {"phone_number_id", options_.phone_number_id}}
                        .dump(),
                    "application/json");
  });
}

}  // namespace formiga::whatsapp
