// The cpu backend: validates arguments, splits each op into tasks by output
// and runs them on a thread pool; the AVX2/FMA/F16C kernels live in the other
// cpu_*.cc files (see cpu_kernels.h).
//
// NOTE: this file is compiled for the baseline ISA (no -mavx2): it runs the
// CPU feature check (cpu_isa.cc) before any AVX2 instruction can, and picks
// the ISA tier of the integer kernels once, when the backend is made.
//
// Determinism: task boundaries depend only on the op's shape (never on the
// thread count), and each output is computed by exactly one task, so results
// are bit-identical for any number of threads.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/quant.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "kernels/cpu_isa.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_pack.h"

namespace formiga {
namespace {

// Below this many multiply-adds (or elements) an op runs on the calling
// thread: waking workers costs more than the work (T=1 decode of small ops).
constexpr int64_t kInlineWork = 1 << 15;
// Elements per task of elementwise ops (a multiple of 8).
constexpr int64_t kElemChunk = 1 << 14;
// Smallest decode MatMul task (rows; a multiple of 16).
constexpr int64_t kMinDecodeRows = 32;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The kernels of one ISA tier (cpu_kernels.h): the MatMuls of every ActQ8
// type (Q4_0..Q8_0), every Q8_K type (Q2_K..Q6_K) and the float types (F32,
// F16, BF16: AVX2 but in the avx512-vnni tier), and attention (AVX2 but in
// the avx512-vnni tier).
struct TierKernels {
  void (*q8_rows)(const WeightView&, const cpu::ActQ8*, int64_t, float*, int64_t, int64_t);
  void (*q8k_rows)(const WeightView&, const BlockQ8_K*, int64_t, float*, int64_t, int64_t);
  void (*float_rows)(const WeightView&, const float*, int64_t, float*, int64_t, int64_t);
  void (*attention)(const float*, const KvLayerView&, const AttentionBatch&, const AttentionParams&, float*, int64_t,
                    int64_t, float*);
};

// FORMIGA_PACK_WEIGHTS=0 turns weight packing off.
bool PackingWanted() {
  const char* env = std::getenv("FORMIGA_PACK_WEIGHTS");
  return env == nullptr || std::string(env) != "0";
}

// `w` as the kRows view it was packed from (for the size checks).
WeightView Unpacked(WeightView w) {
  w.layout = WeightLayout::kRows;
  return w;
}

TierKernels KernelsOf(CpuIsa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case CpuIsa::kAvxVnni:
      return {cpu::avx_vnni::MatMulQ8Rows, cpu::avx_vnni::MatMulQ8KRows, cpu::MatMulFloatRows, cpu::AttentionItems};
    case CpuIsa::kAvx512Vnni:
      return {cpu::avx512_vnni::MatMulQ8Rows, cpu::avx512_vnni::MatMulQ8KRows, cpu::avx512::MatMulFloatRows,
              cpu::avx512::AttentionItems};
#endif
    default: return {cpu::avx2::MatMulQ8Rows, cpu::avx2::MatMulQ8KRows, cpu::MatMulFloatRows, cpu::AttentionItems};
  }
}

class CpuBackend final : public Backend {
 public:
  CpuBackend(int n_threads, CpuIsa isa) : isa_(isa), tier_(KernelsOf(isa)), pool_(n_threads) {}

  const char* name() const override { return "cpu"; }
  CpuIsa isa() const { return isa_; }

