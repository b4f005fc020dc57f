// formiga bench -m MODEL [-p 512] [-n 128] [-r 5] [-t N] [--batch B] [--json]
// formiga bench --probe-bandwidth [-t N] [--json]
//
// Speed of one model on this machine, measured like llama-bench:
//  - pp<P>: a prompt of P random token ids (fresh KV, prefix cache off) up to
//    its first token; tokens/s = P / time to first token.
//  - tg<N>: a 1-token prompt, then N generated tokens (greedy, EOS ignored);
//    tokens/s = decode steps / their time (the first step, the 1-token
//    prompt, is not counted). With --batch B, B such sequences run together
//    and the rate is the aggregate over all of them.
// Every test runs once untimed (warm-up: page cache, thread pool, scratch
// buffers), then -r times; mean ± sample stddev. tg also reports the bytes of
// weights one decode step reads (every matmul weight once per step, whatever
// the batch) times steps/s, and that as a fraction of the read bandwidth
// measured by the probe (the roofline: tg cannot beat bandwidth / bytes).
//
// The probe reads a buffer much larger than the last-level cache with every
// thread (AVX2 loads when the CPU has them), best of several passes.
//
// NOTE: timings go through the same Engine as `run` and `serve` (scheduler,
// sampling, detokenizing included), so they are what users get, slightly
// pessimistic against llama-bench (which samples nothing).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "cli/commands.h"
#include "cli/model_session.h"
#include "core/process_memory.h"
#include "core/thread_pool.h"
#include "kernels/cpu_isa.h"

namespace formiga::cli {
namespace {

using Clock = std::chrono::steady_clock;

// CPU seconds of the whole process (every thread). With one thread this is
// the compute time whatever else runs on the machine: the `cpu_*` numbers let
// a loaded machine still compare engines (see docs/bench.md).
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct BenchArgs {
  ModelArgs model;
  int prompt = 512;
  int gen = 128;
  int reps = 5;
  int batch = 1;
  bool json = false;
  bool probe = false;
  double bandwidth = 0;  // GB/s given by the user (skips the probe)
};

// Op times of a test's timed repetitions, summed (bench --profile).
using OpTimes = std::map<std::string, ProfilingBackend::OpTime>;
void AddTimes(OpTimes& into, const OpTimes& from) {
  for (const auto& [op, t] : from) {
    into[op].calls += t.calls;
    into[op].seconds += t.seconds;
  }
}

struct Series {
  std::vector<double> values;
  double Mean() const {
    double s = 0;
    for (double v : values) s += v;
    return values.empty() ? 0 : s / static_cast<double>(values.size());
  }
  double Stddev() const {
    if (values.size() < 2) return 0;
    const double m = Mean();
    double s = 0;
    for (double v : values) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(values.size() - 1));
  }
};

// ---- bandwidth probe ----

#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t ReadAvx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_xor_si256(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_xor_si256(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_xor_si256(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_xor_si256(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i a = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a);
  return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
}
#endif

uint64_t ReadPlain(const uint8_t* p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (size_t i = 0; i + 32 <= n; i += 32) {
    uint64_t v[4];
    std::memcpy(v, p + i, 32);
    a0 ^= v[0];
    a1 ^= v[1];
    a2 ^= v[2];
    a3 ^= v[3];
  }
  return a0 ^ a1 ^ a2 ^ a3;
}

// Read bandwidth in GB/s (1e9 bytes/s) with `threads` threads, best of `passes`.
double ProbeBandwidth(int threads, size_t bytes = size_t{1} << 30, int passes = 5) {
  ThreadPool pool(threads);
  auto* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes));
  if (buf == nullptr) return 0;
  // Touch every page (first touch by the pool's threads, so pages land near them).
  constexpr size_t kChunk = size_t{4} << 20;
  const int64_t n_chunks = static_cast<int64_t>(bytes / kChunk);
  pool.Run(n_chunks, [&](int64_t c, int) { std::memset(buf + c * kChunk, static_cast<int>(c), kChunk); });
#if defined(__x86_64__)
  const bool avx2 = __builtin_cpu_supports("avx2");
#else
  const bool avx2 = false;
