// Safetensors reader tests: small files built here (valid, a table of
// corruptions, every truncation) and a sharded checkpoint with its index.
#include "formats/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace formiga {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Make(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> out(8 + header.size() + data_bytes);
  uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, header.data(), header.size());
  for (size_t k = 0; k < data_bytes; ++k) out[8 + header.size() + k] = static_cast<uint8_t>(k);
  return out;
}

const char* kValidHeader =
    R"({"__metadata__":{"format":"pt"},)"
    R"("b":{"dtype":"BF16","shape":[2,3],"data_offsets":[16,28]},)"
    R"("a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
    R"("e":{"dtype":"I64","shape":[0,5],"data_offsets":[28,28]},)"
    R"("s":{"dtype":"U8","shape":[],"data_offsets":[28,29]}})";

Result<SafetensorsFile> ParseBytes(const std::vector<uint8_t>& b) {
  return SafetensorsFile::Parse(b.data(), b.size(), "test.safetensors");
}

TEST(Safetensors, ParsesValidFile) {
  std::vector<uint8_t> bytes = Make(kValidHeader, 29);
  Result<SafetensorsFile> r = ParseBytes(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->tensors().size(), 4u);
  EXPECT_EQ(r->tensors()[0].name, "a");  // data order
  const SafetensorsTensor* b = r->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, SafetensorsDType::kBF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b->nbytes, 12u);
  EXPECT_EQ(b->data, bytes.data() + 8 + r->header_size() + 16);
  EXPECT_EQ(b->data[0], 16);
  EXPECT_EQ(r->Find("e")->n_elements(), 0);
  EXPECT_EQ(r->Find("s")->n_elements(), 1);
  EXPECT_EQ(r->metadata().at("format"), "pt");
  EXPECT_EQ(r->Find("zzz"), nullptr);
}

TEST(Safetensors, EveryTruncationFailsCleanly) {
  std::vector<uint8_t> bytes = Make(kValidHeader, 29);
  for (size_t n = 0; n < bytes.size(); ++n) {
    Result<SafetensorsFile> r = SafetensorsFile::Parse(bytes.data(), n, "test.safetensors");
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  }
}

struct Bad {
  const char* name;
  std::string header;
  size_t data_bytes;
  const char* expect;
};

TEST(Safetensors, CorruptionTable) {
  const Bad kBad[] = {
      {"not json", "{nope", 0, "not valid JSON"},
      {"not an object", "[1,2]", 0, "start with a JSON object"},
      {"entry not object", R"({"a":5})", 0, "not an object"},
      {"unknown dtype", R"({"a":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}})", 1, "dtype 'F4'"},
      {"missing dtype", R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4, "dtype"},
      {"negative dim", R"({"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}})", 1, "non-negative"},
      {"float dim", R"({"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}})", 1, "non-negative"},
      {"size mismatch", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 8, "need 8"},
      {"begin after end", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[2,1]}})", 4, "begin <= end"},
      {"offsets not pair", R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}})", 4, "[begin, end]"},
      {"beyond file", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 15, "beyond the data"},
      {"overflow", R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0,
       "overflows"},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlaps"},
      {"overlap past an empty tensor",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
       12, "overlaps"},
      {"metadata not strings", R"({"__metadata__":{"k":1}})", 0, "not a string"},
      {"metadata not object", R"({"__metadata__":[]})", 0, "not an object"},
  };
  for (const Bad& c : kBad) {
    SCOPED_TRACE(c.name);
    Result<SafetensorsFile> r = ParseBytes(Make(c.header, c.data_bytes));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find("test.safetensors"), std::string::npos);
  }
  // Header length field beyond the limit or the file.
  std::vector<uint8_t> huge = Make("{}", 0);
  uint64_t n = kSafetensorsMaxHeader + 1;
  std::memcpy(huge.data(), &n, 8);
  EXPECT_NE(ParseBytes(huge).status().message().find("exceeds the limit"), std::string::npos);
  n = 1000;
  std::memcpy(huge.data(), &n, 8);
  EXPECT_NE(ParseBytes(huge).status().message().find("beyond the end"), std::string::npos);
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "formiga_st_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  fs::path path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                           static_cast<std::streamsize>(bytes.size()));
}
void WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