  // Packed weights (cpu_pack.h): Q4_0 and Q8_0 for the avx512-vnni tier,
  // whose 512-bit kernels read them; unless FORMIGA_PACK_WEIGHTS=0 (keep
  // computing from the mapped rows: no copy, pages shared with other
  // processes through the page cache).
  size_t PackedBytes(const WeightView& w) const override {
    if (isa_ != CpuIsa::kAvx512Vnni || !PackingWanted()) return 0;
    return cpu::PackedBytes(w);
  }
  // Whether this backend's kernels read `w` packed (its tier and type).
  bool ReadsPacked(const WeightView& w) const {
    return isa_ == CpuIsa::kAvx512Vnni && cpu::PackedBytes(Unpacked(w)) != 0;
  }
  std::string PackedFormat() const override { return "cpu-avx512-vnni-16rows-v1"; }
  Result<WeightView> PackWeight(const WeightView& w, void* dst) override {
    if (PackedBytes(w) == 0) return Backend::PackWeight(w, dst);
    auto* out = static_cast<uint8_t*>(dst);
    const int64_t groups = w.rows / cpu::kPackRows;
    // About 1 MB of weights per task.
    const int64_t per_task =
        std::max<int64_t>(1, (int64_t{1} << 20) / static_cast<int64_t>(cpu::kPackRows * w.row_bytes));
    pool_.Run(CeilDiv(groups, per_task), [&](int64_t task, int) {
      cpu::PackGroups(w, task * per_task, std::min(groups, (task + 1) * per_task), out);
    });
    cpu::PackTail(w, out);
    return cpu::PackedView(w, out);
  }

  Status MatMul(const WeightView& w, const float* x, float* y, int64_t T) override {
    return MatMulShared(&w, &y, 1, x, T);
  }

