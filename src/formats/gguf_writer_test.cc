// GgufWriter tests: round trips through GgufFile (every value type, nested
// arrays, every tensor type), streaming in pieces, atomicity and misuse.
//
// GgufWriterInterop.WriteSample also serves tests/test_gguf_interop.py: with
// FORMIGA_GGUF_SAMPLE=<path> set it writes its sample file there, for gguf-py
// to read back. Keep the sample's contents in sync with that script.
#include "formats/gguf_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "formats/gguf.h"

namespace formiga {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "formiga_gguf_writer_XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (fs::path(path_) / name).string(); }

 private:
  std::string path_;
};

// Byte j of tensor t in the samples: a pattern gguf-py's side recomputes.
uint8_t PatternByte(size_t t, size_t j) { return static_cast<uint8_t>((t * 31 + j * 7 + 1) & 0xff); }

// Metadata with every value type, extremes included, and nested arrays.
void AddAllValueTypes(GgufWriter* w) {
  w->SetString("general.architecture", "llama");
  w->Set("t.u8", GgufValue::Uint8(255));
  w->Set("t.i8", GgufValue::Int8(-128));
  w->Set("t.u16", GgufValue::Uint16(65535));
  w->Set("t.i16", GgufValue::Int16(-32768));
  w->SetUint32("t.u32", 4294967295u);
  w->SetInt32("t.i32", -2147483647 - 1);
  w->SetUint64("t.u64", 18446744073709551615ull);
  w->Set("t.i64", GgufValue::Int64(-9223372036854775807ll - 1));
  w->SetFloat32("t.f32", 0.1f);
  w->Set("t.f64", GgufValue::Float64(-2.5e300));
  w->SetBool("t.bool_true", true);
  w->SetBool("t.bool_false", false);
  w->SetString("t.string", "h\xC3\xA9llo \n\t\"world\"");
  w->SetString("t.empty_string", "");
  w->SetStringArray("t.strings", {"a", "", "\xE2\x96\x81token"});
  w->SetFloat32Array("t.floats", {1.5f, -0.0f, 3.4028235e38f});
  w->SetInt32Array("t.ints", {-1, 0, 2147483647});
  w->Set("t.u8s", GgufValue::Array(GgufType::kUint8, {GgufValue::Uint8(1), GgufValue::Uint8(2)}));
  w->Set("t.bools", GgufValue::Array(GgufType::kBool, {GgufValue::Bool(true), GgufValue::Bool(false)}));
  w->Set("t.f64s", GgufValue::Array(GgufType::kFloat64, {GgufValue::Float64(1e-300)}));
  w->Set("t.empty_array", GgufValue::Array(GgufType::kInt64, {}));
  w->Set("t.nested",
         GgufValue::Array(GgufType::kArray,
                          {GgufValue::Array(GgufType::kInt32, {GgufValue::Int32(1), GgufValue::Int32(2)}),
                           GgufValue::Array(GgufType::kString, {GgufValue::String("x")})}));
}

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensorType) {
  TempDir dir;
  const std::string path = dir.File("all.gguf");
  GgufWriter w;
  AddAllValueTypes(&w);
  // One tensor of every valid type id: 2 blocks per row, 3 rows.
  std::vector<std::pair<std::string, uint64_t>> expected;
  for (uint32_t id = 0; id < 64; ++id) {
    const DTypeTraits* t = FindDTypeTraits(id);
    if (t == nullptr) continue;
    std::string name = std::string("w.") + t->name;
    ASSERT_TRUE(w.AddTensor(name, {t->block_size * 2, 3}, t->type).ok());
    expected.emplace_back(name, static_cast<uint64_t>(t->type_size) * 2 * 3);
  }
  ASSERT_TRUE(w.Begin(path).ok());
  EXPECT_TRUE(fs::exists(path + ".partial"));
  EXPECT_FALSE(fs::exists(path));
  for (size_t k = 0; k < expected.size(); ++k) {
    std::vector<uint8_t> data(expected[k].second);
    for (size_t j = 0; j < data.size(); ++j) data[j] = PatternByte(k, j);
    // Write in uneven pieces.
    size_t done = 0;
    for (size_t piece = 1; done < data.size(); piece = piece * 3 + 1) {
      size_t n = std::min(piece, data.size() - done);
      ASSERT_TRUE(w.WriteTensorData(data.data() + done, n).ok());
      done += n;
    }
  }
  const uint64_t predicted = w.file_size();
  Status st = w.Finish();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_EQ(fs::file_size(path), predicted);

  Result<GgufFile> r = GgufFile::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->version(), 3u);
  ASSERT_EQ(r->metadata().size(), 23u);
  EXPECT_EQ(r->metadata()[0].first, "general.architecture");
  EXPECT_EQ(r->metadata()[22].first, "t.nested");
  EXPECT_EQ(*r->GetInt("t.u32"), 4294967295);
  EXPECT_EQ(r->Find("t.u64")->u, 18446744073709551615ull);
  EXPECT_EQ(*r->GetInt("t.i64"), -9223372036854775807ll - 1);
  EXPECT_EQ(*r->GetFloat("t.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(*r->GetFloat("t.f64"), -2.5e300);
  EXPECT_TRUE(*r->GetBool("t.bool_true"));
  EXPECT_FALSE(*r->GetBool("t.bool_false"));
  EXPECT_EQ(*r->GetString("t.string"), "h\xC3\xA9llo \n\t\"world\"");
  EXPECT_EQ(*r->GetStringArray("t.strings"), (std::vector<std::string>{"a", "", "\xE2\x96\x81token"}));
  EXPECT_EQ(*r->GetIntArray("t.ints"), (std::vector<int64_t>{-1, 0, 2147483647}));
  EXPECT_EQ(r->GetFloatArray("t.floats")->at(2), static_cast<double>(3.4028235e38f));
  const GgufValue* nested = r->Find("t.nested");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->items[1].StringAt(0), "x");
  EXPECT_EQ(r->Find("t.i8")->i, -128);
  EXPECT_EQ(r->Find("t.u16")->u, 65535u);

  ASSERT_EQ(r->tensors().size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) {
    const GgufTensorInfo& t = r->tensors()[k];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, expected[k].first);
    EXPECT_EQ(t.nbytes, expected[k].second);
    EXPECT_EQ(t.offset % 32, 0u);
    EXPECT_EQ(t.shape[1], 3);
    bool same = true;
    for (size_t j = 0; j < t.nbytes; ++j) same = same && t.data[j] == PatternByte(k, j);
    EXPECT_TRUE(same);
  }
}

