// GGUF reader tests: the real test models, and a table of corrupted files
// (every one must fail with a Corruption/Unsupported status, never crash).
#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/test_models.h"

namespace formiga {
namespace {

// ---- real models (expected facts from gguf-py 0.19's GGUFReader) -----------

TEST(GgufRealModels, SmolLM2) {
  FORMIGA_REQUIRE_MODEL(path, testing::kSmolLM2);
  Result<GgufFile> r = GgufFile::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const GgufFile& f = *r;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.file_size(), 98362432u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 1785664u);
  EXPECT_EQ(f.metadata().size(), 33u);  // gguf-py's 36 fields include its 3 header pseudo-fields
  EXPECT_EQ(f.architecture(), "llama");
  EXPECT_EQ(*f.GetInt("llama.block_count"), 30);
  EXPECT_EQ(*f.GetInt("llama.embedding_length"), 576);
  EXPECT_EQ(*f.GetInt("llama.attention.head_count_kv"), 3);
  EXPECT_DOUBLE_EQ(*f.GetFloat("llama.rope.freq_base"), 100000.0);
  EXPECT_EQ(*f.GetString("tokenizer.ggml.pre"), "smollm");
  EXPECT_FALSE(*f.GetBool("tokenizer.ggml.add_bos_token"));
  Result<std::vector<std::string>> tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 49152u);
  EXPECT_EQ(tokens->front(), "<|endoftext|>");
  EXPECT_EQ(tokens->back(), "ectable");
  Result<std::vector<std::string>> merges = f.GetStringArray("tokenizer.ggml.merges");
  ASSERT_EQ(merges->size(), 48900u);
  EXPECT_EQ(merges->front(), "\xC4\xA0 t");  // "Ġ t"
  EXPECT_EQ(f.GetIntArray("tokenizer.ggml.token_type")->size(), 49152u);
  EXPECT_EQ(f.GetString("tokenizer.chat_template")->size(), 368u);

  ASSERT_EQ(f.tensors().size(), 272u);
  const GgufTensorInfo* q = f.FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{576, 576}));
  EXPECT_EQ(q->type, DType::kQ4_1);
  EXPECT_EQ(q->nbytes, 207360u);
  EXPECT_EQ(q->offset, 32020992u);
  const uint8_t q_head[] = {0x0f, 0x30, 0xd8, 0xb9, 0x45, 0x87, 0x65, 0x40};
  EXPECT_EQ(std::memcmp(q->data, q_head, 8), 0);
  const GgufTensorInfo* emb = f.FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{576, 49152}));
  EXPECT_EQ(emb->type, DType::kQ8_0);
  const GgufTensorInfo* norm = f.FindTensor("output_norm.weight");
  EXPECT_EQ(norm->type, DType::kF32);
  EXPECT_EQ(norm->shape, (std::vector<int64_t>{576}));
  int64_t params = 0;
  uint64_t bytes = 0;
  for (const GgufTensorInfo& t : f.tensors()) {
    params += t.n_elements();
    bytes += t.nbytes;
  }
  EXPECT_EQ(params, 134515008);
  EXPECT_EQ(bytes, 96576768u);
}

TEST(GgufRealModels, Gemma3) {
  FORMIGA_REQUIRE_MODEL(path, testing::kGemma3);
  Result<GgufFile> r = GgufFile::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const GgufFile& f = *r;
  EXPECT_EQ(f.architecture(), "gemma3");
  EXPECT_EQ(f.data_offset(), 6525120u);
  EXPECT_EQ(*f.GetInt("gemma3.attention.key_length"), 256);
  EXPECT_EQ(*f.GetInt("gemma3.attention.sliding_window"), 512);
  EXPECT_EQ(*f.GetInt("general.file_type"), 15);
  EXPECT_EQ(*f.GetString("tokenizer.ggml.model"), "llama");
  Result<std::vector<std::string>> tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens->size(), 262144u);
  EXPECT_EQ(tokens->front(), "<pad>");
  EXPECT_EQ(tokens->back(), "<unused6241>");
  Result<std::vector<double>> scores = f.GetFloatArray("tokenizer.ggml.scores");
  ASSERT_EQ(scores->size(), 262144u);
  EXPECT_EQ((*scores)[100], -1000.0);
  EXPECT_TRUE(*f.GetBool("tokenizer.ggml.add_bos_token"));
  ASSERT_EQ(f.tensors().size(), 236u);
  const GgufTensorInfo* down = f.FindTensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->shape, (std::vector<int64_t>{2048, 640}));
  EXPECT_EQ(down->type, DType::kQ6_K);
  EXPECT_EQ(down->nbytes, 1075200u);
  EXPECT_EQ(f.FindTensor("blk.0.attn_q.weight")->type, DType::kQ5_0);
  EXPECT_EQ(f.FindTensor("token_embd.weight")->shape, (std::vector<int64_t>{640, 262144}));
  // Typed getters name the problem.
  EXPECT_TRUE(f.GetString("gemma3.block_count").status().IsInvalidArgument());
  EXPECT_TRUE(f.GetInt("no.such.key").status().IsNotFound());
}

