#include "core/status.h"

#include <gtest/gtest.h>

namespace formiga {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  FORMIGA_ASSIGN_OR_RETURN(int h, Half(x));
  FORMIGA_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Status::Corruption("f.gguf: offset 4: bad magic");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.ToString(), "corrupt file: f.gguf: offset 4: bad magic");
  EXPECT_EQ(s.WithContext("loading").message(), "loading: f.gguf: offset 4: bad magic");
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

}  // namespace
}  // namespace formiga
