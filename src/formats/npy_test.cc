#include "formats/npy.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace formiga {
namespace {

TEST(NpyTest, RoundTrip) {
  const std::string path = (std::filesystem::temp_directory_path() / "formiga_npy_test.npy").string();
  auto w = NpyWriter::Create(path, 2, 3);
  ASSERT_TRUE(w.ok());
  const float a[3] = {1, 2, 3}, b[3] = {-1, 0.5f, 1e30f};
  ASSERT_TRUE((*w)->AppendRow(a).ok());
  EXPECT_FALSE((*w)->Close().ok());  // one row missing
  auto w2 = NpyWriter::Create(path, 2, 3);
  ASSERT_TRUE((*w2)->AppendRow(a).ok());
  ASSERT_TRUE((*w2)->AppendRow(b).ok());
  EXPECT_FALSE((*w2)->AppendRow(b).ok());
  ASSERT_TRUE((*w2)->Close().ok());
  auto m = NpyMatrix::Open(path);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->rows(), 2);
  EXPECT_EQ(m->cols(), 3);
  EXPECT_EQ(m->row(1)[1], 0.5f);
  EXPECT_EQ(m->row(1)[2], 1e30f);
  std::filesystem::remove(path);
}

TEST(NpyTest, RejectsOtherFiles) {
  const std::string path = (std::filesystem::temp_directory_path() / "formiga_npy_bad.npy").string();
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fputs("not numpy", f);
  std::fclose(f);
  EXPECT_FALSE(NpyMatrix::Open(path).ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace formiga
