#include "core/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
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

TEST(MappedFileTest, LargeFilesAreHugePageAlignedAndSurviveAPageCacheDrop) {
  // Files of 2 MB or more are mapped at a 2 MB boundary (so 2 MB page cache
  // folios can be mapped whole); dropping the file from the page cache and
  // reading it again through the same mapping gives the same bytes.
  auto path = std::filesystem::temp_directory_path() / "formiga_mapped_file_huge.bin";
  const size_t size = (size_t{6} << 20) + 777;
  std::string bytes(size, '\0');
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 13);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  Result<MappedFile> f = MappedFile::Open(path.string());
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->data()) % (size_t{2} << 20), 0u);
  const double huge = f->HugeMappedFraction(3);
  EXPECT_GE(huge, 0.0);
  EXPECT_LE(huge, 1.0);
  ASSERT_TRUE(f->DropFromPageCache().ok());
  f->Prefetch(nullptr, /*read_ahead=*/false);
  EXPECT_EQ(0, std::memcmp(f->data(), bytes.data(), size));
  // Small files: any page-aligned address, no huge pages to speak of.
  auto small_path = std::filesystem::temp_directory_path() / "formiga_mapped_file_small.bin";
  {
    std::ofstream out(small_path, std::ios::binary);
    out << "tiny";
  }
  Result<MappedFile> small = MappedFile::Open(small_path.string());
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->HugeMappedFraction(), 0.0);
  std::filesystem::remove(path);
  std::filesystem::remove(small_path);
}

TEST(HostPagesTest, ZeroedWritableAndHugePageAligned) {
  for (size_t bytes : {size_t{100}, (size_t{3} << 20) + 5}) {
    auto p = HostPages::Allocate(bytes);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    ASSERT_NE(p->data(), nullptr);
    EXPECT_EQ(p->size(), bytes);
    auto* b = static_cast<uint8_t*>(p->data());
    EXPECT_EQ(b[0], 0);
    EXPECT_EQ(b[bytes - 1], 0);
    std::memset(b, 0xab, bytes);
    EXPECT_EQ(b[bytes - 1], 0xab);
    if (bytes >= (size_t{2} << 20)) EXPECT_EQ(reinterpret_cast<uintptr_t>(b) % (size_t{2} << 20), 0u);
    HostPages moved = std::move(*p);
    EXPECT_EQ(p->data(), nullptr);
    EXPECT_EQ(static_cast<uint8_t*>(moved.data())[0], 0xab);
  }
  auto none = HostPages::Allocate(0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->data(), nullptr);
}

TEST(HostPagesTest, ImpossibleSizeIsAClearError) {
  auto p = HostPages::Allocate(size_t{1} << 62);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(p.status().message().find("host memory"), std::string::npos) << p.status().ToString();
}

}  // namespace
}  // namespace formiga
