// formiga perplexity -m MODEL -f TEXT [--ctx 512] [--batch N] [--chunks N]
//                    [--dump-logits OUT.npy] [--kl-base BASE.npy] [--json]
//
// llama.cpp-compatible perplexity (see runtime/perplexity.h for the chunking
// rules), optional logits dump and KL / top-1 comparison against a base dump.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/model_session.h"
#include "runtime/perplexity.h"

namespace formiga::cli {
namespace {

struct PerplexityArgs {
  ModelArgs model;
  std::string file;
  int64_t batch = 128;
  int64_t chunks = 0;
  std::string dump_logits, kl_base;
  bool json = false;
};

int RunPerplexity(PerplexityArgs& args) {
  std::ifstream in(args.file, std::ios::binary);
  if (!in) return ReportError(Status::NotFound(args.file + ": cannot open the text file"));
  std::stringstream ss;
  ss << in.rdbuf();
  EngineOptions eo;
  eo.max_seqs = 1;
  auto session = OpenModelSession(args.model, eo);
  if (!session.ok()) return ReportError(session.status());
  ModelSession& s = **session;
  Result<std::vector<int32_t>> tokens = s.EncodeText(ss.str());
  if (!tokens.ok()) return ReportError(tokens.status());

  PerplexityOptions o;
  o.n_ctx = s.engine->options().n_ctx;
  o.batch = args.batch;
  o.max_chunks = args.chunks;
  o.bos_id = s.tokenizer->add_bos() ? s.tokenizer->bos_id() : -1;
  o.dump_logits = args.dump_logits;
  o.kl_base = args.kl_base;
  const auto start = std::chrono::steady_clock::now();
  Result<PerplexityResult> r = ComputePerplexity(*s.model, *tokens, o, [&](int64_t c, double ppl) {
    if (!args.json) std::fprintf(stderr, "[%lld] %.4f\n", static_cast<long long>(c + 1), ppl);
  });
  if (!r.ok()) return ReportError(r.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (args.json) {
    nlohmann::json j = {{"model", s.path},       {"file", args.file},
                        {"n_ctx", o.n_ctx},      {"n_tokens", r->n_tokens},
                        {"n_chunks", r->n_chunks}, {"n_scored", r->n_scored},
                        {"perplexity", r->perplexity}, {"nll_stderr", r->nll_stderr},
                        {"chunk_perplexity", r->chunk_ppl}, {"seconds", secs}};
    if (r->has_kl) {
      j["kl"] = {{"mean", r->mean_kl}, {"max", r->max_kl}, {"top1_agreement", r->top1_agreement}};
    }
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("perplexity: %.4f (mean NLL ± %.4f) over %lld scored tokens, %lld chunks of %lld; %.1f s\n",
                r->perplexity, r->nll_stderr, static_cast<long long>(r->n_scored),
                static_cast<long long>(r->n_chunks), static_cast<long long>(o.n_ctx), secs);
    if (r->has_kl) {
      std::printf("KL(base || this): mean %.6f, max %.6f; top-1 agreement %.2f%%\n", r->mean_kl, r->max_kl,
                  100.0 * r->top1_agreement);
    }
  }
  return 0;
}

}  // namespace

void RegisterPerplexity(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<PerplexityArgs>();
  args->model.ctx = 512;
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity of a model on a text file (llama.cpp's rules)");
  AddModelOptions(cmd, args->model);
  cmd->add_option("-f,--file", args->file, "text file")->required();
  cmd->add_option("-b,--batch", args->batch, "tokens per forward pass")->capture_default_str();
  cmd->add_option("--chunks", args->chunks, "score at most this many chunks (0 = all)")->capture_default_str();
  cmd->add_option("--dump-logits", args->dump_logits, "write the scored logits as float32 [n, vocab] .npy");
  cmd->add_option("--kl-base", args->kl_base, "compare with a --dump-logits file: KL divergence and top-1");
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->callback([args, &ctx] { ctx.exit_code = RunPerplexity(*args); });
}

}  // namespace formiga::cli
