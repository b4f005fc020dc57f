#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "formats/npy.h"
#include "kernels/kv_cache.h"

namespace formiga {
namespace {

// log-sum-exp of a row, in double.
double LogSumExp(const float* x, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = std::max<double>(m, x[i]);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - m);
  return m + std::log(s);
}

}  // namespace

Result<PerplexityResult> ComputePerplexity(Model& model, const std::vector<int32_t>& tokens,
                                           const PerplexityOptions& o,
                                           const std::function<void(int64_t, double)>& progress) {
  const int64_t n_ctx = o.n_ctx, V = model.config().vocab_size;
  if (n_ctx < 4) return Status::InvalidArgument("perplexity needs --ctx of at least 4");
  if (o.batch <= 0) return Status::InvalidArgument("--batch must be positive");
  PerplexityResult res;
  res.n_tokens = static_cast<int64_t>(tokens.size());
  res.n_chunks = res.n_tokens / n_ctx;
  if (o.max_chunks > 0) res.n_chunks = std::min(res.n_chunks, o.max_chunks);
  if (res.n_chunks == 0) {
    return Status::InvalidArgument("the text has " + std::to_string(tokens.size()) +
                                   " tokens, fewer than one chunk of --ctx " + std::to_string(n_ctx) +
                                   ": give a longer text or a smaller --ctx");
  }
  const int64_t first = n_ctx / 2;
  const int64_t per_chunk = n_ctx - 1 - first;
  const int64_t n_scored_total = res.n_chunks * per_chunk;

  std::unique_ptr<NpyWriter> dump;
  if (!o.dump_logits.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(dump, NpyWriter::Create(o.dump_logits, n_scored_total, V));
  }
  std::unique_ptr<NpyMatrix> base;
  if (!o.kl_base.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(NpyMatrix m, NpyMatrix::Open(o.kl_base));
    if (m.rows() != n_scored_total || m.cols() != V) {
      return Status::InvalidArgument(o.kl_base + ": shape [" + std::to_string(m.rows()) + ", " +
                                     std::to_string(m.cols()) + "] does not match this run's [" +
                                     std::to_string(n_scored_total) + ", " + std::to_string(V) +
                                     "] (same text, --ctx and model vocabulary needed)");
    }
    base = std::make_unique<NpyMatrix>(std::move(m));
  }

  const int64_t bs = 16;
  const int64_t n_blocks = (n_ctx + bs - 1) / bs;
  FORMIGA_ASSIGN_OR_RETURN(KvCache kv, model.NewKvCache(n_blocks, bs, DType::kF16));
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) table[b] = static_cast<int32_t>(b);
  const int32_t* tables[] = {table.data()};

  double nll_sum = 0, nll_sq = 0, kl_sum = 0;
  int64_t scored = 0, agree = 0;
  std::vector<float> logits;
  std::vector<int32_t> chunk_tokens(static_cast<size_t>(n_ctx)), positions, seq_of, rows;
  std::vector<int64_t> slots;
  for (int64_t c = 0; c < res.n_chunks; ++c) {
    std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, chunk_tokens.begin());
    if (o.bos_id >= 0) chunk_tokens[0] = o.bos_id;
    for (int64_t s = 0; s < n_ctx; s += o.batch) {
      const int64_t e = std::min(n_ctx, s + o.batch);
      positions.clear();
      seq_of.clear();
      slots.clear();
      rows.clear();
      for (int64_t j = s; j < e; ++j) {
        positions.push_back(static_cast<int32_t>(j));
        seq_of.push_back(0);
        slots.push_back(j);
        if (j >= first && j < n_ctx - 1) rows.push_back(static_cast<int32_t>(j - s));
      }
      ForwardBatch b;
      b.tokens = chunk_tokens.data() + s;
      b.attn = AttentionBatch{e - s, positions.data(), seq_of.data(), tables, slots.data()};
      b.logit_rows = rows.data();
      b.n_logit_rows = static_cast<int64_t>(rows.size());
      logits.resize(rows.size() * static_cast<size_t>(V));
      if (rows.empty()) logits.resize(1);
      FORMIGA_RETURN_IF_ERROR(model.Forward(b, kv, logits.data()));
      for (size_t r = 0; r < rows.size(); ++r) {
        const int64_t j = s + rows[r];
        const float* l = logits.data() + r * V;
        const double lse = LogSumExp(l, V);
        const double nll = lse - l[chunk_tokens[j + 1]];
        nll_sum += nll;
        nll_sq += nll * nll;
        if (dump) FORMIGA_RETURN_IF_ERROR(dump->AppendRow(l));
        if (base) {
          const float* bl = base->row(scored);
          const double blse = LogSumExp(bl, V);
          double kl = 0;
          for (int64_t v = 0; v < V; ++v) {
            const double lpb = bl[v] - blse;
            kl += std::exp(lpb) * (lpb - (l[v] - lse));
          }
          kl_sum += kl;
          res.max_kl = std::max(res.max_kl, kl);
          agree += (std::max_element(bl, bl + V) - bl) == (std::max_element(l, l + V) - l);
        }
        ++scored;
      }
    }
    const double ppl = std::exp(nll_sum / static_cast<double>(scored));
    res.chunk_ppl.push_back(ppl);
    if (progress) progress(c, ppl);
  }
  if (dump) FORMIGA_RETURN_IF_ERROR(dump->Close());
  res.n_scored = scored;
  const double mean = nll_sum / static_cast<double>(scored);
  res.perplexity = std::exp(mean);
  const double var = std::max(0.0, nll_sq / static_cast<double>(scored) - mean * mean);
  res.nll_stderr = std::sqrt(var / static_cast<double>(std::max<int64_t>(1, scored - 1)));
  if (base) {
    res.has_kl = true;
    res.mean_kl = kl_sum / static_cast<double>(scored);
    res.top1_agreement = static_cast<double>(agree) / static_cast<double>(scored);
  }
  return res;
}

}  // namespace formiga