TEST(GgufWriter, SetReplacesInPlaceAndAlignmentIsRecorded) {
  TempDir dir;
  const std::string path = dir.File("a64.gguf");
  GgufWriter w(64);
  w.SetUint32("a", 1);
  w.SetUint32("b", 2);
  w.SetString("a", "again");
  ASSERT_TRUE(w.AddTensor("x", {4}, DType::kF32).ok());
  ASSERT_TRUE(w.AddTensor("y", {2}, DType::kF32).ok());
  ASSERT_TRUE(w.Begin(path).ok());
  float x[4] = {1, 2, 3, 4}, y[2] = {5, 6};
  ASSERT_TRUE(w.WriteTensorData(x, sizeof(x)).ok());
  ASSERT_TRUE(w.WriteTensorData(y, sizeof(y)).ok());
  ASSERT_TRUE(w.Finish().ok());
  Result<GgufFile> r = GgufFile::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->metadata().size(), 3u);
  EXPECT_EQ(r->metadata()[0].first, "a");
  EXPECT_EQ(*r->GetString("a"), "again");
  EXPECT_EQ(r->metadata()[2].first, "general.alignment");
  EXPECT_EQ(r->alignment(), 64u);
  EXPECT_EQ(r->data_offset() % 64, 0u);
  EXPECT_EQ(r->FindTensor("y")->offset, 64u);
  EXPECT_EQ(reinterpret_cast<const float*>(r->FindTensor("y")->data)[1], 6.0f);
}

