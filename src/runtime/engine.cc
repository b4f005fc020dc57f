#include "runtime/engine.h"

#include <algorithm>
#include <string>

#include "runtime/engine_sequence.h"

namespace formiga {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kError: return "error";
  }
  return "none";
}

Status EngineOptions::Validate() const {
  if (n_ctx <= 1) return Status::InvalidArgument("context length (--ctx) must be at least 2 tokens");
  if (max_batch_tokens <= 0) return Status::InvalidArgument("max batch tokens must be positive");
  if (max_seqs <= 0) return Status::InvalidArgument("max sequences must be positive");
  if (block_size <= 0 || block_size > 1024) return Status::InvalidArgument("KV block size must be in [1, 1024]");
  if (kv_type != DType::kF16 && kv_type != DType::kF32 && kv_type != DType::kQ8_0) {
    return Status::Unsupported(std::string("KV cache type ") + DTypeName(kv_type) + " (use f16, q8_0 or f32)");
  }
  const int64_t per_ctx = (n_ctx + block_size - 1) / block_size;
  if (n_blocks != 0 && n_blocks < per_ctx) {
    return Status::InvalidArgument("the KV cache (" + std::to_string(n_blocks) + " blocks of " +
                                   std::to_string(block_size) + ") cannot hold one full context of " +
                                   std::to_string(n_ctx) + " tokens: give it at least " +
                                   std::to_string(per_ctx) + " blocks or shorten the context");
  }
  return Status::Ok();
}

Engine::Engine(Model& model, const Tokenizer& tokenizer, const EngineOptions& options)
    : model_(model), tokenizer_(tokenizer), options_(options) {}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::Create(Model& model, const Tokenizer& tokenizer,
                                               const EngineOptions& options) {
  FORMIGA_RETURN_IF_ERROR(options.Validate());
  std::unique_ptr<Engine> engine(new Engine(model, tokenizer, options));
  EngineOptions& o = engine->options_;
  if (o.n_blocks == 0) o.n_blocks = o.max_seqs * ((o.n_ctx + o.block_size - 1) / o.block_size);
  engine->pool_ = std::make_unique<BlockPool>(static_cast<int32_t>(o.n_blocks), static_cast<int32_t>(o.block_size));
  // Through the model's placement: each layer's KV arrays live with the backend that runs it.
  FORMIGA_ASSIGN_OR_RETURN(KvCache kv, model.NewKvCache(o.n_blocks, o.block_size, o.kv_type));
  engine->kv_ = std::make_unique<KvCache>(std::move(kv));
  return engine;
}

Result<int64_t> Engine::Submit(GenerationRequest request) {
  const int64_t n = static_cast<int64_t>(request.prompt.size());
  if (n == 0) return Status::InvalidArgument("the prompt is empty");
  if (n >= options_.n_ctx) {
    return Status::OutOfRange("the prompt has " + std::to_string(n) + " tokens but the context holds " +
                              std::to_string(options_.n_ctx) +
                              " (prompt + generated): shorten the prompt or raise --ctx");
  }
  const int64_t vocab = model_.config().vocab_size;
  for (int32_t t : request.prompt) {
    if (t < 0 || t >= vocab) {
      return Status::OutOfRange("prompt token id " + std::to_string(t) + " is outside the vocabulary (" +
                                std::to_string(vocab) + ")");
    }
  }
  if (request.max_tokens <= 0) return Status::InvalidArgument("max_tokens must be positive");
  FORMIGA_RETURN_IF_ERROR(request.sampling.Validate(vocab));

  auto seq = std::make_unique<Sequence>();
  seq->id = next_id_++;
  seq->tokens = request.prompt;
  seq->n_prompt = n;
  seq->sampler = std::make_unique<Sampler>(request.sampling, vocab);
  seq->decoder = std::make_unique<StreamingDecoder>(tokenizer_, /*skip_special=*/true);
  seq->stop = std::make_unique<StopMatcher>(request.stop);
  seq->submitted = Sequence::Clock::now();
  seq->req = std::move(request);
  const int64_t id = seq->id;
  waiting_.push_back(std::move(seq));
  return id;
}

void Engine::Cancel(int64_t request_id) {
  for (auto& s : running_) {
    if (s->id == request_id) s->cancelled = true;
  }
  for (auto& s : waiting_) {
    if (s->id == request_id) s->cancelled = true;
  }
}

void Engine::CancelAll() {
  for (auto& s : running_) s->cancelled = true;
  for (auto& s : waiting_) s->cancelled = true;
}

void Engine::Emit(Sequence& seq, TokenEvent& event) {
  event.request_id = seq.id;
  if (seq.req.on_event && !seq.req.on_event(event) && !event.done) seq.cancelled = true;
}

