#include "core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

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

TEST(MappedFileTest, PrefetchReportsProgressAndLeavesTheFileResident) {
  auto path = std::filesystem::temp_directory_path() / "formiga_mapped_file_prefetch.bin";
  const size_t size = (size_t{70} << 20) + 12345;  // three chunks, the last one partial
  {
    std::ofstream out(path, std::ios::binary);
    std::string block(1 << 20, 'x');
    for (size_t done = 0; done < size; done += block.size()) out.write(block.data(), std::min(block.size(), size - done));
  }
  Result<MappedFile> f = MappedFile::Open(path.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::vector<size_t> seen;
  f->Prefetch([&](size_t done, size_t total) {
    EXPECT_EQ(total, size);
    seen.push_back(done);
  });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_LT(seen[0], seen[1]);
  EXPECT_EQ(seen.back(), size);
  EXPECT_GT(f->ResidentFraction(), 0.99);
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
