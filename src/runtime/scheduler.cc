// The engine's scheduler: which sequences compute how many tokens this step,
// and the KV blocks they need. See engine.h for the policy.
#include <algorithm>

#include "runtime/engine.h"
#include "runtime/engine_sequence.h"

namespace formiga {

bool Engine::EnsureBlocks(Sequence& seq, int64_t upto) {
  const int64_t bs = options_.block_size;
  const size_t needed = static_cast<size_t>((upto + bs - 1) / bs);
  while (seq.blocks.size() < needed) {
    std::optional<int32_t> b = pool_->Allocate();
    if (!b) return false;
    seq.blocks.push_back(*b);
  }
  return true;
}

void Engine::FreeBlocks(Sequence& seq) {
  for (int32_t b : seq.blocks) pool_->Release(b);
  seq.blocks.clear();
  seq.n_registered = 0;
  seq.last_hash = 0;
}

// Preempts the newest running sequence other than `keep` that has no chunk in
// the step being planned. Its KV is dropped and recomputed when it runs again.
bool Engine::PreemptNewestExcept(const Sequence* keep) {
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    Sequence* victim = it->get();
    if (victim == keep || victim->finished || victim->scheduled) continue;
    FreeBlocks(*victim);
    victim->n_computed = 0;
    ++preemptions_;
    std::unique_ptr<Sequence> owned = std::move(*it);
    running_.erase(std::next(it).base());
    waiting_.push_front(std::move(owned));  // keeps its place ahead of new arrivals
    return true;
  }
  return false;
}

void Engine::ReusePrefix(Sequence& seq) {
  if (!options_.prefix_cache || seq.n_computed != 0 || !seq.blocks.empty()) return;
  const int64_t bs = options_.block_size;
  // Leave at least one token to compute: its logits are needed.
  const int64_t max_blocks = (static_cast<int64_t>(seq.tokens.size()) - 1) / bs;
  uint64_t parent = 0;
  for (int64_t i = 0; i < max_blocks; ++i) {
    std::span<const int32_t> toks(seq.tokens.data() + i * bs, static_cast<size_t>(bs));
    const uint64_t h = BlockPool::HashBlock(parent, toks);
    std::optional<int32_t> b = pool_->Lookup(h, toks);
    if (!b) break;
    seq.blocks.push_back(*b);
    parent = h;
    seq.n_registered = i + 1;
    seq.last_hash = h;
    seq.n_computed += bs;
  }
  seq.cached_prompt_tokens = std::min(seq.n_computed, seq.n_prompt);
}

void Engine::RegisterFullBlocks(Sequence& seq) {
  if (!options_.prefix_cache) return;
  const int64_t bs = options_.block_size;
  while ((seq.n_registered + 1) * bs <= seq.n_computed) {
    const int64_t i = seq.n_registered;
    std::span<const int32_t> toks(seq.tokens.data() + i * bs, static_cast<size_t>(bs));
    const uint64_t h = BlockPool::HashBlock(seq.last_hash, toks);
    pool_->Register(seq.blocks[i], h, toks);
    seq.last_hash = h;
    ++seq.n_registered;
  }
}

std::vector<Engine::Chunk> Engine::Schedule() {
  std::vector<Chunk> chunks;
  int64_t budget = options_.max_batch_tokens;
  for (auto& seq : running_) seq->scheduled = false;

  // Running sequences, oldest first: decodes (one pending token) before
  // continuing prefills, so streams keep flowing while prompts are chunked.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
      Sequence& seq = *running_[i];
      if (seq.finished) continue;
      const bool decode = seq.pending() == 1;
      if ((pass == 0) != decode) continue;
      const int64_t n = std::min(seq.pending(), budget);
      bool ok = EnsureBlocks(seq, seq.n_computed + n);
      while (!ok && PreemptNewestExcept(&seq)) ok = EnsureBlocks(seq, seq.n_computed + n);
      if (!ok) continue;  // cannot happen for the oldest: the pool holds a full context
      seq.scheduled = true;
      chunks.push_back({&seq, n});
      budget -= n;
    }
  }

  // Admit waiting sequences in arrival order while there is room.
  while (!waiting_.empty() && budget > 0 && static_cast<int64_t>(running_.size()) < options_.max_seqs) {
    Sequence& seq = *waiting_.front();
    ReusePrefix(seq);
    const int64_t n = std::min(seq.pending(), budget);
    if (!EnsureBlocks(seq, seq.n_computed + n)) {
      FreeBlocks(seq);  // give back what it took; try again next step
      seq.n_computed = 0;
      seq.cached_prompt_tokens = 0;
      break;
    }
    seq.scheduled = true;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    chunks.push_back({&seq, n});
    budget -= n;
  }
  return chunks;
}

}  // namespace formiga