void Engine::Finish(Sequence& seq, FinishReason reason, Status error) {
  if (seq.finished) return;
  seq.finished = true;
  TokenEvent ev;
  ev.done = true;
  ev.finish = reason;
  ev.error = std::move(error);
  if (reason != FinishReason::kError && reason != FinishReason::kCancelled) {
    ev.text = seq.stop->Push(seq.decoder->Flush());
    ev.text += seq.stop->Flush();
  }
  using Secs = std::chrono::duration<double>;
  const auto now = Sequence::Clock::now();
  ev.stats.prompt_tokens = seq.n_prompt;
  ev.stats.cached_prompt_tokens = seq.cached_prompt_tokens;
  ev.stats.generated_tokens = seq.n_generated;
  ev.stats.total_s = Secs(now - seq.submitted).count();
  ev.stats.time_to_first_token_s = seq.n_generated > 0 ? Secs(seq.first_token - seq.submitted).count() : 0.0;
  FreeBlocks(seq);
  Emit(seq, ev);
}

void Engine::AcceptToken(Sequence& seq, SampledToken sampled) {
  const int32_t token = sampled.id;
  seq.tokens.push_back(token);
  if (seq.n_generated++ == 0) seq.first_token = Sequence::Clock::now();
  TokenEvent ev;
  ev.token = token;
  ev.logprob = sampled.logprob;
  ev.model_logprob = sampled.model_logprob;
  ev.top_logprobs = std::move(sampled.top);
  const GenerationRequest& r = seq.req;
  const bool end = !r.ignore_eos && (tokenizer_.IsEndOfGeneration(token) ||
                                     std::find(r.stop_tokens.begin(), r.stop_tokens.end(), token) !=
                                         r.stop_tokens.end());
  if (!end) ev.text = seq.stop->Push(seq.decoder->Push(token));
  Emit(seq, ev);
  if (end || seq.stop->stopped()) {
    Finish(seq, FinishReason::kStop);
  } else if (seq.n_generated >= r.max_tokens || static_cast<int64_t>(seq.tokens.size()) >= options_.n_ctx) {
    Finish(seq, FinishReason::kLength);
  }
}

Status Engine::RunChunks(const std::vector<Chunk>& chunks) {
  const int64_t bs = options_.block_size;
  std::vector<int32_t> tokens, positions, seq_of, rows;
  std::vector<int64_t> slots;
  std::vector<const int32_t*> tables;
  std::vector<Sequence*> row_seq;  // which sequence each logits row samples for
  for (size_t c = 0; c < chunks.size(); ++c) {
    Sequence& seq = *chunks[c].seq;
    tables.push_back(seq.blocks.data());
    for (int64_t i = 0; i < chunks[c].n_tokens; ++i) {
      const int64_t pos = seq.n_computed + i;
      tokens.push_back(seq.tokens[pos]);
      positions.push_back(static_cast<int32_t>(pos));
      seq_of.push_back(static_cast<int32_t>(c));
      slots.push_back(static_cast<int64_t>(seq.blocks[pos / bs]) * bs + pos % bs);
    }
    if (seq.n_computed + chunks[c].n_tokens == static_cast<int64_t>(seq.tokens.size())) {
      rows.push_back(static_cast<int32_t>(tokens.size()) - 1);
      row_seq.push_back(&seq);
    }
  }
  ForwardBatch batch;
  batch.tokens = tokens.data();
  batch.attn = AttentionBatch{static_cast<int64_t>(tokens.size()), positions.data(), seq_of.data(), tables.data(),
                              slots.data()};
  batch.logit_rows = rows.data();
  batch.n_logit_rows = static_cast<int64_t>(rows.size());
  const int64_t V = model_.config().vocab_size;
  logits_.resize(rows.size() * static_cast<size_t>(V));
  Status st = model_.Forward(batch, *kv_, logits_.data());
  if (!st.ok()) {
    for (const Chunk& c : chunks) Finish(*c.seq, FinishReason::kError, st);
    return st;
  }
  for (const Chunk& c : chunks) {
    c.seq->n_computed += c.n_tokens;
    RegisterFullBlocks(*c.seq);
  }
  for (size_t r = 0; r < row_seq.size(); ++r) {
    Sequence& seq = *row_seq[r];
    if (seq.cancelled) continue;
    std::span<float> row(logits_.data() + r * V, static_cast<size_t>(V));
    AcceptToken(seq, seq.sampler->Sample(row, seq.tokens));
  }
  return Status::Ok();
}

void Engine::Reap() {
  auto reap = [this](auto& list) {
    for (auto& s : list) {
      if (s->cancelled && !s->finished) Finish(*s, FinishReason::kCancelled);
    }
    list.erase(std::remove_if(list.begin(), list.end(), [](const auto& s) { return s->finished; }), list.end());
  };
  reap(running_);
  reap(waiting_);
}

Status Engine::Step() {
  Reap();
  std::vector<Chunk> chunks = Schedule();
  if (chunks.empty()) {
    return HasWork() ? Status::Internal("the scheduler could not place any sequence (KV cache too small?)")
                     : Status::Ok();
  }
  Status st = RunChunks(chunks);
  Reap();
  return st;
}

Status Engine::RunUntilIdle() {
  while (HasWork()) FORMIGA_RETURN_IF_ERROR(Step());
  return Status::Ok();
}

}  // namespace formiga