// ---- a hand-built file, then corruptions of it ------------------------------

struct Bytes {
  std::vector<uint8_t> b;
  template <class T>
  Bytes& Put(T v) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
    return *this;
  }
  Bytes& Str(const std::string& s) {
    Put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Bytes& Raw(const std::vector<uint8_t>& r) {
    b.insert(b.end(), r.begin(), r.end());
    return *this;
  }
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;
  uint64_t offset;
};

// Describes a small file; tests mutate one field to corrupt it.
struct Spec {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors;  // default: tensors.size()
  std::optional<uint64_t> n_kv;       // default: kvs.size()
  std::vector<std::vector<uint8_t>> kvs;
  std::vector<TensorSpec> tensors;
  uint64_t alignment = 32;
  uint64_t data_bytes = 64;
};

std::vector<uint8_t> KvU32(const std::string& key, uint32_t v) {
  return Bytes().Str(key).Put<uint32_t>(4).Put(v).b;
}
std::vector<uint8_t> KvString(const std::string& key, const std::string& v) {
  return Bytes().Str(key).Put<uint32_t>(8).Str(v).b;
}

Spec ValidSpec() {
  Spec s;
  s.kvs.push_back(KvString("general.architecture", "llama"));
  s.kvs.push_back(KvU32("llama.block_count", 2));
  // Array of 3 strings and a nested array [[1,2],[3]] of int32.
  s.kvs.push_back(Bytes().Str("tokenizer.ggml.tokens").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(3)
                      .Str("a").Str("bc").Str("").b);
  s.kvs.push_back(Bytes().Str("x.nested").Put<uint32_t>(9).Put<uint32_t>(9).Put<uint64_t>(2)
                      .Put<uint32_t>(5).Put<uint64_t>(2).Put<int32_t>(1).Put<int32_t>(2)
                      .Put<uint32_t>(5).Put<uint64_t>(1).Put<int32_t>(3).b);
  s.tensors.push_back({"a", {8}, 0, 0});        // f32, 32 bytes
  s.tensors.push_back({"b", {16}, 1, 32});      // f16, 32 bytes
  return s;
}

std::vector<uint8_t> Build(const Spec& s) {
  Bytes out;
  out.Put(s.magic).Put(s.version);
  out.Put<uint64_t>(s.n_tensors.value_or(s.tensors.size()));
  out.Put<uint64_t>(s.n_kv.value_or(s.kvs.size()));
  for (const auto& kv : s.kvs) out.Raw(kv);
  for (const TensorSpec& t : s.tensors) {
    out.Str(t.name).Put<uint32_t>(static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) out.Put(d);
    out.Put(t.type).Put(t.offset);
  }
  uint64_t align = s.alignment == 0 || (s.alignment & (s.alignment - 1)) != 0 ? 32 : s.alignment;
  while (out.b.size() % align != 0) out.b.push_back(0);
  for (uint64_t k = 0; k < s.data_bytes; ++k) out.b.push_back(static_cast<uint8_t>(k));
  return out.b;
}

Result<GgufFile> ParseBytes(const std::vector<uint8_t>& bytes) {
  return GgufFile::Parse(bytes.data(), bytes.size(), "test.gguf");
}

