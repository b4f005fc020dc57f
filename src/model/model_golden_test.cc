// formiga's forward pass against independent implementations, on the real
// test models and on files formiga quantized itself. The references are
// committed goldens made by scripts/golden/make_logits_golden.py (format and
// contents described there and in tests/data/logits/README.md):
//
//   - llama.cpp: top-32 log-probabilities on 512 positions of an English text
//     (2 chunks of 512 tokens, rows 256..511, chunked as llama.cpp's
//     perplexity tool does). formiga runs the same tokens on the cpu backend
//     (int8 activations, f16 KV cache, as llama.cpp) and must give mean
//     KL(llama.cpp || formiga) <= 0.01 and the same top-1 token on >= 98 % of
//     the rows counting near-ties, >= 93 % raw (see the NOTE at kMinTop1).
//     KL uses a tail bucket for the mass outside the top-32:
//       KL ~= sum_topK p_ref (log p_ref - log p_f) + p_tail_ref (log p_tail_ref - log p_tail_f).
//     The tokenization of the text must equal llama.cpp's.
//   - transformers (float32, weights dequantized by transformers' GGUF
//     loader): raw logits of the top-32 tokens on the first 64 positions.
//     formiga's ref backend (weights dequantized to f32, double accumulation,
//     f32 KV cache) must match to max |Δlogit| <= 1e-3 * max |logit| (the
//     largest |logit| of the row, over the whole vocabulary).
//   - llama.cpp greedy decoding of SmolLM2-Instruct for a chat-templated
//     question (English and Portuguese): the same tokens, up to 32.
//
// Every test prints what it measured (KL, top-1, perplexities, max errors).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/test_models.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "model/forward_test_util.h"
#include "model/model.h"
#include "model/quantize.h"
#include "tokenizer/tokenizer.h"

#if defined(__SANITIZE_ADDRESS__)
#define FORMIGA_GOLDEN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FORMIGA_GOLDEN_ASAN 1
#endif
#endif

