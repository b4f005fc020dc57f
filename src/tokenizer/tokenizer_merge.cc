// The encoding algorithms of one text fragment: regex pre-tokenization,
// byte-level BPE merges, SentencePiece-style merges with byte fallback.
//
// NOTE: both algorithms share one merge loop: a doubly linked list of symbols
// and a priority queue of adjacent pairs (best pair first, leftmost on ties),
// with stale entries skipped when popped. That is O(n log n) in the number of
// symbols, so a 1 MB word without spaces is not quadratic.
#include <algorithm>
#include <cstring>

#include "tokenizer/tokenizer_impl.h"

namespace formiga {
namespace tokenizer_internal {

const std::array<std::string, 256>& ByteToUnicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {  // all code points here are < 0x800: two bytes
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      t[b] = s;
    }
    return t;
  }();
  return table;
}

int UnicodeToByte(uint32_t cp) {
  static const std::array<int16_t, 512> inverse = [] {
    std::array<int16_t, 512> inv;
    inv.fill(-1);
    const auto& fwd = ByteToUnicode();
    for (int b = 0; b < 256; ++b) {
      size_t len = 0;
      uint32_t c = DecodeUtf8(fwd[b], 0, &len);
      inv[c] = static_cast<int16_t>(b);
    }
    return inv;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

uint32_t DecodeUtf8(std::string_view s, size_t i, size_t* len) {
  size_t n = ValidUtf8SequenceLength(s, i);
  if (n == 0) {
    *len = 1;
    return 0xFFFFFFFFu;
  }
  *len = n;
  auto b = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(s[i + k])); };
  switch (n) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

namespace {

struct Symbol {
  int32_t prev;
  int32_t next;
  uint32_t start;  // byte offset in the working string
  uint32_t len;    // 0 once merged into its left neighbour
  int32_t id;      // token id, or -1 (SPM: not in vocabulary yet)
};

struct Candidate {
  // Priority and position packed so one integer compare orders the queue:
  // high 32 bits = priority (lower is better), low 32 bits = left symbol's
  // start (ties go to the leftmost pair).
  uint64_t key;
  int32_t left;
  int32_t right;
  uint32_t size;     // left.len + right.len when queued (staleness check)
  int32_t merged;
  uint32_t priority;  // filled by the pair function
};

struct CandidateWorse {
  bool operator()(const Candidate& a, const Candidate& b) const { return a.key > b.key; }
};

// Order-preserving map of a float score (higher is better) to a priority
// (lower is better).
inline uint32_t ScorePriority(float score) {
  uint32_t bits;
  std::memcpy(&bits, &score, sizeof(bits));
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);  // ascending with the float
  return ~bits;
}

// Runs the merge loop over `syms`. `pair` fills priority/merged for two
// adjacent symbols, or returns false when they cannot merge.
template <class PairFn>
void MergeAll(std::vector<Symbol>& syms, PairFn pair) {
  std::vector<Candidate> heap;
  heap.reserve(syms.size());
  auto make = [&](int32_t l, int32_t r, Candidate* c) {
    if (!pair(syms[l], syms[r], c)) return false;
    c->left = l;
    c->right = r;
    c->size = syms[l].len + syms[r].len;
    c->key = (static_cast<uint64_t>(c->priority) << 32) | syms[l].start;
    return true;
  };
  Candidate c;
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    if (make(static_cast<int32_t>(i), static_cast<int32_t>(i + 1), &c)) heap.push_back(c);
  }
  CandidateWorse worse;
  std::make_heap(heap.begin(), heap.end(), worse);  // O(n), not n pushes
  auto push = [&](int32_t l, int32_t r) {
    if (l < 0 || r < 0) return;
    Candidate n;
    if (make(l, r, &n)) {
      heap.push_back(n);
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& l = syms[top.left];
    Symbol& r = syms[top.right];
    if (l.len == 0 || r.len == 0 || l.next != top.right || l.len + r.len != top.size) continue;
    l.len += r.len;
    l.id = top.merged;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = top.left;
    push(l.prev, top.left);
    push(top.left, l.next);
  }
}

}  // namespace
}  // namespace tokenizer_internal

using tokenizer_internal::Candidate;
using tokenizer_internal::Symbol;

void Tokenizer::Impl::PreTokenize(std::string_view text,
                                  std::vector<std::pair<size_t, size_t>>* pieces) const {
  pieces->clear();
  pieces->emplace_back(0, text.size());
  if (regexes.empty() || text.empty()) return;
  std::vector<std::pair<size_t, size_t>> next;
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  for (const auto& re : regexes) {
    next.clear();
    for (auto [off, len] : *pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data() + off);
      size_t pos = 0;
      while (pos < len) {
        int rc = pcre2_match(re.get(), subject, len, pos, 0, md, nullptr);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
          rc = pcre2_match(re.get(), subject, len, pos, PCRE2_NO_JIT, md, nullptr);
        }
        if (rc < 0) break;  // no more matches (or an error: keep the rest whole)
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {  // empty match: none of our regexes do this; step past it
          if (ms > pos) next.emplace_back(off + pos, ms - pos);
          size_t step = 1;
          tokenizer_internal::DecodeUtf8(std::string_view(text.data() + off, len), ms, &step);
          next.emplace_back(off + ms, std::min(step, len - ms));
          pos = ms + step;
          continue;
        }
        // NOTE: text between matches is kept as its own piece ("isolated"
        // splitting, as HF's Split and llama.cpp do).
        if (ms > pos) next.emplace_back(off + pos, ms - pos);
        next.emplace_back(off + ms, me - ms);
        pos = me;
      }
      if (pos < len) next.emplace_back(off + pos, len - pos);
    }
    pieces->swap(next);
  }
  pcre2_match_data_free(md);
}

