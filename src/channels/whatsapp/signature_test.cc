// Webhook signatures: HMAC-SHA256 against RFC 4231, and the header check.
#include "channels/whatsapp/signature.h"

#include <gtest/gtest.h>

namespace formiga::whatsapp {
namespace {

TEST(Signature, MatchesRfc4231TestCase2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Signature, VerifiesOnlyTheExactBody) {
  const std::string body = R"({"object":"whatsapp_business_account","entry":[]})";
  const std::string header = SignatureHeader("s3cret", body);
  EXPECT_TRUE(VerifySignature("s3cret", body, header));
  std::string upper = header;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  EXPECT_TRUE(VerifySignature("s3cret", body, upper));
  EXPECT_FALSE(VerifySignature("other", body, header));
  EXPECT_FALSE(VerifySignature("s3cret", body + " ", header));
  EXPECT_FALSE(VerifySignature("s3cret", body, ""));
  EXPECT_FALSE(VerifySignature("s3cret", body, header.substr(7)));  // no "sha256="
  EXPECT_FALSE(VerifySignature("s3cret", body, "sha1=" + header.substr(7)));
  EXPECT_FALSE(VerifySignature("s3cret", body, header + "00"));
}

}  // namespace
}  // namespace formiga::whatsapp