namespace formiga {
namespace {

namespace fs = std::filesystem;
using testing::ForwardTestRunner;
using testing::LogSoftmax;

// NOTE: under AddressSanitizer the 512-position runs take minutes; they skip
// there (the release build runs them) while the tokenizer and file checks
// still run.
#ifdef FORMIGA_GOLDEN_ASAN
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// NOTE: raw top-1 agreement with llama.cpp >= 98 % takes bit-identical
// arithmetic, not just the same rounding places (measured, docs/models.md
// "Agreement with llama.cpp"). Activations are rounded to int8 before every
// MatMul, so one quant rounded the other way (a 1e-7 difference in its input
// is enough) grows, layer after layer and through attention into later rows,
// into differences as large as two independent roundings. Rounding where
// llama.cpp rounds (f16 activation scales, q and the softmax probabilities in
// f16 against the f16 cache, RMSNorm sum in double, f32 RoPE angles, GELU
// through f16) left SmolLM2 Q4_1 at 97.1 % (97.3 % before): layer 0
// identical but for the last bits of attention and SiLU, and by the last
// layer only 2.3 % of the values still identical. Adding ggml's own expf
// polynomial and its GEMM's summation order in attention made all 30 layers
// bit-identical: 100 % top-1, KL 0; removing any one piece gave back
// 97.1-97.9 %. That experiment was not kept: it copies llama.cpp's kernels,
// wants a transposed V cache, and its f32 RoPE angles lose accuracy at long
// contexts; Q8_0, Q5_0 and K-quant weights would also need llama.cpp's GEMM
// orders, which differ between its AVX2/AVX-512/ARM builds; and its own f16
// attention products are summed in one order for batches (tinyBLAS) and
// another for one token (ggml_vec_dot_f16), while formiga gives a row the
// same bits at any batch size. Exact math is barely closer:
// transformers in float32 (which formiga's ref backend matches to 4e-6)
// agrees with llama.cpp on 98.2 % of SmolLM2's rows, and llama.cpp agrees
// with itself on only 96.7 % (SmolLM2 Q4_1) and 94.1 % (Gemma-3 Q4_K_M)
// between its plain and flash-attention paths
// (scripts/golden/llamacpp_self_agreement.py).
// The disagreements are near-ties, so the 98 % bar counts a row whose
// llama.cpp log-prob gap between the two choices is <= 0.25 nats as agreeing,
// and raw top-1 must stay >= 93 %: one point under llama.cpp's own
// self-agreement on Gemma-3, because any change of float rounding order moves
// it by about a point either way (the rows-in-lanes Q5_0 kernel, exact in
// int32 per block: Gemma-3 English 95.3 -> 94.0 %, Portuguese 94.5 -> 96.9 %,
// mean KL 0.0042 -> 0.0041; the roundings above, alone or together: 93.0-97.9 %
// per variant).
constexpr double kMinTop1 = 0.93;

fs::path GoldenDir() { return testing::SourceDir() / "tests" / "data" / "logits"; }
fs::path TextDir() { return testing::SourceDir() / "tests" / "data" / "text"; }

std::string ReadAll(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// A .fgld file: "FGLD", u32 version, u64 header length, JSON header, arrays.
class Golden {
 public:
  bool Load(const fs::path& path, std::string* error) {
    bytes_ = ReadAll(path);
    if (bytes_.size() < 16 || bytes_.compare(0, 4, "FGLD") != 0) {
      *error = "not a .fgld golden file: " + path.string() + " (run scripts/golden/make_logits_golden.py)";
      return false;
    }
    uint64_t n = 0;
    std::memcpy(&n, bytes_.data() + 8, 8);
    if (16 + n > bytes_.size()) {
      *error = "truncated header in " + path.string();
      return false;
    }
    header_ = nlohmann::json::parse(bytes_.substr(16, n));
    return true;
  }
  const nlohmann::json& header() const { return header_; }
  bool Has(const std::string& name) const { return header_["arrays"].contains(name); }
  std::vector<int64_t> Shape(const std::string& name) const {
    return header_["arrays"][name]["shape"].get<std::vector<int64_t>>();
  }
  // The array's elements (i32 or f32; T must match), empty if missing or out of bounds.
  template <typename T>
  std::vector<T> Array(const std::string& name) const {
    if (!Has(name)) return {};
    const auto& m = header_["arrays"][name];
    int64_t count = 1;
    for (int64_t d : m["shape"].get<std::vector<int64_t>>()) count *= d;
    const uint64_t off = m["offset"].get<uint64_t>();
    if (off + count * sizeof(T) > bytes_.size()) return {};
    std::vector<T> out(static_cast<size_t>(count));
    std::memcpy(out.data(), bytes_.data() + off, out.size() * sizeof(T));
    return out;
  }

 private:
  std::string bytes_;
  nlohmann::json header_;
};

uint32_t Crc32File(const fs::path& path, uint64_t* size) {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  std::ifstream f(path, std::ios::binary);
  std::vector<char> buf(1 << 20);
  uint32_t crc = 0xFFFFFFFFu;
  *size = 0;
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = f.gcount();
    for (std::streamsize i = 0; i < got; ++i) {
      crc = table[(crc ^ static_cast<uint8_t>(buf[i])) & 0xFF] ^ (crc >> 8);
    }
    *size += static_cast<uint64_t>(got);
  }
  return crc ^ 0xFFFFFFFFu;
}

// Agreement of formiga's rows with llama.cpp's top-K rows.
struct Agreement {
  double kl_sum = 0, kl_max = 0;
  int64_t rows = 0, top1 = 0;
  double nll = 0;  // of the scored targets (perplexity)
  int64_t scored = 0;
  // Rows where formiga's top-1 is not llama.cpp's but llama.cpp's own log-prob
  // of formiga's choice is within kNearTie of its top-1 (a near-tie that the
  // int8 rounding of either implementation can flip), and the largest such gap
  // over all disagreements (infinity when formiga's choice is outside the top-K).
  int64_t near_ties = 0;
  double max_gap = 0;
  static constexpr double kNearTie = 0.25;