TEST(GgufParse, ValidSmallFile) {
  std::vector<uint8_t> bytes = Build(ValidSpec());
  Result<GgufFile> r = ParseBytes(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->architecture(), "llama");
  EXPECT_EQ(*r->GetStringArray("tokenizer.ggml.tokens"), (std::vector<std::string>{"a", "bc", ""}));
  const GgufValue* nested = r->Find("x.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->elem_type, GgufType::kArray);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].At(1).i, 2);
  EXPECT_EQ(nested->items[1].At(0).i, 3);
  ASSERT_EQ(r->tensors().size(), 2u);
  const GgufTensorInfo* b = r->FindTensor("b");
  EXPECT_EQ(b->type, DType::kF16);
  EXPECT_EQ(b->nbytes, 32u);
  EXPECT_EQ(b->data, bytes.data() + r->data_offset() + 32);
  EXPECT_EQ(b->data[0], 32);  // the data pattern is the byte index
  // Metadata keeps file order.
  EXPECT_EQ(r->metadata()[1].first, "llama.block_count");
}

// Every prefix of a valid file is a truncated file: it must fail, not crash.
TEST(GgufParse, ScalarAndStringArraysAreCompact) {
  Spec spec = ValidSpec();
  spec.kvs.push_back(Bytes().Str("x.u16").Put<uint32_t>(9).Put<uint32_t>(2).Put<uint64_t>(3)
                         .Put<uint16_t>(7).Put<uint16_t>(0).Put<uint16_t>(65535).b);
  spec.kvs.push_back(Bytes().Str("x.f32").Put<uint32_t>(9).Put<uint32_t>(6).Put<uint64_t>(2)
                         .Put<float>(-1.5f).Put<float>(0.25f).b);
  spec.kvs.push_back(Bytes().Str("x.bools").Put<uint32_t>(9).Put<uint32_t>(7).Put<uint64_t>(2)
                         .Put<uint8_t>(1).Put<uint8_t>(0).b);
  std::vector<uint8_t> bytes = Build(spec);
  Result<GgufFile> r = ParseBytes(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const GgufValue* tokens = r->Find("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens->is_compact());
  EXPECT_TRUE(tokens->items.empty());
  // Read in place: the array's on-disk bytes (u64 length + characters each).
  EXPECT_TRUE(tokens->packed.empty());
  EXPECT_EQ(tokens->bytes().size(), 3 * 8 + 3u);
  EXPECT_EQ(tokens->ends, (std::vector<uint32_t>{9, 19, 27}));
  ASSERT_EQ(tokens->size(), 3u);
  EXPECT_EQ(tokens->StringAt(1), "bc");
  EXPECT_EQ(tokens->StringAt(2), "");
  EXPECT_EQ(tokens->At(0).str, "a");
  const GgufValue* u16 = r->Find("x.u16");
  ASSERT_EQ(u16->size(), 3u);
  EXPECT_EQ(u16->bytes().size(), 6u);
  EXPECT_EQ(u16->bytes().data(), u16->mapped.data());
  // Own() copies the bytes; the value then outlives the file.
  GgufValue copy = *u16;
  copy.Own();
  EXPECT_TRUE(copy.mapped.empty());
  EXPECT_EQ(copy.bytes(), u16->bytes());
  EXPECT_EQ(*copy.IntAt(2), 65535);
  EXPECT_EQ(*u16->IntAt(2), 65535);
  EXPECT_EQ(u16->At(2).type, GgufType::kUint16);
  EXPECT_EQ(u16->At(2).u, 65535u);
  EXPECT_EQ(*r->GetIntArray("x.u16"), (std::vector<int64_t>{7, 0, 65535}));
  EXPECT_EQ(*r->GetFloatArray("x.f32"), (std::vector<double>{-1.5, 0.25}));
  EXPECT_EQ(*r->GetIntArray("x.bools"), (std::vector<int64_t>{1, 0}));
  EXPECT_TRUE(r->GetStringArray("x.u16").status().IsInvalidArgument());
  Result<const GgufValue*> a = r->GetArray("x.f32", GgufType::kFloat32);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*(*a)->FloatAt(1), 0.25);
  EXPECT_TRUE(r->GetArray("x.f32", GgufType::kInt32).status().IsInvalidArgument());
  EXPECT_TRUE(r->GetArray("x.none", GgufType::kInt32).status().IsNotFound());
}

TEST(GgufValue, BuildAppendTruncate) {
  GgufValue s = GgufValue::Array(GgufType::kString, {GgufValue::String("x"), GgufValue::String("yz")});
  s.AppendString("");
  s.Append(GgufValue::String("w"));
  ASSERT_TRUE(s.is_compact());
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s.StringAt(1), "yz");
  EXPECT_EQ(s.StringAt(3), "w");
  s.Truncate(2);
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.packed.size(), 8 + 1 + 8 + 2u);
  s.Truncate(0);
  EXPECT_EQ(s.size(), 0u);

  GgufValue i = GgufValue::Array(GgufType::kInt32, {GgufValue::Int32(-3)});
  i.Append(GgufValue::Int32(5));
  ASSERT_TRUE(i.is_compact());
  EXPECT_EQ(*i.IntAt(0), -3);
  EXPECT_EQ(*i.FloatAt(1), 5.0);
  i.Truncate(1);
  EXPECT_EQ(i.size(), 1u);
  // An item of another type keeps every item, in the general form.
  i.Append(GgufValue::String("bad"));
  EXPECT_FALSE(i.is_compact());
  ASSERT_EQ(i.size(), 2u);
  EXPECT_EQ(i.At(0).i, -3);
  EXPECT_EQ(i.At(1).str, "bad");
  // Out of range for the element width: general form too.
  GgufValue u8 = GgufValue::Uint8(0);
  u8.u = 300;
  EXPECT_FALSE(GgufValue::Array(GgufType::kUint8, {u8}).is_compact());
}