  // One job for all n weights: x is quantized once, and the rows of every
  // W_i are split into tasks over the threads together (the q/k/v or
  // gate/up projections of a decode step: one dispatch instead of three,
  // and no small matrix run alone). Each task covers rows of one W_i, and a
  // row's result does not depend on its task, so the outputs equal n
  // separate MatMul calls bit for bit.
  Status MatMulShared(const WeightView* ws, float* const* ys, int n, const float* x, int64_t T) override {
    if (n <= 0) return Status::Ok();
    const cpu::ActFormat format = cpu::ActFormatOf(ws[0].type);
    for (int i = 0; i < n; ++i) {
      const WeightView& w = ws[i];
      if (cpu::ActFormatOf(w.type) == cpu::ActFormat::kUnsupported) {
        return Status::Unsupported(std::string("cpu backend: MatMul with ") + DTypeName(w.type) +
                                   " weights is not implemented (supported: f32, f16, bf16, q4_0, q4_1, q5_0, "
                                   "q5_1, q8_0, q2_k..q6_k); requantize the model or use the ref backend");
      }
      const int64_t block = GetDTypeTraits(w.type).block_size;
      if (w.cols % block != 0) {
        return Status::InvalidArgument("cpu backend: MatMul on " + std::string(DTypeName(w.type)) +
                                       " weights with " + std::to_string(w.cols) +
                                       " columns, not a multiple of the block size " + std::to_string(block));
      }
      if (w.layout == WeightLayout::kPacked && !ReadsPacked(w)) {
        return Status::InvalidArgument(std::string("cpu backend: a packed ") + DTypeName(w.type) +
                                       " matrix reached the " + CpuIsaName(isa_) +
                                       " kernels, which read only GGUF rows (pack with this backend's PackWeight)");
      }
      if (w.cols != ws[0].cols) {
        return Status::InvalidArgument("cpu backend: MatMulShared over weights of " + std::to_string(ws[0].cols) +
                                       " and " + std::to_string(w.cols) + " columns (they must share the input)");
      }
    }
    for (int i = 1; i < n; ++i) {
      if (cpu::ActFormatOf(ws[i].type) != format) {
        // Inputs quantized differently (e.g. f16 beside q8_0): one job per weight.
        for (int j = 0; j < n; ++j) FORMIGA_RETURN_IF_ERROR(MatMulShared(&ws[j], &ys[j], 1, x, T));
        return Status::Ok();
      }
    }
    const int64_t C = ws[0].cols;
    int64_t total_rows = 0;
    for (int i = 0; i < n; ++i) total_rows += std::max<int64_t>(0, ws[i].rows);
    if (T <= 0 || total_rows <= 0) return Status::Ok();
    // Activations are quantized once per call, by token.
    const bool big = total_rows * C * T >= kInlineWork;
    const auto quantize = [&](auto fn) {
      const int64_t per_task = std::max<int64_t>(1, kElemChunk / C);
      if (T * C < kElemChunk || pool_.n_threads() == 1) {
        fn(0, T);
      } else {
        pool_.Run(CeilDiv(T, per_task), [&](int64_t task, int) {
          fn(task * per_task, std::min(T, (task + 1) * per_task));
        });
      }
    };
    const void* xq = nullptr;
    if (format == cpu::ActFormat::kQ8) {
      Grow(act_, static_cast<size_t>(T * (C / kQK)) * sizeof(cpu::ActQ8));
      auto* q = reinterpret_cast<cpu::ActQ8*>(act_.data());
      quantize([&](int64_t t0, int64_t t1) { cpu::QuantizeActQ8(x, C, t0, t1, q); });
      xq = q;
    } else if (format == cpu::ActFormat::kQ8K) {
      Grow(act_, static_cast<size_t>(T * (C / kQK_K)) * sizeof(BlockQ8_K));
      auto* q = reinterpret_cast<BlockQ8_K*>(act_.data());
      quantize([&](int64_t t0, int64_t t1) { cpu::QuantizeActQ8K(x, C, t0, t1, q); });
      xq = q;
    }
    const auto rows = [&](const Task& task) {
      const WeightView& w = ws[task.matrix];
      float* y = ys[task.matrix];
      switch (format) {
        case cpu::ActFormat::kF32: tier_.float_rows(w, x, T, y, task.n0, task.n1); break;
        case cpu::ActFormat::kQ8: {
          const auto* a = static_cast<const cpu::ActQ8*>(xq);
          tier_.q8_rows(w, a, T, y, task.n0, task.n1);
          break;
        }
        default: {
          const auto* a = static_cast<const BlockQ8_K*>(xq);
          tier_.q8k_rows(w, a, T, y, task.n0, task.n1);
          break;
        }
      }
    };
    tasks_.clear();
    if (!big || pool_.n_threads() == 1) {
      for (int i = 0; i < n; ++i) {
        if (ws[i].rows > 0) rows(Task{i, 0, ws[i].rows});
      }
      return Status::Ok();
    }
    // NOTE: tasks of 16-row multiples of one matrix, claimed dynamically
    // (which balances load on a busy machine). A row's result does not
    // depend on the task it falls in (every kernel computes a row the same
    // way in any group or tile: the invariance test), so the split may
    // depend on the thread count without changing any output.
    if (T <= 4) {
      // Decode: guided sizes, each task a fixed share of the rows still
      // unclaimed (1 / (2 x threads)), down to kMinDecodeRows. The first
      // tasks are long contiguous runs (the prefetchers' best case), and
      // the last ones short, so the threads reach the end of the op together
      // instead of one waiting out the other's last big task.
      const int64_t threads = pool_.n_threads();
      int64_t left = total_rows;
      for (int i = 0; i < n; ++i) {
        for (int64_t r = 0; r < ws[i].rows;) {
          const int64_t step = std::max(kMinDecodeRows, CeilDiv(CeilDiv(left, 2 * threads), 16) * 16);
          const int64_t end = std::min(ws[i].rows, r + step);
          tasks_.push_back(Task{i, r, end});
          left -= end - r;
          r = end;
        }
      }
    } else {
      // Prefill: about 64 equal tasks per matrix.
      for (int i = 0; i < n; ++i) {
        const int64_t N = ws[i].rows;
        const int64_t per_task = std::max<int64_t>(16, CeilDiv(CeilDiv(N, 64), 16) * 16);
        for (int64_t r = 0; r < N; r += per_task) tasks_.push_back(Task{i, r, std::min(N, r + per_task)});
      }
    }
    pool_.Run(static_cast<int64_t>(tasks_.size()), [&](int64_t task, int) { rows(tasks_[task]); });
    return Status::Ok();
  }