  double mean_kl() const { return rows ? kl_sum / static_cast<double>(rows) : 0; }
  double top1_rate() const { return rows ? static_cast<double>(top1) / static_cast<double>(rows) : 0; }
  // Top-1 agreement counting near-ties as agreement.
  double top1_or_tie_rate() const {
    return rows ? static_cast<double>(top1 + near_ties) / static_cast<double>(rows) : 0;
  }
  double ppl() const { return scored ? std::exp(nll / static_cast<double>(scored)) : 0; }

  // lp: formiga's log-softmax of one row; ids/ref_lp: llama.cpp's top-K;
  // ref_tail: log of llama.cpp's mass outside the top-K.
  void AddRow(const std::vector<double>& lp, const int32_t* ids, const float* ref_lp, float ref_tail, int K) {
    double kl = 0, mass_f = 0;
    for (int k = 0; k < K; ++k) {
      const double p = std::exp(static_cast<double>(ref_lp[k]));
      kl += p * (ref_lp[k] - lp[ids[k]]);
      mass_f += std::exp(lp[ids[k]]);
    }
    const double tail_f = std::max(1.0 - mass_f, 1e-30);
    kl += std::exp(static_cast<double>(ref_tail)) * (ref_tail - std::log(tail_f));
    kl_sum += kl;
    kl_max = std::max(kl_max, kl);
    const int32_t f_top = static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin());
    top1 += f_top == ids[0];
    if (f_top != ids[0]) {
      double gap = HUGE_VAL;
      for (int k = 1; k < K; ++k) {
        if (ids[k] == f_top) gap = static_cast<double>(ref_lp[0]) - ref_lp[k];
      }
      max_gap = std::max(max_gap, gap);
      near_ties += gap <= kNearTie;
    }
    ++rows;
  }
};

// Runs one chunk through a fresh KV cache: the prefix [0, first) in one
// batch, then rows [first, n) in batches of `step` with logits for each row;
// `on_row(r, logits)` gets r in [0, n - first).
template <typename OnRow>
void RunChunk(Model& model, const std::vector<int32_t>& tokens, int64_t first, DType kv_type, OnRow on_row) {
  constexpr int64_t kBlock = 16, kStep = 64;
  const int64_t n = static_cast<int64_t>(tokens.size());
  ForwardTestRunner runner(model, (n + kBlock - 1) / kBlock, kBlock, kv_type);
  const int s = runner.AddSequence();
  const int64_t V = runner.vocab();
  if (first > 0) runner.Step({s}, {std::vector<int32_t>(tokens.begin(), tokens.begin() + first)});
  for (int64_t start = first; start < n; start += kStep) {
    const int64_t T = std::min(kStep, n - start);
    std::vector<int32_t> rows(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) rows[t] = static_cast<int32_t>(t);
    const std::vector<float> logits =
        runner.Run({s}, {std::vector<int32_t>(tokens.begin() + start, tokens.begin() + start + T)}, {rows});
    ASSERT_EQ(logits.size(), static_cast<size_t>(T * V));
    for (int64_t t = 0; t < T; ++t) on_row(start - first + t, logits.data() + t * V);
  }
}

struct LoadedModel {
  std::unique_ptr<Backend> backend;
  Result<GgufFile> file = Status::NotFound("not loaded");
  std::unique_ptr<Model> model;
};

// Loads `path` on the cpu backend (ref when `ref`); fails the test on error.
void Load(const std::string& path, bool ref, LoadedModel* out) {
  if (ref) {
    out->backend = MakeRefBackend();
  } else {
    auto be = MakeCpuBackend(0);
    ASSERT_TRUE(be.ok()) << be.status().ToString();
    out->backend = std::move(*be);
  }
  out->file = GgufFile::Open(path);
  ASSERT_TRUE(out->file.ok()) << out->file.status().ToString();
  auto m = LoadModel(*out->file, *out->backend);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  out->model = std::move(*m);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

struct VariantSpec {
  const char* variant;   // golden name
  const char* source;    // shipped model file (testing::kSmolLM2 / kGemma3)
  const char* quantize;  // formiga quantize preset, or nullptr for the shipped file
};

// Checks `tokens` (formiga) against the golden array `name`.
void ExpectSameTokens(const std::vector<int32_t>& formiga_ids, const std::vector<int32_t>& ref, const char* what) {
  ASSERT_FALSE(ref.empty()) << what << ": golden has no tokens";
  EXPECT_EQ(formiga_ids.size(), ref.size()) << what << ": token count differs from llama.cpp";
  const size_t n = std::min(formiga_ids.size(), ref.size());
  for (size_t i = 0; i < n; ++i) {
    if (formiga_ids[i] != ref[i]) {
      ADD_FAILURE() << what << ": first token that differs from llama.cpp is #" << i << ": formiga "
                    << formiga_ids[i] << ", llama.cpp " << ref[i];
      return;
    }
  }
}

// The llama.cpp comparison for one variant.
void CheckAgainstLlamaCpp(const VariantSpec& spec) {
  FORMIGA_REQUIRE_MODEL(src, spec.source);
  Golden g;
  std::string err;
  ASSERT_TRUE(g.Load(GoldenDir() / (std::string(spec.variant) + ".llamacpp.fgld"), &err)) << err;
  const nlohmann::json& h = g.header();

  std::string path = src;
  fs::path tmp_dir;
  if (spec.quantize != nullptr) {
    // Re-create formiga's quantized file and check it is the very file the
    // golden was computed from.
    tmp_dir = fs::temp_directory_path() / ("formiga_golden_" + std::to_string(::getpid()) + "_" + spec.variant);
    fs::create_directories(tmp_dir);
    path = (tmp_dir / (std::string(spec.variant) + ".gguf")).string();
    const auto t0 = std::chrono::steady_clock::now();
    QuantizeOptions options;
    options.preset = spec.quantize;
    auto rep = QuantizeModel(src, path, options);
    ASSERT_TRUE(rep.ok()) << rep.status().ToString();
    uint64_t size = 0;
    const uint32_t crc = Crc32File(path, &size);
    std::printf("[%s] formiga quantize %s: %.1f s, %llu bytes, crc32 %08x\n", spec.variant, spec.quantize,
                Seconds(t0), static_cast<unsigned long long>(size), crc);
    const auto& q = h["quantized_file"];
    ASSERT_TRUE(q.is_object()) << "golden lacks quantized_file";
    if (size != q["size"].get<uint64_t>() || crc != q["crc32"].get<uint32_t>()) {
      fs::remove_all(tmp_dir);
      FAIL() << spec.variant << ": formiga quantize " << spec.quantize << " no longer writes the file the "
             << "llama.cpp golden was computed on (size " << size << " vs " << q["size"] << ", crc32 " << crc
             << " vs " << q["crc32"] << "). If the quantizer changed on purpose, regenerate the goldens: "
             << "python3 scripts/golden/make_logits_golden.py --formiga build/<dir>/formiga";
    }
  }
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      if (!dir.empty()) fs::remove_all(dir);
    }
  } cleanup{tmp_dir};

