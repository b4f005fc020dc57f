#include "core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace formiga {
namespace {

TEST(MappedFileTest, MapsContents) {
  auto path = std::filesystem::temp_directory_path() / "formiga_mapped_file_test.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out << "hello";
  }
  Result<MappedFile> f = MappedFile::Open(path.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->data()), 5), "hello");
  MappedFile moved = std::move(f.value());
  EXPECT_EQ(moved.size(), 5u);
  std::filesystem::remove(path);
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  Result<MappedFile> f = MappedFile::Open("/nonexistent/formiga/x.gguf");
  ASSERT_FALSE(f.ok());
  EXPECT_TRUE(f.status().IsNotFound());
  EXPECT_NE(f.status().message().find("/nonexistent/formiga/x.gguf"), std::string::npos);
}

TEST(MappedFileTest, DirectoryIsRejected) {
  Result<MappedFile> f = MappedFile::Open("/tmp");
  EXPECT_FALSE(f.ok());
}

}  // namespace
}  // namespace formiga
