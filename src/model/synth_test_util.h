// Test helper: a small random-weight model made in-process with `synth`
// (model/synth.h) and opened from a temporary file, which is removed at once
// (the mapping stays valid). Used by the placement and GPU tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "core/status.h"
#include "formats/gguf.h"
#include "model/config.h"
#include "model/synth.h"

namespace formiga::testing {

// `type`: a quantize preset (q8_0, f16, ...); `donor`: a GGUF whose tokenizer
// the model takes; `tag` names the temporary file.
inline Result<GgufFile> SynthTinyModel(const ModelConfig& c, const std::string& type, const std::string& donor,
                                       const std::string& tag, int threads = 1) {
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("formiga_" + tag + "_" + std::to_string(getpid()) + ".gguf"))
                               .string();
  SynthOptions o;
  o.type = type;
  o.tokenizer_from = donor;
  o.threads = threads;
  FORMIGA_RETURN_IF_ERROR(SynthesizeModel(c, o, path).status());
  Result<GgufFile> f = GgufFile::Open(path);
  std::filesystem::remove(path);
  return f;
}

}  // namespace formiga::testing