  // Tokenization of the texts must be llama.cpp's.
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto tok = Tokenizer::FromGguf(*file);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const std::vector<int32_t> fed = g.Array<int32_t>("tokens");
  const int64_t n_ctx = h["n_ctx"].get<int64_t>(), n_chunks = h["n_chunks"].get<int64_t>();
  const int64_t first = h["first_row"].get<int64_t>();
  const int K = h["k"].get<int>();
  {
    auto ids = (*tok)->Encode(ReadAll(TextDir() / h["text"].get<std::string>()), true, false);
    ASSERT_TRUE(ids.ok()) << ids.status().ToString();
    if (g.Has("text_tokens")) {
      ExpectSameTokens(*ids, g.Array<int32_t>("text_tokens"), "English text");
    }
    // The fed chunks are the text's tokens with BOS over each chunk's first token.
    ASSERT_EQ(fed.size(), static_cast<size_t>(n_chunks * n_ctx));
    ASSERT_GE(ids->size(), fed.size());
    for (int64_t i = 0; i < n_chunks * n_ctx; ++i) {
      const bool bos_slot = h["add_bos"].get<bool>() && i % n_ctx == 0;
      ASSERT_EQ(fed[i], bos_slot ? (*tok)->bos_id() : (*ids)[i]) << "fed token " << i;
    }
  }
  if (kSanitized) GTEST_SKIP() << "512-position forward passes skip under AddressSanitizer (release runs them)";

