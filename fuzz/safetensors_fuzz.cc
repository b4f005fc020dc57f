// libFuzzer target: SafetensorsFile::Parse on arbitrary bytes, then touch the
// first and last byte of every tensor so out-of-bounds views are caught by ASan.
#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"

namespace {
volatile uint64_t g_sink = 0;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  formiga::Result<formiga::SafetensorsFile> r = formiga::SafetensorsFile::Parse(data, size, "fuzz.safetensors");
  if (!r.ok()) return 0;
  for (const formiga::SafetensorsTensor& t : r->tensors()) {
    if (t.nbytes > 0) g_sink = g_sink + t.data[0] + t.data[t.nbytes - 1];
    g_sink = g_sink + static_cast<uint64_t>(t.n_elements()) + t.shape.size();
    if (r->Find(t.name) == nullptr) __builtin_trap();
  }
  for (const auto& [k, v] : r->metadata()) g_sink = g_sink + k.size() + v.size();
  return 0;
}