  Status GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) override {
    const bool packed = table.layout == WeightLayout::kPacked;
    if (packed && !ReadsPacked(table)) {
      return Status::InvalidArgument(std::string("cpu backend: GetRows on a packed ") + DTypeName(table.type) +
                                     " table this backend did not pack");
    }
    for (int64_t t = 0; t < T; ++t) {
      if (ids[t] < 0 || ids[t] >= table.rows) {
        return Status::OutOfRange("token id " + std::to_string(ids[t]) + " outside the vocabulary (" +
                                  std::to_string(table.rows) + " rows)");
      }
    }
    // NOTE: rows are dequantized by core's reference code: T rows per step
    // is little work, and the embeddings then match the ref backend exactly.
    // A packed table (a tied output's packed copy: model/placement_buffers.h)
    // gives each row back in GGUF form first.
    if (packed) Grow(row_, table.row_bytes);
    for (int64_t t = 0; t < T; ++t) {
      const auto* src = static_cast<const uint8_t*>(table.data) + static_cast<size_t>(ids[t]) * table.row_bytes;
      if (packed) {
        cpu::UnpackRow(table, ids[t], row_.data());
        src = row_.data();
      }
      FORMIGA_RETURN_IF_ERROR(DequantizeRow(table.type, src, y + t * table.cols, table.cols));
    }
    return Status::Ok();
  }