TEST(GgufParse, EveryTruncationFailsCleanly) {
  std::vector<uint8_t> bytes = Build(ValidSpec());
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    Result<GgufFile> r = GgufFile::Parse(prefix.data(), prefix.size(), "test.gguf");
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes was accepted";
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
    EXPECT_NE(r.status().message().find("test.gguf"), std::string::npos);
  }
}

struct Corruption {
  const char* name;
  void (*mutate)(Spec*);
  const char* expect;  // substring of the error message
  StatusCode code = StatusCode::kCorruption;
};

const Corruption kCorruptions[] = {
    {"bad magic", [](Spec* s) { s->magic = 0x46554746; }, "bad magic"},
    {"version 1", [](Spec* s) { s->version = 1; }, "version 1", StatusCode::kUnsupported},
    {"version 4", [](Spec* s) { s->version = 4; }, "version 4", StatusCode::kUnsupported},
    {"big endian", [](Spec* s) { s->version = 0x03000000; }, "big-endian", StatusCode::kUnsupported},
    {"huge string length",
     [](Spec* s) { s->kvs[0] = Bytes().Str("general.architecture").Put<uint32_t>(8).Put<uint64_t>(1ull << 62).b; },
     "goes beyond the end"},
    {"huge key length", [](Spec* s) { s->kvs[0] = Bytes().Put<uint64_t>(~0ull).b; }, "metadata key length"},
    {"huge array count",
     [](Spec* s) { s->kvs[2] = Bytes().Str("t").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(1ull << 40).b; },
     "cannot fit"},
    {"array count just too big for u32 items",
     [](Spec* s) { s->kvs[2] = Bytes().Str("t").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(100).b; },
     "cannot fit"},
    {"huge tensor count", [](Spec* s) { s->n_tensors = 1ull << 60; }, "tensor count"},
    {"huge kv count", [](Spec* s) { s->n_kv = ~0ull; }, "metadata count"},
    {"unknown value type", [](Spec* s) { s->kvs[1] = Bytes().Str("k").Put<uint32_t>(13).Put<uint32_t>(0).b; },
     "unknown value type 13"},
    {"unknown array element type",
     [](Spec* s) { s->kvs[2] = Bytes().Str("t").Put<uint32_t>(9).Put<uint32_t>(77).Put<uint64_t>(0).b; },
     "unknown array element type 77"},
    {"bool not 0/1", [](Spec* s) { s->kvs[1] = Bytes().Str("k").Put<uint32_t>(7).Put<uint8_t>(2).b; },
     "neither 0 nor 1"},
    {"bool array item not 0/1",
     [](Spec* s) {
       s->kvs[1] = Bytes().Str("k").Put<uint32_t>(9).Put<uint32_t>(7).Put<uint64_t>(3)
                       .Put<uint8_t>(1).Put<uint8_t>(0).Put<uint8_t>(5).b;
     },
     "bool value 5 is neither 0 nor 1"},
    {"string array item beyond the end",
     [](Spec* s) {
       s->kvs[1] = Bytes().Str("k").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(2)
                       .Str("ok").Put<uint64_t>(1ull << 40).b;
     },
     "goes beyond the end"},
    {"deep nesting",
     [](Spec* s) {
       Bytes b;
       b.Str("deep").Put<uint32_t>(9);
       for (int d = 0; d < 20; ++d) b.Put<uint32_t>(9).Put<uint64_t>(1);
       b.Put<uint32_t>(0).Put<uint64_t>(0);
       s->kvs[1] = b.b;
     },
     "nested deeper"},
    {"empty key", [](Spec* s) { s->kvs[1] = KvU32("", 1); }, "empty metadata key"},
    {"duplicate key", [](Spec* s) { s->kvs[1] = KvString("general.architecture", "x"); },
     "duplicate metadata key 'general.architecture'"},
    {"duplicate tensor", [](Spec* s) { s->tensors[1].name = "a"; }, "duplicate tensor name 'a'"},
    {"n_dims 5", [](Spec* s) { s->tensors[0].dims = {8, 1, 1, 1, 1}; }, "5 dimensions"},
    {"dim 0", [](Spec* s) { s->tensors[0].dims = {8, 0}; }, "dimension 1 is 0"},
    {"element count overflow", [](Spec* s) { s->tensors[0].dims = {1ull << 32, 1ull << 32}; }, "overflows"},
    {"dim above int64", [](Spec* s) { s->tensors[0].dims = {1ull << 63}; }, "must be positive"},
    {"type 4 (removed)", [](Spec* s) { s->tensors[0].type = 4; }, "ggml type id 4"},
    {"type 31 (removed)", [](Spec* s) { s->tensors[0].type = 31; }, "ggml type id 31"},
    {"type 1000", [](Spec* s) { s->tensors[0].type = 1000; }, "ggml type id 1000"},
    {"row not a block multiple", [](Spec* s) { s->tensors[0] = {"a", {16}, 2, 0}; }, "block size 32"},
    {"offset misaligned", [](Spec* s) { s->tensors[1].offset = 33; }, "not a multiple of the alignment"},
    {"data out of bounds", [](Spec* s) { s->tensors[1].offset = 64; }, "beyond the end"},
    {"data truncated", [](Spec* s) { s->data_bytes = 40; }, "beyond the end"},
    {"overlapping tensors", [](Spec* s) { 
       s->tensors[1] = {"b", {16}, 0, 32};
       s->tensors[0].dims = {16};
       s->data_bytes = 128;
     },
     "overlaps"},
    {"alignment 0", [](Spec* s) { s->kvs[1] = KvU32("general.alignment", 0); }, "power of two"},
    {"alignment 3", [](Spec* s) { s->kvs[1] = KvU32("general.alignment", 3); }, "power of two"},
    {"alignment as string", [](Spec* s) { s->kvs[1] = KvString("general.alignment", "32"); }, "expected an integer"},
};

