// The web chat page (web/ in the source tree), embedded into the binary at
// build time by src/server/embed_web.cmake so that `formiga serve` needs no
// files beside it.
#pragma once

#include <string_view>

namespace formiga::server {

struct WebAsset {
  std::string_view path;          // URL path, e.g. "/" or "/chat.js"
  std::string_view content_type;
  std::string_view body;
};

// The asset served at `path`, or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace formiga::server
