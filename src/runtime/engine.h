// Engine: the one generation loop every door (CLI, HTTP server, WhatsApp)
// submits to (DESIGN.md decision 7).
//
// Each Step() is one iteration of continuous batching: the scheduler picks a
// decode token for every running sequence and fills the rest of the step's
// token budget with chunks of waiting prompts (chunked prefill), so a long
// prompt never stalls running streams; the model runs the ragged batch once;
// every sequence whose chunk completed samples a token, which is detokenized
// (whole UTF-8 characters only), checked against stop strings and streamed to
// the request's callback.
//
// KV memory is a paged cache (blocks from a BlockPool). Full blocks are
// registered by prefix hash so that requests sharing a prompt prefix share
// blocks. When blocks run out, the newest running sequence is preempted
// (its blocks freed; it is recomputed later) — a request that fits the limits
// is never failed for lack of blocks.
//
// NOTE: there is no prefill phase or decode phase in the engine: a sequence
// simply has tokens whose KV is not computed yet; a step computes some of them.
//
// Thread safety: not thread-safe. One thread owns the engine and calls
// Submit/Cancel/Step; callbacks run on that thread inside Step().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/kv_cache.h"
#include "model/model.h"
#include "runtime/block_pool.h"
#include "runtime/sampler.h"
#include "runtime/stop_matcher.h"
#include "tokenizer/tokenizer.h"

namespace formiga {

struct EngineOptions {
  int64_t n_ctx = 4096;            // max tokens (prompt + generated) per sequence
  int64_t max_batch_tokens = 512;  // token budget of one step (prefill chunks + decodes)
  int64_t max_seqs = 16;           // sequences running at once
  int64_t block_size = 16;         // KV positions per block
  int64_t n_blocks = 0;            // 0: enough for max_seqs full contexts
  DType kv_type = DType::kF16;     // f16 (default), q8_0 (half the memory) or f32
  bool prefix_cache = true;

  Status Validate() const;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };
const char* FinishReasonName(FinishReason r);  // "stop", "length", "cancelled", "error"

struct GenerationStats {
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens whose KV came from the prefix cache
  int64_t generated_tokens = 0;
  double time_to_first_token_s = 0;
  double total_s = 0;
};

// What a request's callback receives: every sampled token (with the text it
// made visible, possibly empty while a UTF-8 character or a possible stop
// string is incomplete), and a last event with done = true.
struct TokenEvent {
  int64_t request_id = 0;
  int32_t token = -1;        // -1 on the final event when no token came with it
  float logprob = 0.0f;
  // With sampling.top_logprobs > 0: the token's log-probability under the
  // model's distribution and the most likely alternatives (see Sampler).
  float model_logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top_logprobs;
  std::string text;          // newly visible text
  bool done = false;
  FinishReason finish = FinishReason::kNone;
  Status error;              // set when finish == kError
  GenerationStats stats;     // filled on the final event
};

struct GenerationRequest {
  std::vector<int32_t> prompt;   // token ids (BOS included by the caller if wanted)
  SamplingParams sampling;
  int64_t max_tokens = 256;      // generated tokens at most (the context also limits)
  std::vector<std::string> stop;  // stop strings (not included in the output)
  std::vector<int32_t> stop_tokens;  // extra end tokens besides the model's end-of-generation ids
  bool ignore_eos = false;
  // Return false to cancel the request (client gone, Ctrl-C).
  std::function<bool(const TokenEvent&)> on_event;
};

class Engine {
 public:
  // `model` and `tokenizer` must outlive the engine.
  static Result<std::unique_ptr<Engine>> Create(Model& model, const Tokenizer& tokenizer,
                                                const EngineOptions& options);
  ~Engine();

  // Queues a request; its id, or an error when it can never run (empty or
  // too long prompt, bad sampling parameters).
  Result<int64_t> Submit(GenerationRequest request);
  // Cancels a queued or running request (its final event says kCancelled).
  void Cancel(int64_t request_id);
  // Cancels every queued and running request (shutdown).
  void CancelAll();

  // One iteration. Returns an error only for failures of the engine itself
  // (the affected requests get kError events).
  Status Step();
  bool HasWork() const { return !waiting_.empty() || !running_.empty(); }
  // Steps until every request finished.
  Status RunUntilIdle();

  const EngineOptions& options() const { return options_; }
  const BlockPool& block_pool() const { return *pool_; }
  uint64_t kv_bytes() const { return kv_->bytes(); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  // Sequences preempted (KV dropped, recomputed later) since creation.
  uint64_t num_preemptions() const { return preemptions_; }

 private:
  struct Sequence;
  struct Chunk {
    Sequence* seq;
    int64_t n_tokens;
  };

  Engine(Model& model, const Tokenizer& tokenizer, const EngineOptions& options);

  // scheduler.cc
  std::vector<Chunk> Schedule();
  bool EnsureBlocks(Sequence& seq, int64_t upto);  // blocks for positions [0, upto)
  bool PreemptNewestExcept(const Sequence* keep);
  void ReusePrefix(Sequence& seq);
  void RegisterFullBlocks(Sequence& seq);
  void FreeBlocks(Sequence& seq);

  // engine.cc
  Status RunChunks(const std::vector<Chunk>& chunks);
  void AcceptToken(Sequence& seq, SampledToken sampled);
  void Finish(Sequence& seq, FinishReason reason, Status error = Status::Ok());
  void Emit(Sequence& seq, TokenEvent& event);
  void Reap();

  Model& model_;
  const Tokenizer& tokenizer_;
  EngineOptions options_;
  std::unique_ptr<BlockPool> pool_;
  std::unique_ptr<KvCache> kv_;
  int64_t next_id_ = 1;
  std::deque<std::unique_ptr<Sequence>> waiting_;   // arrival order
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order (newest last)
  std::vector<float> logits_;
  uint64_t preemptions_ = 0;
};

}  // namespace formiga
