// libFuzzer target: GgufFile::Parse on arbitrary bytes, then touch every
// result (metadata, typed getters, tensor data) so that any pointer the parser
// hands out that reaches outside the input is caught by ASan.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/gguf.h"

namespace {

volatile uint64_t g_sink = 0;

void Touch(const formiga::GgufValue& v) {
  g_sink = g_sink + v.u + static_cast<uint64_t>(v.i) + v.str.size();
  if (v.type != formiga::GgufType::kArray) return;
  if (!v.is_compact()) {
    for (const formiga::GgufValue& item : v.items) Touch(item);
    return;
  }
  // Compact arrays: every item, through the accessors (bounds checked by ASan).
  for (size_t k = 0; k < v.size(); ++k) Touch(v.At(k));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  formiga::Result<formiga::GgufFile> r = formiga::GgufFile::Parse(data, size, "fuzz.gguf");
  if (!r.ok()) return 0;
  const formiga::GgufFile& f = *r;
  for (const auto& [key, value] : f.metadata()) {
    Touch(value);
    (void)f.GetString(key);
    (void)f.GetInt(key);
    (void)f.GetFloat(key);
    (void)f.GetStringArray(key);
    (void)f.GetIntArray(key);
    (void)f.GetFloatArray(key);
  }
  g_sink = g_sink + f.architecture().size();
  for (const formiga::GgufTensorInfo& t : f.tensors()) {
    if (t.nbytes > 0) g_sink = g_sink + t.data[0] + t.data[t.nbytes - 1];
    g_sink = g_sink + static_cast<uint64_t>(t.n_elements());
    if (f.FindTensor(t.name) == nullptr) __builtin_trap();
  }
  return 0;
}