#endif
  std::vector<uint64_t> sink(static_cast<size_t>(n_chunks));
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = Clock::now();
    pool.Run(n_chunks, [&](int64_t c, int) {
      const uint8_t* p = buf + c * kChunk;
#if defined(__x86_64__)
      sink[static_cast<size_t>(c)] = avx2 ? ReadAvx2(p, kChunk) : ReadPlain(p, kChunk);
#else
      sink[static_cast<size_t>(c)] = ReadPlain(p, kChunk);
#endif
    });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, static_cast<double>(n_chunks * kChunk) / s / 1e9);
  }
  uint64_t x = 0;
  for (uint64_t v : sink) x ^= v;
  std::free(buf);
  // Keeps the reads observable.
  if (x == 0x5eed5eed5eed5eedULL) std::fprintf(stderr, " ");
  return best;
}

// ---- model tests ----

// Bytes of weights a decode step reads: every tensor except the token
// embedding (one row per token), which counts only when it is also the
// output matrix (tied embeddings).
uint64_t WeightBytesPerStep(const GgufFile& file) {
  uint64_t total = 0;
  const bool has_output = file.FindTensor("output.weight") != nullptr;
  for (const GgufTensorInfo& t : file.tensors()) {
    if (t.name == "token_embd.weight" && has_output) continue;
    if (t.shape.size() < 2) continue;  // norms, biases: negligible and often cached
    total += t.nbytes;
  }
  return total;
}

struct TestResult {
  std::string name;
  int64_t tokens = 0;  // per repetition
  Series tps;
  Series cpu_tps;  // tokens per process CPU second
  // --profile: op times and the wall time and steps (forward passes) of the timed repetitions.
  OpTimes ops;
  double wall_s = 0;
  int64_t steps = 0;
};

// One generation request: `prompt` tokens, `gen` tokens out (greedy, EOS ignored).
GenerationRequest MakeRequest(std::vector<int32_t> prompt, int gen, int64_t* produced,
                              std::vector<Clock::time_point>* first_token_at, size_t index,
                              double* first_token_cpu = nullptr) {
  GenerationRequest req;
  req.prompt = std::move(prompt);
  req.max_tokens = gen;
  req.ignore_eos = true;
  req.sampling.temperature = 0;
  req.sampling.top_k = 0;
  req.sampling.top_p = 1;
  req.sampling.min_p = 0;
  req.on_event = [produced, first_token_at, index, first_token_cpu](const TokenEvent& ev) {
    if (ev.token >= 0) {
      if ((*first_token_at)[index] == Clock::time_point{}) {
        (*first_token_at)[index] = Clock::now();
        if (first_token_cpu != nullptr) *first_token_cpu = ProcessCpuSeconds();
      }
      ++*produced;
    }
    return !Interrupted();
  };
  return req;
}

std::vector<int32_t> RandomTokens(std::mt19937& rng, int64_t n, int64_t vocab) {
  std::uniform_int_distribution<int32_t> dist(1, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& id : ids) id = dist(rng);
  return ids;
}

// Wall and process CPU seconds from submission to the first token of a P-token prompt.
struct PromptTiming {
  double secs = 0;
  double cpu_secs = 0;
  OpTimes ops;  // with --profile
};
Result<PromptTiming> RunPrompt(ModelSession& s, std::mt19937& rng, int prompt) {
  if (s.profiler) s.profiler->Reset();
  int64_t produced = 0;
  std::vector<Clock::time_point> first(1);
  double first_cpu = 0;
  std::vector<int32_t> ids = RandomTokens(rng, prompt, s.model->config().vocab_size);
  const double cpu0 = ProcessCpuSeconds();
  const auto t0 = Clock::now();
  FORMIGA_RETURN_IF_ERROR(s.engine->Submit(MakeRequest(std::move(ids), 1, &produced, &first, 0, &first_cpu)).status());
  FORMIGA_RETURN_IF_ERROR(s.engine->RunUntilIdle());
  if (produced == 0) return Status::Internal("bench: the prompt produced no token");
  return PromptTiming{std::chrono::duration<double>(first[0] - t0).count(), first_cpu - cpu0,
                      s.profiler ? s.profiler->times() : OpTimes{}};
}