  LoadedModel lm;
  Load(path, false, &lm);
  if (::testing::Test::HasFatalFailure()) return;
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = g.Array<int32_t>("topk_ids");
  const std::vector<float> lps = g.Array<float>("topk_logprobs");
  const std::vector<float> tails = g.Array<float>("tail_logprob");
  const int64_t rows_per_chunk = n_ctx - first;
  ASSERT_EQ(ids.size(), static_cast<size_t>(n_chunks * rows_per_chunk * K));
  Agreement a;
  const int64_t V = lm.model->config().vocab_size;
  for (int64_t c = 0; c < n_chunks; ++c) {
    const std::vector<int32_t> chunk(fed.begin() + c * n_ctx, fed.begin() + (c + 1) * n_ctx);
    RunChunk(*lm.model, chunk, first, DType::kF16, [&](int64_t r, const float* logits) {
      const std::vector<double> lp = LogSoftmax(logits, V);
      const int64_t row = c * rows_per_chunk + r;
      a.AddRow(lp, ids.data() + row * K, lps.data() + row * K, tails[row], K);
      if (first + r + 1 < n_ctx) {  // perplexity: the last row has no target
        a.nll -= lp[chunk[first + r + 1]];
        ++a.scored;
      }
    });
    if (::testing::Test::HasFatalFailure()) return;
  }
  const double ref_ppl = h["ppl_golden_chunks"].get<double>();
  std::printf("[%s] vs llama.cpp over %lld rows (%.1f s): mean KL %.6f, max KL %.4f, top-1 %.2f%% "
              "(%.2f%% counting near-ties; largest llama.cpp log-prob gap at a disagreement %.3f), "
              "ppl formiga %.4f vs llama.cpp %.4f (%+.3f%%)\n",
              spec.variant, static_cast<long long>(a.rows), Seconds(t0), a.mean_kl(), a.kl_max,
              100 * a.top1_rate(), 100 * a.top1_or_tie_rate(), a.max_gap, a.ppl(), ref_ppl,
              100 * (a.ppl() / ref_ppl - 1));
  EXPECT_LE(a.mean_kl(), 0.01);
  EXPECT_GE(a.top1_rate(), kMinTop1);
  EXPECT_GE(a.top1_or_tie_rate(), 0.98);
  // Perplexity over the same 2 chunks, formiga vs llama.cpp: within 2 %.
  EXPECT_NEAR(std::log(a.ppl()), std::log(ref_ppl), 0.02);

