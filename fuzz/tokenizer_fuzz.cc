// libFuzzer target: Tokenizer::Encode on arbitrary bytes (with and without
// special-token parsing) and Decode/StreamingDecoder on arbitrary ids, for
// both test models (SmolLM2: byte-level BPE; Gemma-3: SentencePiece-style).
//
// Models load once in LLVMFuzzerInitialize from $FORMIGA_MODELS_DIR, else
// <source>/.cache/models. Checks: no crash/UB (ASan+UBSan), ids in range,
// decode(encode(x)) == x for valid UTF-8 without "▁" (SPM) and streaming
// output is valid UTF-8 that equals the sanitized full decode.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace {

std::vector<std::unique_ptr<formiga::Tokenizer>>* g_tokenizers = nullptr;
// Per tokenizer: bytes that encode to nothing (a byte-level vocabulary may
// lack symbols, e.g. SmolLM2 has none for 0x04 or 0xFF); they are dropped.
std::vector<std::array<bool, 256>>* g_dropped = nullptr;

std::filesystem::path ModelsDir() {
  if (const char* env = std::getenv("FORMIGA_MODELS_DIR")) return env;
#ifdef FORMIGA_SOURCE_DIR
  return std::filesystem::path(FORMIGA_SOURCE_DIR) / ".cache" / "models";
#else
  return std::filesystem::path(".cache") / "models";
#endif
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_tokenizers = new std::vector<std::unique_ptr<formiga::Tokenizer>>();
  for (const char* name : {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"}) {
    auto gguf = formiga::GgufFile::Open((ModelsDir() / name).string());
    if (!gguf.ok()) continue;
    auto tok = formiga::Tokenizer::FromGguf(*gguf);
    if (tok.ok()) g_tokenizers->push_back(std::move(tok).value());
  }
  g_dropped = new std::vector<std::array<bool, 256>>();
  for (const auto& tok : *g_tokenizers) {
    std::array<bool, 256> dropped{};
    for (int b = 0; b < 256; ++b) dropped[b] = tok->Encode(std::string(1, static_cast<char>(b)), false, false)->empty();
    g_dropped->push_back(dropped);
  }
  if (g_tokenizers->empty()) {
    __builtin_trap();  // nothing to fuzz: set FORMIGA_MODELS_DIR
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte picks the tokenizer and the mode; the rest is the input.
  const uint8_t mode = data[0];
  const size_t which = mode % g_tokenizers->size();
  const formiga::Tokenizer& tok = *(*g_tokenizers)[which];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((mode & 0x80) == 0) {
    auto ids = tok.Encode(text, (mode & 2) != 0, (mode & 4) != 0);
    if (!ids.ok()) __builtin_trap();
    for (int32_t id : *ids) {
      if (id < 0 || id >= tok.vocab_size()) __builtin_trap();
    }
    if ((mode & 6) == 0 && formiga::SanitizeUtf8(text) == text &&
        text.find("\xE2\x96\x81") == std::string_view::npos) {
      std::string kept;
      for (char c : text) {
        if (!(*g_dropped)[which][static_cast<uint8_t>(c)]) kept.push_back(c);
      }
      if (tok.Decode(*ids, false) != kept) __builtin_trap();  // lossless on valid UTF-8
    }
  } else {
    // Random ids (including out-of-range ones) through Decode and streaming.
    std::vector<int32_t> ids;
    for (size_t i = 0; i + 4 <= text.size(); i += 4) {
      uint32_t v;
      __builtin_memcpy(&v, text.data() + i, 4);
      ids.push_back(static_cast<int32_t>(v % (tok.vocab_size() + 16)) - 8);
    }
    bool skip = (mode & 1) != 0;
    std::string full = formiga::SanitizeUtf8(tok.Decode(ids, skip));
    formiga::StreamingDecoder dec(tok, skip);
    std::string streamed;
    for (int32_t id : ids) {
      std::string part = dec.Push(id);
      if (formiga::SanitizeUtf8(part) != part) __builtin_trap();
      streamed += part;
    }
    streamed += dec.Flush();
    if (streamed != full) __builtin_trap();
  }
  return 0;
}