TEST(GgufWriter, RejectsMisuse) {
  TempDir dir;
  GgufWriter w;
  EXPECT_FALSE(w.AddTensor("bad", {}, DType::kF32).ok());
  EXPECT_FALSE(w.AddTensor("bad", {1, 1, 1, 1, 1}, DType::kF32).ok());
  EXPECT_FALSE(w.AddTensor("bad", {0}, DType::kF32).ok());
  EXPECT_FALSE(w.AddTensor("bad", {16}, DType::kQ4_0).ok());  // not a block multiple
  EXPECT_FALSE(w.AddTensor("bad", {4}, static_cast<DType>(4)).ok());
  EXPECT_FALSE(w.AddTensor(std::string(64, 'n'), {4}, DType::kF32).ok());
  ASSERT_TRUE(w.AddTensor("t", {4}, DType::kF32).ok());
  EXPECT_FALSE(w.AddTensor("t", {4}, DType::kF32).ok());  // duplicate

  GgufWriter mismatch(32);
  mismatch.SetUint32("general.alignment", 64);
  EXPECT_TRUE(mismatch.Begin(dir.File("m.gguf")).IsInvalidArgument());
  GgufWriter bad_align(48);
  EXPECT_TRUE(bad_align.Begin(dir.File("b.gguf")).IsInvalidArgument());
  GgufWriter bad_array;
  bad_array.Set("k", GgufValue::Array(GgufType::kInt32, {GgufValue::String("x")}));
  EXPECT_TRUE(bad_array.Begin(dir.File("c.gguf")).IsInvalidArgument());
  GgufWriter bad_range;
  GgufValue v = GgufValue::Uint8(0);
  v.u = 300;
  bad_range.Set("k", v);
  EXPECT_TRUE(bad_range.Begin(dir.File("d.gguf")).IsInvalidArgument());
}

TEST(GgufWriter, OverflowAndIncompleteFailAndLeaveNoFile) {
  TempDir dir;
  const std::string path = dir.File("x.gguf");
  {
    GgufWriter w;
    ASSERT_TRUE(w.AddTensor("t", {4}, DType::kF32).ok());
    ASSERT_TRUE(w.Begin(path).ok());
    float data[5] = {};
    Status st = w.WriteTensorData(data, sizeof(data));
    EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
    EXPECT_FALSE(w.Finish().ok());  // the first error sticks
    EXPECT_FALSE(fs::exists(path + ".partial"));
    EXPECT_FALSE(fs::exists(path));
  }
  {
    GgufWriter w;
    ASSERT_TRUE(w.AddTensor("t", {4}, DType::kF32).ok());
    ASSERT_TRUE(w.Begin(path).ok());
    float data[2] = {};
    ASSERT_TRUE(w.WriteTensorData(data, sizeof(data)).ok());
    Status st = w.Finish();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("8 of its 16 bytes"), std::string::npos) << st.ToString();
    EXPECT_FALSE(fs::exists(path));
  }
  {
    GgufWriter w;  // destroyed unfinished: its .partial goes away
    ASSERT_TRUE(w.AddTensor("t", {4}, DType::kF32).ok());
    ASSERT_TRUE(w.Begin(path).ok());
    EXPECT_TRUE(fs::exists(path + ".partial"));
  }
  EXPECT_FALSE(fs::exists(path + ".partial"));
  EXPECT_FALSE(GgufWriter().Begin(dir.File("no/such/dir/x.gguf")).ok());
}

// The sample gguf-py reads in tests/test_gguf_interop.py (keep in sync).
TEST(GgufWriterInterop, WriteSample) {
  TempDir dir;
  const char* env = std::getenv("FORMIGA_GGUF_SAMPLE");
  const std::string path = env != nullptr && *env != '\0' ? std::string(env) : dir.File("sample.gguf");
  GgufWriter w;
  AddAllValueTypes(&w);
  const DType types[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_K, DType::kI32};
  for (size_t k = 0; k < std::size(types); ++k) {
    const DTypeTraits& t = GetDTypeTraits(types[k]);
    ASSERT_TRUE(w.AddTensor(std::string("w.") + t.name, {t.block_size * 2, 3}, types[k]).ok());
  }
  ASSERT_TRUE(w.Begin(path).ok());
  for (size_t k = 0; k < std::size(types); ++k) {
    const DTypeTraits& t = GetDTypeTraits(types[k]);
    std::vector<uint8_t> data(static_cast<size_t>(t.type_size) * 6);
    for (size_t j = 0; j < data.size(); ++j) data[j] = PatternByte(k, j);
    ASSERT_TRUE(w.WriteTensorData(data.data(), data.size()).ok());
  }
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_TRUE(GgufFile::Open(path).ok());
}

}  // namespace
}  // namespace formiga