  // Portuguese (shipped models): tokenization and one short chunk.
  if (g.Has("pt_tokens")) {
    auto pt = (*tok)->Encode(ReadAll(TextDir() / h["pt_text"].get<std::string>()), true, false);
    ASSERT_TRUE(pt.ok()) << pt.status().ToString();
    ExpectSameTokens(*pt, g.Array<int32_t>("pt_text_tokens"), "Portuguese text");
    const std::vector<int32_t> pt_fed = g.Array<int32_t>("pt_tokens");
    const std::vector<int32_t> pt_ids = g.Array<int32_t>("pt_topk_ids");
    const std::vector<float> pt_lps = g.Array<float>("pt_topk_logprobs");
    const std::vector<float> pt_tails = g.Array<float>("pt_tail_logprob");
    const int64_t pt_first = h["pt_first_row"].get<int64_t>();
    Agreement b;
    RunChunk(*lm.model, pt_fed, pt_first, DType::kF16, [&](int64_t r, const float* logits) {
      b.AddRow(LogSoftmax(logits, V), pt_ids.data() + r * K, pt_lps.data() + r * K, pt_tails[r], K);
    });
    std::printf("[%s] Portuguese vs llama.cpp over %lld rows: mean KL %.6f, max KL %.4f, top-1 %.2f%% "
                "(%.2f%% counting near-ties; largest gap %.3f)\n",
                spec.variant, static_cast<long long>(b.rows), b.mean_kl(), b.kl_max, 100 * b.top1_rate(),
                100 * b.top1_or_tie_rate(), b.max_gap);
    EXPECT_LE(b.mean_kl(), 0.01);
    // 128 rows: one disagreement is 0.8 %; the raw bar is looser than on 512 rows.
    EXPECT_GE(b.top1_rate(), 0.90);
    EXPECT_GE(b.top1_or_tie_rate(), 0.97);
  }
}

TEST(ModelGoldenTest, SmolLM2Q4_1MatchesLlamaCpp) { CheckAgainstLlamaCpp({"smollm2-q4_1", testing::kSmolLM2, nullptr}); }
TEST(ModelGoldenTest, SmolLM2FormigaQ8_0MatchesLlamaCpp) {
  CheckAgainstLlamaCpp({"smollm2-q8_0", testing::kSmolLM2, "q8_0"});
}
TEST(ModelGoldenTest, SmolLM2FormigaQ4_K_MMatchesLlamaCpp) {
  CheckAgainstLlamaCpp({"smollm2-q4_k_m", testing::kSmolLM2, "q4_k_m"});
}
TEST(ModelGoldenTest, Gemma3Q4_K_MMatchesLlamaCpp) { CheckAgainstLlamaCpp({"gemma3-q4_k_m", testing::kGemma3, nullptr}); }
TEST(ModelGoldenTest, Gemma3FormigaQ8_0MatchesLlamaCpp) {
  CheckAgainstLlamaCpp({"gemma3-q8_0", testing::kGemma3, "q8_0"});
}
TEST(ModelGoldenTest, Gemma3FormigaQ4_K_MMatchesLlamaCpp) {
  CheckAgainstLlamaCpp({"gemma3-q4_k_m-requant", testing::kGemma3, "q4_k_m"});
}

// transformers, float32: formiga's ref backend (f32 weights, double
// accumulation, f32 KV cache) on the first 64 positions.
void CheckAgainstTransformers(const char* variant, const char* source) {
  FORMIGA_REQUIRE_MODEL(path, source);
  Golden g;
  std::string err;
  const fs::path gp = GoldenDir() / (std::string(variant) + ".hf.fgld");
  if (!fs::exists(gp)) GTEST_SKIP() << "no transformers golden for " << variant << " (see perplexity.json hf_failures)";
  ASSERT_TRUE(g.Load(gp, &err)) << err;
  if (kSanitized) GTEST_SKIP() << "64-position ref-backend runs skip under AddressSanitizer";
  const std::vector<int32_t> tokens = g.Array<int32_t>("tokens");
  const std::vector<int32_t> ids = g.Array<int32_t>("topk_ids");
  const std::vector<float> ref = g.Array<float>("topk_logits");
  const std::vector<float> row_max = g.Array<float>("row_max_abs");
  const int K = g.header()["k"].get<int>();
  const int64_t P = static_cast<int64_t>(tokens.size());
  LoadedModel lm;
  Load(path, true, &lm);
  if (::testing::Test::HasFatalFailure()) return;
  const auto t0 = std::chrono::steady_clock::now();
  double max_abs = 0, max_rel = 0, scale = 0;
  int64_t top1 = 0;
  const int64_t V = lm.model->config().vocab_size;
  RunChunk(*lm.model, tokens, 0, DType::kF32, [&](int64_t r, const float* logits) {
    double row_abs = 0;
    for (int k = 0; k < K; ++k) {
      row_abs = std::max(row_abs, std::fabs(static_cast<double>(logits[ids[r * K + k]]) - ref[r * K + k]));
    }
    max_abs = std::max(max_abs, row_abs);
    max_rel = std::max(max_rel, row_abs / std::max(1.0, static_cast<double>(row_max[r])));
    scale = std::max(scale, static_cast<double>(row_max[r]));
    top1 += testing::Argmax(logits, V) == ids[r * K];
  });
  std::printf("[%s] ref backend vs transformers f32 over %lld positions x top-%d (%.1f s): max |dlogit| %.3g, "
              "max |dlogit|/max|logit| %.3g (max |logit| %.2f), top-1 %lld/%lld\n",
              variant, static_cast<long long>(P), K, Seconds(t0), max_abs, max_rel, scale,
              static_cast<long long>(top1), static_cast<long long>(P));
  EXPECT_LE(max_rel, 1e-3);
  EXPECT_EQ(top1, P);
}