  void RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps) override {
    ByRows(T, C, [&](int64_t t0, int64_t t1) { cpu::RmsNormRows(x, weight, y, t0, t1, C, eps); });
  }

  void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T, int64_t C,
                 float eps) override {
    ByRows(T, C, [&](int64_t t0, int64_t t1) { cpu::LayerNormRows(x, weight, bias, y, t0, t1, C, eps); });
  }

  void Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
            const RopeParams& p) override {
    const int64_t half = p.n_rot / 2;
    inv_freq_.resize(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      double freq = std::pow(static_cast<double>(p.freq_base), -2.0 * static_cast<double>(i) / p.n_rot);
      if (p.freq_factors != nullptr) freq /= p.freq_factors[i];
      inv_freq_[i] = static_cast<double>(p.freq_scale) * freq;
    }
    ByRows(T, n_heads * D, [&](int64_t t0, int64_t t1) {
      cpu::RopeRows(x, positions, t0, t1, n_heads, D, p.style, p.n_rot, inv_freq_.data());
    });
  }

  void StoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv) override {
    ByRows(batch.n_tokens, 2 * kv.layout.n_kv_heads * kv.layout.head_dim,
           [&](int64_t t0, int64_t t1) { cpu::StoreKvRows(k, v, batch, kv, t0, t1); });
  }

  void Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                 float* out) override {
    const int64_t items = batch.n_tokens * p.n_heads;
    if (items <= 0) return;
    const int64_t per_thread = cpu::AttentionScratchFloats(p.head_dim);
    if (attn_scratch_.size() < static_cast<size_t>(per_thread * pool_.n_threads())) {
      attn_scratch_.resize(static_cast<size_t>(per_thread * pool_.n_threads()));
    }
    float* scratch = attn_scratch_.data();
    // Rough cost: items x positions x D. Items have unequal cost (causal), so
    // many small tasks.
    int64_t max_pos = 0;
    for (int64_t t = 0; t < batch.n_tokens; ++t) max_pos = std::max<int64_t>(max_pos, batch.positions[t] + 1);
    if (items * max_pos * p.head_dim < kInlineWork || pool_.n_threads() == 1) {
      tier_.attention(q, kv, batch, p, out, 0, items, scratch);
      return;
    }
    const int64_t per_task = std::max<int64_t>(1, items / 256);
    pool_.Run(CeilDiv(items, per_task), [&](int64_t task, int thread) {
      tier_.attention(q, kv, batch, p, out, task * per_task, std::min(items, (task + 1) * per_task),
                      scratch + thread * per_thread);
    });
  }

  void SiluMul(const float* gate, const float* up, float* y, int64_t n) override {
    ByElems(n, [&](int64_t i0, int64_t i1) { cpu::SiluMulRange(gate, up, y, i0, i1); });
  }
  void GeluMul(const float* gate, const float* up, float* y, int64_t n) override {
    ByElems(n, [&](int64_t i0, int64_t i1) { cpu::GeluMulRange(gate, up, y, i0, i1); });
  }
  void Gelu(const float* x, float* y, int64_t n, bool tanh_approx) override {
    ByElems(n, [&](int64_t i0, int64_t i1) { cpu::GeluRange(x, y, i0, i1, tanh_approx); });
  }
  void Add(const float* a, const float* b, float* y, int64_t n) override {
    ByElems(n, [&](int64_t i0, int64_t i1) { cpu::AddRange(a, b, y, i0, i1); });
  }
  void AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) override {
    ByRows(T, C, [&](int64_t t0, int64_t t1) { cpu::AddBiasRows(x, bias, y, t0, t1, C); });
  }
  void Scale(float* x, float s, int64_t n) override {
    ByElems(n, [&](int64_t i0, int64_t i1) { cpu::ScaleRange(x, s, i0, i1); });
  }
  void SoftCap(const float* x, float* y, int64_t n, float cap) override {
    ByElems(n, [&](int64_t i0, int64_t i1) { cpu::SoftCapRange(x, y, i0, i1, cap); });
  }
  void CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) override {
    for (int64_t r = 0; r < R; ++r) {
      std::memcpy(y + r * C, x + static_cast<int64_t>(rows[r]) * C, static_cast<size_t>(C) * sizeof(float));
    }
  }

 private:
  static void Grow(std::vector<uint8_t>& v, size_t bytes) {
    if (v.size() < bytes) v.resize(bytes);
  }

  // fn(i0, i1) over [0, n) in fixed chunks (inline when small).
  template <class F>
  void ByElems(int64_t n, F fn) {
    if (n < kInlineWork || pool_.n_threads() == 1) {
      if (n > 0) fn(0, n);
      return;
    }
    pool_.Run(CeilDiv(n, kElemChunk), [&](int64_t task, int) {
      fn(task * kElemChunk, std::min(n, (task + 1) * kElemChunk));
    });
  }

  // fn(t0, t1) over rows of width C, about kElemChunk elements per task.
  template <class F>
  void ByRows(int64_t T, int64_t C, F fn) {
    if (T * C < kInlineWork || T == 1 || pool_.n_threads() == 1) {
      if (T > 0) fn(0, T);
      return;
    }
    const int64_t per_task = std::max<int64_t>(1, kElemChunk / std::max<int64_t>(1, C));
    pool_.Run(CeilDiv(T, per_task), [&](int64_t task, int) { fn(task * per_task, std::min(T, (task + 1) * per_task)); });
  }

  const CpuIsa isa_;
  const TierKernels tier_;
  ThreadPool pool_;
  std::vector<uint8_t> act_;        // quantized activations of the current MatMul
  std::vector<uint8_t> row_;        // one packed table row in GGUF form (GetRows)
  // Rows [n0, n1) of the call's matrix `matrix`: one task of a MatMul job.
  struct Task {
    int matrix;
    int64_t n0, n1;
  };
  std::vector<Task> tasks_;         // the current MatMul job's tasks
  std::vector<float> attn_scratch_;  // per-thread attention accumulators
  std::vector<double> inv_freq_;     // RoPE frequencies of the current call
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeCpuBackend(int n_threads, CpuIsa isa) {
#if defined(__x86_64__)
  if (!CpuSupportsIsa(isa)) {
    FORMIGA_RETURN_IF_ERROR(ChooseCpuIsa(CpuIsaName(isa)).status());  // says what the CPU lacks
  }
  return std::unique_ptr<Backend>(std::make_unique<CpuBackend>(n_threads, isa));
#else
  (void)n_threads;
  (void)isa;
  return Status::Unsupported("cpu backend: only x86-64 with AVX2 is implemented; use the ref backend");
#endif
}

Result<std::unique_ptr<Backend>> MakeCpuBackend(int n_threads) {
  const char* env = std::getenv("FORMIGA_CPU_ISA");
  FORMIGA_ASSIGN_OR_RETURN(const CpuIsa isa, ChooseCpuIsa(env != nullptr ? env : ""));
  return MakeCpuBackend(n_threads, isa);
}

std::optional<CpuIsa> CpuBackendIsa(const Backend& backend) {
  const auto* cpu = dynamic_cast<const CpuBackend*>(&backend);
  if (cpu == nullptr) return std::nullopt;
  return cpu->isa();
}

}  // namespace formiga
