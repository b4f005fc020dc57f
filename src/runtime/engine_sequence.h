// Engine::Sequence: the state of one request inside the engine (private to
// engine.cc and scheduler.cc).
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "runtime/engine.h"

namespace formiga {

struct Engine::Sequence {
  using Clock = std::chrono::steady_clock;

  int64_t id = 0;
  GenerationRequest req;
  std::vector<int32_t> tokens;  // prompt + generated so far
  int64_t n_prompt = 0;
  int64_t n_computed = 0;       // leading tokens whose K/V are in the cache
  int64_t n_generated = 0;
  int64_t cached_prompt_tokens = 0;

  std::vector<int32_t> blocks;  // block table: position p lives in blocks[p / block_size]
  int64_t n_registered = 0;     // leading full blocks registered in the prefix cache
  uint64_t last_hash = 0;       // prefix hash of block n_registered - 1

  std::unique_ptr<Sampler> sampler;
  std::unique_ptr<StreamingDecoder> decoder;
  std::unique_ptr<StopMatcher> stop;

  bool scheduled = false;  // has a chunk in the step being planned
  bool cancelled = false;
  bool finished = false;
  Clock::time_point submitted;
  Clock::time_point first_token;

  int64_t pending() const { return static_cast<int64_t>(tokens.size()) - n_computed; }
};

}  // namespace formiga