TEST(ModelGoldenTest, SmolLM2MatchesTransformersF32) { CheckAgainstTransformers("smollm2-q4_1", testing::kSmolLM2); }
TEST(ModelGoldenTest, Gemma3MatchesTransformersF32) { CheckAgainstTransformers("gemma3-q4_k_m", testing::kGemma3); }

// llama.cpp's greedy continuation of SmolLM2-Instruct. NOTE: a free-running
// greedy comparison is ill-posed for this 135M model: llama.cpp's own first
// English token ("L" over "The", margin 0.35) is a near-tie that exact float32
// (transformers) decides the other way, and every later token depends on it.
// So the check is teacher-forced: formiga reads prompt + llama.cpp's tokens in
// one pass and must pick llama.cpp's token at every step, except where
// llama.cpp's own top-2 margin is <= kGreedyTie logits (0.5: at step 0
// llama.cpp's margin is 0.35 for "L" where exact f32 prefers "The" by 0.08, so
// llama.cpp's own rounding moves a margin by 0.43). Both backends must pass
// (measured: ref 1 mismatch at margin 0.348, cpu worst 0.295). Free-running
// texts are printed.
constexpr double kGreedyTie = 0.5;

struct GreedyCheck {
  int steps = 0, mismatches = 0, tie_mismatches = 0;
  double worst_margin = 0;  // largest llama.cpp margin at a mismatch
};

GreedyCheck TeacherForced(Model& model, const std::vector<int32_t>& prompt, const std::vector<int32_t>& gen,
                          const std::vector<double>& margins) {
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), gen.begin(), gen.end());
  GreedyCheck r;
  const int64_t P = static_cast<int64_t>(prompt.size());
  const int64_t V = model.config().vocab_size;
  ForwardTestRunner runner(model, 16, 16);
  const int s = runner.AddSequence();
  std::vector<int32_t> rows;
  for (size_t i = 0; i < gen.size(); ++i) rows.push_back(static_cast<int32_t>(P - 1 + i));
  const std::vector<float> logits = runner.Run({s}, {all}, {rows});
  if (logits.size() != gen.size() * static_cast<size_t>(V)) return r;
  for (size_t i = 0; i < gen.size(); ++i) {
    ++r.steps;
    if (testing::Argmax(logits.data() + i * V, V) != gen[i]) {
      ++r.mismatches;
      r.tie_mismatches += margins[i] <= kGreedyTie;
      r.worst_margin = std::max(r.worst_margin, margins[i]);
    }
  }
  return r;
}

