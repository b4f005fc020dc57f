// X-Hub-Signature-256: HMAC-SHA256 of the raw webhook body keyed with the
// app secret, as lowercase hex after "sha256=". Verified over the bytes as
// received (never re-serialized JSON), compared in constant time.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace formiga::whatsapp {

// Lowercase hex HMAC-SHA256 of `body` keyed with `secret`.
std::string HmacSha256Hex(std::string_view secret, std::string_view body);
// "sha256=<hex>": what Meta puts in X-Hub-Signature-256.
std::string SignatureHeader(std::string_view secret, std::string_view body);
// a == b, in time that depends only on the lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// True when `header` is exactly SignatureHeader(secret, body) (hex case
// ignored); constant time in the signature bytes.
bool VerifySignature(std::string_view secret, std::string_view body, std::string_view header);

}  // namespace formiga::whatsapp