TEST(GgufParse, CorruptionTable) {
  for (const Corruption& c : kCorruptions) {
    SCOPED_TRACE(c.name);
    Spec spec = ValidSpec();
    c.mutate(&spec);
    std::vector<uint8_t> bytes = Build(spec);
    Result<GgufFile> r = ParseBytes(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << r.status().ToString();
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().ToString();
    EXPECT_NE(r.status().message().find("test.gguf"), std::string::npos) << r.status().ToString();
    if (c.code == StatusCode::kCorruption && std::string(c.name).find("alignment") == std::string::npos) {
      EXPECT_NE(r.status().message().find("offset "), std::string::npos) << r.status().ToString();
    }
  }
}

TEST(GgufParse, AlignmentKeyMovesDataSection) {
  Spec spec = ValidSpec();
  spec.kvs[1] = KvU32("general.alignment", 64);
  spec.alignment = 64;
  spec.tensors[1].offset = 64;
  spec.data_bytes = 96;
  std::vector<uint8_t> bytes = Build(spec);
  Result<GgufFile> r = ParseBytes(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->alignment(), 64u);
  EXPECT_EQ(r->data_offset() % 64, 0u);
  EXPECT_EQ(r->FindTensor("b")->data[0], 64);
}

TEST(GgufParse, NoTensorsNeedsNoDataSection) {
  Spec spec = ValidSpec();
  spec.tensors.clear();
  spec.data_bytes = 0;
  std::vector<uint8_t> bytes = Build(spec);
  Result<GgufFile> r = ParseBytes(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->tensors().empty());
}

TEST(GgufOpen, MissingFileIsNotFound) {
  Result<GgufFile> r = GgufFile::Open("/nonexistent/model.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
}

}  // namespace
}  // namespace formiga