void Tokenizer::Impl::BpeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (spec.ignore_merges) {
    std::string mapped;
    const auto& table = tokenizer_internal::ByteToUnicode();
    for (unsigned char b : word) mapped += table[b];
    int32_t id = Lookup(mapped);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  std::vector<Symbol> syms(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    syms[i] = Symbol{static_cast<int32_t>(i) - 1,
                     i + 1 < word.size() ? static_cast<int32_t>(i + 1) : -1,
                     static_cast<uint32_t>(i), 1,
                     byte_symbol_id[static_cast<unsigned char>(word[i])]};
  }
  tokenizer_internal::MergeAll(syms, [this](const Symbol& l, const Symbol& r, Candidate* c) {
    if (l.id < 0 || r.id < 0) return false;
    int32_t rank = 0;
    int32_t merged = MergedId(l.id, r.id, &rank);
    if (merged < 0) return false;
    c->priority = static_cast<uint32_t>(rank);
    c->merged = merged;
    return true;
  });
  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    if (syms[i].id >= 0) {
      out->push_back(syms[i].id);
    }
    // NOTE: a byte whose byte-level symbol the vocabulary lacks (SmolLM2 has
    // none for 0x04, 0x06, 0xF1, 0xFF and 17 more) is dropped, as
    // llama.cpp does; emitting <unk> (= <|endoftext|> there) would end turns.
  }
}

void Tokenizer::Impl::EncodeBpe(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<std::pair<size_t, size_t>> pieces;
  PreTokenize(text, &pieces);
  for (auto [off, len] : pieces) BpeWord(text.substr(off, len), out);
}

void Tokenizer::Impl::EncodeSpm(std::string_view text, bool add_prefix, std::vector<int32_t>* out) const {
  // `text` is already normalized (spaces are "▁"); see Tokenizer::Encode.
  std::string norm;
  norm.reserve(text.size() + 3);
  if (add_prefix) norm += "\xE2\x96\x81";
  norm += text;
  if (norm.empty()) return;
  std::vector<Symbol> syms;
  syms.reserve(norm.size());
  for (size_t i = 0; i < norm.size();) {
    size_t len = 1;
    tokenizer_internal::DecodeUtf8(norm, i, &len);  // invalid bytes: one symbol each
    int32_t n = static_cast<int32_t>(syms.size());
    syms.push_back(Symbol{n - 1, -1, static_cast<uint32_t>(i), static_cast<uint32_t>(len),
                          Lookup(std::string_view(norm).substr(i, len))});
    if (n > 0) syms[n - 1].next = n;
    i += len;
  }
  std::string_view nv(norm);
  if (spm_uses_merges) {
    tokenizer_internal::MergeAll(syms, [this](const Symbol& l, const Symbol& r, Candidate* c) {
      if (l.id < 0 || r.id < 0) return false;
      int32_t rank = 0;
      int32_t merged = MergedId(l.id, r.id, &rank);
      if (merged < 0) return false;
      c->priority = static_cast<uint32_t>(rank);
      c->merged = merged;
      return true;
    });
  } else {
    tokenizer_internal::MergeAll(syms, [this, nv](const Symbol& l, const Symbol& r, Candidate* c) {
      int32_t id = Lookup(nv.substr(l.start, l.len + r.len));
      if (id < 0) return false;
      c->priority = spec.scores.empty() ? 0u : tokenizer_internal::ScorePriority(spec.scores[id]);
      c->merged = id;
      return true;
    });
  }
  for (int32_t i = 0; i >= 0; i = syms[i].next) {
    const Symbol& s = syms[i];
    if (s.id >= 0) {
      out->push_back(s.id);
      continue;
    }
    // Not in the vocabulary: one <0xAB> token per byte, else <unk>.
    bool all_bytes = spec.byte_fallback;
    for (uint32_t k = 0; all_bytes && k < s.len; ++k) {
      all_bytes = byte_fallback_id[static_cast<unsigned char>(norm[s.start + k])] >= 0;
    }
    if (all_bytes) {
      for (uint32_t k = 0; k < s.len; ++k) {
        out->push_back(byte_fallback_id[static_cast<unsigned char>(norm[s.start + k])]);
      }
    } else if (spec.unk_id >= 0) {
      out->push_back(spec.unk_id);
    }
  }
}

}  // namespace formiga