// Decode steps per second with `batch` sequences of 1-token prompts, `gen` tokens each.
struct GenTiming {
  double tokens_per_s = 0;  // aggregate over the batch
  double steps_per_s = 0;
  double cpu_tokens_per_s = 0;  // per process CPU second
  double secs = 0;
  int64_t steps = 0;
  OpTimes ops;  // with --profile
};
Result<GenTiming> RunGenerate(ModelSession& s, std::mt19937& rng, int gen, int batch) {
  std::vector<int64_t> produced(static_cast<size_t>(batch), 0);
  std::vector<Clock::time_point> first(static_cast<size_t>(batch));
  for (int b = 0; b < batch; ++b) {
    FORMIGA_RETURN_IF_ERROR(s.engine
                                ->Submit(MakeRequest(RandomTokens(rng, 1, s.model->config().vocab_size), gen + 1,
                                                     &produced[static_cast<size_t>(b)], &first, static_cast<size_t>(b)))
                                .status());
  }
  // The first step runs the 1-token prompts and makes each sequence's first token.
  FORMIGA_RETURN_IF_ERROR(s.engine->Step());
  int64_t after_first = 0;
  for (int64_t p : produced) after_first += p;
  int64_t steps = 0;
  if (s.profiler) s.profiler->Reset();
  const double cpu0 = ProcessCpuSeconds();
  const auto t0 = Clock::now();
  while (s.engine->HasWork()) {
    FORMIGA_RETURN_IF_ERROR(s.engine->Step());
    ++steps;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu_secs = ProcessCpuSeconds() - cpu0;
  int64_t total = 0;
  for (int64_t p : produced) total += p;
  if (Interrupted()) return Status::Cancelled("bench: interrupted");
  if (total - after_first <= 0 || secs <= 0) return Status::Internal("bench: generation produced no tokens");
  GenTiming g;
  g.tokens_per_s = static_cast<double>(total - after_first) / secs;
  g.steps_per_s = static_cast<double>(steps) / secs;
  g.cpu_tokens_per_s = cpu_secs > 0 ? static_cast<double>(total - after_first) / cpu_secs : 0;
  g.secs = secs;
  g.steps = steps;
  if (s.profiler) g.ops = s.profiler->times();
  return g;
}

// --profile: each op's share of a test's steps, slowest first, and the time
// spent outside the backend's ops (scheduling, sampling, detokenizing, the
// model's own glue).
struct ProfileRow {
  std::string op;
  double calls_per_step = 0;
  double ms_per_step = 0;
  double fraction = 0;  // of the wall time
};
std::vector<ProfileRow> ProfileRows(const TestResult& r) {
  std::vector<ProfileRow> rows;
  if (r.steps <= 0 || r.wall_s <= 0) return rows;
  const double steps = static_cast<double>(r.steps);
  double in_ops = 0;
  for (const auto& [op, t] : r.ops) {
    rows.push_back({op, static_cast<double>(t.calls) / steps, 1e3 * t.seconds / steps, t.seconds / r.wall_s});
    in_ops += t.seconds;
  }
  std::sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.ms_per_step > b.ms_per_step; });
  rows.push_back({"(outside ops)", 0, 1e3 * (r.wall_s - in_ops) / steps, (r.wall_s - in_ops) / r.wall_s});
  return rows;
}

std::string Fmt(const char* f, double a, double b) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, a, b);
  return buf;
}