TEST(SafetensorsCheckpoint, ShardedWithIndex) {
  TempDir dir;
  WriteFile(dir.path() / "model-00001-of-00002.safetensors",
            Make(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8));
  WriteFile(dir.path() / "model-00002-of-00002.safetensors",
            Make(R"({"y":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"z":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}})", 11));
  WriteFile(dir.path() / "model.safetensors.index.json",
            std::string(R"({"metadata":{"total_size":27},"weight_map":{"x":"model-00001-of-00002.safetensors",)") +
                R"("y":"model-00002-of-00002.safetensors","z":"model-00002-of-00002.safetensors"}})");
  Result<SafetensorsCheckpoint> r = SafetensorsCheckpoint::Open(dir.path().string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->TensorNames(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(r->shards().size(), 2u);
  ASSERT_NE(r->Find("z"), nullptr);
  EXPECT_EQ(r->Find("z")->data[0], 8);
  EXPECT_EQ(r->Find("y")->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(r->Find("w"), nullptr);
  // Opening the index file itself works too.
  EXPECT_TRUE(SafetensorsCheckpoint::Open((dir.path() / "model.safetensors.index.json").string()).ok());

  // A tensor mapped to the wrong shard, one missing from the map, one in two shards.
  WriteFile(dir.path() / "model.safetensors.index.json",
            std::string(R"({"weight_map":{"x":"model-00002-of-00002.safetensors",)") +
                R"("y":"model-00002-of-00002.safetensors","z":"model-00002-of-00002.safetensors"}})");
  EXPECT_NE(SafetensorsCheckpoint::Open(dir.path().string()).status().message().find("does not hold it"),
            std::string::npos);
  WriteFile(dir.path() / "model.safetensors.index.json",
            std::string(R"({"weight_map":{"x":"model-00001-of-00002.safetensors",)") +
                R"("y":"model-00002-of-00002.safetensors"}})");
  EXPECT_NE(SafetensorsCheckpoint::Open(dir.path().string()).status().message().find("missing from weight_map"),
            std::string::npos);
  WriteFile(dir.path() / "model-00001-of-00002.safetensors",
            Make(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"I8","shape":[3],"data_offsets":[8,11]}})", 11));
  WriteFile(dir.path() / "model.safetensors.index.json",
            std::string(R"({"weight_map":{"x":"model-00001-of-00002.safetensors",)") +
                R"("y":"model-00002-of-00002.safetensors","z":"model-00002-of-00002.safetensors"}})");
  EXPECT_NE(SafetensorsCheckpoint::Open(dir.path().string()).status().message().find("appears in both"),
            std::string::npos);
  WriteFile(dir.path() / "model.safetensors.index.json", std::string(R"({"weight_map":{"x":"../evil.safetensors"}})"));
  EXPECT_FALSE(SafetensorsCheckpoint::Open(dir.path().string()).ok());
}

TEST(SafetensorsCheckpoint, SingleFileAndMissing) {
  TempDir dir;
  WriteFile(dir.path() / "model.safetensors", Make(kValidHeader, 29));
  Result<SafetensorsCheckpoint> r = SafetensorsCheckpoint::Open(dir.path().string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->TensorNames().size(), 4u);
  EXPECT_TRUE(SafetensorsCheckpoint::Open((dir.path() / "model.safetensors").string()).ok());
  EXPECT_TRUE(SafetensorsCheckpoint::Open((dir.path() / "nope").string()).status().IsNotFound());
  fs::remove(dir.path() / "model.safetensors");
  EXPECT_TRUE(SafetensorsCheckpoint::Open(dir.path().string()).status().IsNotFound());
}

}  // namespace
}  // namespace formiga
