// Sampling and length flags shared by `run` and `chat` (llama.cpp's names and
// defaults, so commands people know keep working).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace formiga::cli {

struct SamplingFlags {
  int64_t n_predict = 256;
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float typical_p = 1.0f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int64_t seed = -1;  // -1: random
  std::vector<std::string> stop;
  bool ignore_eos = false;

  uint64_t seed_used = 0;  // filled by Apply

  // Copies the flags into a request (draws a seed when -1).
  Status Apply(GenerationRequest& req);
};

void AddSamplingFlags(CLI::App* cmd, SamplingFlags& f);

}  // namespace formiga::cli