int RunBench(BenchArgs& args) {
  InstallInterruptHandler();
  const int threads = args.model.threads > 0 ? args.model.threads : ThreadPool::HardwareThreads();
  if (args.probe) {
    const double bw = ProbeBandwidth(threads);
    if (args.json) {
      std::printf("%s\n", nlohmann::json({{"threads", threads}, {"read_bandwidth_gb_s", bw}}).dump(2).c_str());
    } else {
      std::printf("read bandwidth, %d threads: %.1f GB/s\n", threads, bw);
    }
    return 0;
  }
  if (args.prompt < 0 || args.gen < 0 || args.reps < 1 || args.batch < 1) {
    return ReportError(Status::InvalidArgument("bench: -p and -n must be >= 0, -r and --batch >= 1"));
  }
  EngineOptions eo;
  eo.max_seqs = args.batch;
  eo.prefix_cache = false;  // every repetition computes its prompt
  eo.max_batch_tokens = std::max<int64_t>(512, args.prompt);
  if (args.model.ctx == 0) args.model.ctx = std::max(args.prompt, args.gen + 2) + 16;
  const auto load_t0 = Clock::now();
  auto opened = OpenModelSession(args.model, eo);
  if (!opened.ok()) return ReportError(opened.status());
  ModelSession& s = **opened;
  std::mt19937 rng(1234);
  // Time from nothing loaded to a first token (a 1-token prompt): what a user waits for.
  {
    int64_t produced = 0;
    std::vector<Clock::time_point> first(1);
    Status st = s.engine->Submit(MakeRequest(RandomTokens(rng, 1, s.model->config().vocab_size), 1, &produced,
                                             &first, 0)).status();
    if (st.ok()) st = s.engine->RunUntilIdle();
    if (!st.ok()) return ReportError(st);
    s.load_seconds = std::chrono::duration<double>(first[0] - load_t0).count();
  }
  const uint64_t weight_bytes = WeightBytesPerStep(*s.file);

  std::vector<TestResult> results;
  Series tg_gbs;
  if (args.prompt > 0) {
    TestResult r{"pp" + std::to_string(args.prompt), args.prompt, {}, {}, {}, 0, 0};
    for (int rep = 0; rep <= args.reps; ++rep) {
      Result<PromptTiming> pt = RunPrompt(s, rng, args.prompt);
      if (!pt.ok()) return ReportError(pt.status());
      if (rep > 0) {
        r.tps.values.push_back(args.prompt / pt->secs);
        r.cpu_tps.values.push_back(pt->cpu_secs > 0 ? args.prompt / pt->cpu_secs : 0);
        AddTimes(r.ops, pt->ops);
        r.wall_s += pt->secs;
        ++r.steps;  // the step budget is at least -p tokens: one forward pass per prompt
      }
    }
    results.push_back(r);
  }
  if (args.gen > 0) {
    std::string name = "tg" + std::to_string(args.gen);
    if (args.batch > 1) name += " x" + std::to_string(args.batch);
    TestResult r{name, static_cast<int64_t>(args.gen) * args.batch, {}, {}, {}, 0, 0};
    for (int rep = 0; rep <= args.reps; ++rep) {
      Result<GenTiming> g = RunGenerate(s, rng, args.gen, args.batch);
      if (!g.ok()) return ReportError(g.status());
      if (rep > 0) {
        r.tps.values.push_back(g->tokens_per_s);
        r.cpu_tps.values.push_back(g->cpu_tokens_per_s);
        tg_gbs.values.push_back(g->steps_per_s * static_cast<double>(weight_bytes) / 1e9);
        AddTimes(r.ops, g->ops);
        r.wall_s += g->secs;
        r.steps += g->steps;
      }
    }
    results.push_back(r);
  }
  // NOTE: memory is read before the probe, whose 1 GiB buffer would be the peak.
  const ProcessMemory mem = ReadProcessMemory();
  const double bw = args.bandwidth > 0 ? args.bandwidth : (args.gen > 0 ? ProbeBandwidth(threads) : 0);
  const ModelConfig& c = s.model->config();
  const double file_gib = static_cast<double>(s.file->file_size()) / (1024.0 * 1024.0 * 1024.0);
  // Sampled share of the weights mapped in 2 MB pages (MappedFile): 4 KB
  // entries cost decode 5-17 % here (docs/kernels.md "Huge pages").
  const double huge = s.file->mapping().HugeMappedFraction();

  // The cpu backend's ISA tier (FORMIGA_CPU_ISA forces one: A/B runs).
  const std::optional<CpuIsa> isa = CpuBackendIsa(*s.backend);
  if (args.json) {
    nlohmann::json tests = nlohmann::json::array();
    for (const TestResult& r : results) {
      nlohmann::json t = {{"test", r.name},
                          {"tokens", r.tokens},
                          {"tokens_per_s", r.tps.Mean()},
                          {"tokens_per_s_stddev", r.tps.Stddev()},
                          {"samples", r.tps.values},
                          {"cpu_tokens_per_s", r.cpu_tps.Mean()},
                          {"cpu_samples", r.cpu_tps.values}};
      if (r.name.rfind("tg", 0) == 0) {
        t["weight_gb_s"] = tg_gbs.Mean();
        t["weight_gb_s_stddev"] = tg_gbs.Stddev();
        t["roofline_fraction"] = bw > 0 ? tg_gbs.Mean() / bw : 0.0;
      }
      if (args.model.profile) {
        nlohmann::json ops = nlohmann::json::array();
        for (const ProfileRow& p : ProfileRows(r)) {
          ops.push_back({{"op", p.op}, {"calls_per_step", p.calls_per_step}, {"ms_per_step", p.ms_per_step},
                         {"fraction", p.fraction}});
        }
        t["profile"] = {{"steps", r.steps}, {"ms_per_step", r.steps > 0 ? 1e3 * r.wall_s / r.steps : 0.0},
                        {"ops", ops}};
      }
      tests.push_back(t);
    }
    nlohmann::json j = {
        {"model", s.path},
        {"arch", ArchName(c.arch)},
        {"file_bytes", s.file->file_size()},
        {"weight_bytes_per_step", weight_bytes},
        {"backend", s.backend->name()},
        {"cpu_isa", isa ? CpuIsaName(*isa) : ""},
        {"threads", threads},
        {"batch", args.batch},
        {"repetitions", args.reps},
        {"kv_type", args.model.kv_type},
        {"load_to_first_token_s", s.load_seconds},
        {"weights_in_2mb_pages", huge},
        {"packed_weight_bytes", s.model->packed_weight_bytes()},
        {"packed_weights", s.model->packed_weight_note()},
        {"read_bandwidth_gb_s", bw},
        {"tests", tests},
        {"memory", {{"rss_bytes", mem.rss_bytes}, {"peak_rss_bytes", mem.peak_rss_bytes},
                    {"kv_cache_bytes", s.engine->kv_bytes()}}},
    };
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("model: %s (%s, %.2f GiB, %.0f MB of weights read per decode step)\n", s.path.c_str(),
              ArchName(c.arch), file_gib, static_cast<double>(weight_bytes) / 1e6);
  const std::string isa_note = isa ? std::string(" (") + CpuIsaName(*isa) + " kernels)" : "";
  std::printf("backend %s%s, %d threads, batch %d, %d repetitions; load to first token %.2f s; weights in 2 MB "
              "pages: %.0f %% (sampled)\n",
              s.backend->name(), isa_note.c_str(), threads, args.batch, args.reps, s.load_seconds, 100.0 * huge);
  if (const std::string packed = s.model->packed_weight_note(); !packed.empty()) std::printf("%s\n", packed.c_str());
  std::printf("| test | t/s | weights GB/s | of roofline |\n|---|---|---|---|\n");
  for (const TestResult& r : results) {
    const bool tg = r.name.rfind("tg", 0) == 0;
    std::printf("| %s | %s | %s | %s |\n", r.name.c_str(), Fmt("%.2f ± %.2f", r.tps.Mean(), r.tps.Stddev()).c_str(),
                tg ? Fmt("%.1f ± %.1f", tg_gbs.Mean(), tg_gbs.Stddev()).c_str() : "",
                tg && bw > 0 ? Fmt("%.0f %% (± %.0f)", 100.0 * tg_gbs.Mean() / bw, 100.0 * tg_gbs.Stddev() / bw).c_str() : "");
  }
  if (bw > 0) std::printf("read bandwidth (probe, %d threads): %.1f GB/s\n", threads, bw);
  for (const TestResult& r : results) {
    if (!args.model.profile || r.steps <= 0) continue;
    std::printf("\nprofile of %s: %.3f ms per forward pass (%lld passes)\n| op | calls/pass | ms/pass | share |\n"
                "|---|---|---|---|\n",
                r.name.c_str(), 1e3 * r.wall_s / static_cast<double>(r.steps), static_cast<long long>(r.steps));
    for (const ProfileRow& p : ProfileRows(r)) {
      std::printf("| %s | %.0f | %.3f | %.1f %% |\n", p.op.c_str(), p.calls_per_step, p.ms_per_step, 100 * p.fraction);
    }
  }
  std::printf("peak resident %.1f MiB (file %.1f MiB, KV cache %.1f MiB)\n", mem.peak_rss_bytes / 1048576.0,
              s.file->file_size() / 1048576.0, s.engine->kv_bytes() / 1048576.0);
  return 0;
}

}  // namespace

void RegisterBench(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "measure prompt (pp) and generation (tg) speed, like llama-bench");
  AddModelOptions(cmd, args->model);
  cmd->add_option("-p,--prompt-tokens", args->prompt, "prompt length of the pp test (0: skip)")->capture_default_str();
  cmd->add_option("-n,--gen-tokens", args->gen, "generated tokens of the tg test (0: skip)")->capture_default_str();
  cmd->add_option("-r,--reps", args->reps, "timed repetitions of each test (after one warm-up)")
      ->capture_default_str();
  cmd->add_option("--batch", args->batch, "sequences generating at once in the tg test")->capture_default_str();
  cmd->add_option("--bandwidth", args->bandwidth, "read bandwidth in GB/s for the roofline (default: probe it)");
  cmd->add_flag("--probe-bandwidth", args->probe, "only measure the memory read bandwidth");
  cmd->add_flag("--json", args->json, "print one JSON object");
  cmd->add_flag("--profile", args->model.profile,
                "time every op of each test's forward passes (by op and weight type) and print the breakdown");
  cmd->callback([args, &ctx] { ctx.exit_code = RunBench(*args); });
}

}  // namespace formiga::cli