TEST(ModelGoldenTest, SmolLM2GreedyMatchesLlamaCpp) {
  FORMIGA_REQUIRE_MODEL(path, testing::kSmolLM2);
  const nlohmann::json golden = nlohmann::json::parse(ReadAll(GoldenDir() / "greedy.json"));
  if (kSanitized) GTEST_SKIP() << "greedy decoding skips under AddressSanitizer";
  LoadedModel cpu, ref;
  Load(path, false, &cpu);
  if (HasFatalFailure()) return;
  Load(path, true, &ref);
  if (HasFatalFailure()) return;
  auto tok = Tokenizer::FromGguf(*cpu.file);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  const int64_t V = cpu.model->config().vocab_size;
  const int max_new = golden["max_new_tokens"].get<int>();
  int free_running_cases = 0;
  for (const auto& c : golden["cases"]) {
    free_running_cases += c.value("free_running", false) ? 1 : 0;
    const std::string lang = c["lang"].get<std::string>();
    auto prompt = (*tok)->Encode(c["prompt"].get<std::string>(), true, true);
    ASSERT_TRUE(prompt.ok()) << prompt.status().ToString();
    ExpectSameTokens(*prompt, c["prompt_ids"].get<std::vector<int32_t>>(), "chat prompt");
    const std::vector<int32_t> want = c["generated_ids"].get<std::vector<int32_t>>();
    const std::vector<double> margins = c["top2_margins"].get<std::vector<double>>();

    const GreedyCheck r = TeacherForced(*ref.model, *prompt, want, margins);
    const GreedyCheck k = TeacherForced(*cpu.model, *prompt, want, margins);
    std::printf("[greedy %s] teacher-forced on llama.cpp's %d tokens: ref backend %d mismatches (%d at "
                "near-ties, worst llama.cpp margin %.3f); cpu backend %d mismatches (%d at near-ties, worst "
                "margin %.3f)\n",
                lang.c_str(), r.steps, r.mismatches, r.tie_mismatches, r.worst_margin, k.mismatches,
                k.tie_mismatches, k.worst_margin);
    EXPECT_EQ(r.steps, static_cast<int>(want.size()));
    EXPECT_EQ(k.steps, static_cast<int>(want.size()));
    EXPECT_EQ(r.mismatches, r.tie_mismatches) << lang << ": ref backend disagrees with llama.cpp's greedy token "
                                              << "where llama.cpp's margin exceeds " << kGreedyTie;
    EXPECT_EQ(k.mismatches, k.tie_mismatches) << lang << ": cpu backend disagrees with llama.cpp's greedy token "
                                              << "where llama.cpp's margin exceeds " << kGreedyTie;

    // Free-running greedy on the cpu backend, printed for the record.
    ForwardTestRunner runner(*cpu.model, 64, 16);
    const int s = runner.AddSequence();
    std::vector<float> logits = runner.Step({s}, {*prompt});
    std::vector<int32_t> got;
    for (int i = 0; i < max_new && logits.size() == static_cast<size_t>(V); ++i) {
      const int32_t next = testing::Argmax(logits.data(), V);
      got.push_back(next);
      if ((*tok)->IsEndOfGeneration(next)) break;
      logits = runner.Step({s}, {{next}});
    }
    size_t same = 0;
    while (same < got.size() && same < want.size() && got[same] == want[same]) ++same;
    std::printf("[greedy %s] free-running, %zu first tokens identical\n  formiga cpu: %s\n  llama.cpp:   %s\n",
                lang.c_str(), same, (*tok)->Decode(got, false).c_str(),
                c["generated_text"].get<std::string>().c_str());
    // Questions the model answers sensibly with no near-tie on the way: the
    // whole greedy answer (up to 32 tokens or the end token) must be llama.cpp's.
    if (c.value("free_running", false)) {
      EXPECT_EQ(got, want) << lang << ": formiga's greedy answer differs from llama.cpp's";
    }
  }
  EXPECT_GE(free_running_cases, 2) << "greedy.json must hold free-running cases (regenerate it)";
}

}  // namespace
}  // namespace formiga
