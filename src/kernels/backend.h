// Backend: the operations a transformer forward pass needs, written once per
// device (DESIGN.md: kernels/ref is the obviously-correct oracle, kernels/cpu
// the fast CPU version, kernels/cuda later). Model code calls only these ops,
// so adding a backend or placing layers on another device never rewrites a
// model file.
//
// Shapes use the letters: T tokens of a ragged batch (all sequences flattened),
// C model width, H query heads, KH key/value heads, D head dim, N output width.
// Activations are f32 and row-major ("x is (T, C)": T rows of C floats). Weights
// stay in their storage type (quantized blocks included): a WeightView of
// N rows x C columns is GGUF's ne = {C, N}.
//
// Memory: every pointer an op takes lives in the backend's memory space (host
// memory for ref/cpu). Ops never allocate on the hot path.
//
// Thread safety: a Backend may use many threads inside one op; ops on one
// Backend object are not to be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "core/dtype.h"
#include "core/status.h"

namespace formiga {

// How a weight matrix's bytes are arranged.
enum class WeightLayout : uint8_t {
  // GGUF's: row after row, `row_bytes` apart (what the file holds).
  kRows,
  // A host backend's own arrangement, made at load by Backend::PackWeight
  // (cpu: kernels/cpu_pack.h): the same bytes, interleaved so that its
  // kernels stream them in order. Only that backend reads it.
  kPacked,
};

// A weight matrix: `rows` rows of `cols` elements in `type`, rows `row_bytes` apart.
struct WeightView {
  DType type = DType::kF32;
  const void* data = nullptr;
  int64_t cols = 0;       // C: input width (contiguous)
  int64_t rows = 0;       // N: output width
  size_t row_bytes = 0;   // DTypeRowBytes(type, cols) for a packed matrix
  WeightLayout layout = WeightLayout::kRows;
};

enum class RopeStyle {
  kNormal,  // rotates adjacent pairs (x[2i], x[2i+1]) — llama.cpp's LLAMA rope for llama GGUFs
  kNeox,    // rotates halves (x[i], x[i + D/2]) — GPT-NeoX / HF layout (qwen2, gemma3, falcon)
};

struct RopeParams {
  RopeStyle style = RopeStyle::kNormal;
  int64_t n_rot = 0;            // dimensions rotated per head (<= D, even)
  float freq_base = 10000.0f;   // theta
  float freq_scale = 1.0f;      // linear scaling: position * freq_scale
  // Optional per-dimension divisors of the frequency (llama3-style scaling),
  // n_rot / 2 entries; nullptr = none.
  const float* freq_factors = nullptr;
};

// Geometry of one layer's paged KV cache: K and V are each
// [n_blocks][block_size][KH][D] in `type` (f32, f16, or q8_0 with D % 32 == 0:
// element offsets stay in elements, element i of a row lives in block i / 32).
struct KvLayout {
  int64_t block_size = 16;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  DType type = DType::kF16;
};

struct KvLayerView {
  void* k = nullptr;
  void* v = nullptr;
  KvLayout layout;
};

// Where each token of a ragged batch belongs. A token at position p of
// sequence s attends to positions [max(0, p - window + 1), p] of s, read
// through s's block table (position q lives in block table[q / block_size],
// row q % block_size).
struct AttentionBatch {
  int64_t n_tokens = 0;                   // T
  const int32_t* positions = nullptr;     // [T] position of each token in its sequence
  const int32_t* seq_of_token = nullptr;  // [T] which sequence (index into block_tables)
  const int32_t* const* block_tables = nullptr;  // [n_seqs] -> block ids
  const int64_t* slots = nullptr;         // [T] block * block_size + row where the token's K/V go
};

struct AttentionParams {
  int64_t n_heads = 0;     // H
  int64_t n_kv_heads = 0;  // KH; H % KH == 0 (GQA/MQA: query head h reads KV head h / (H/KH))
  int64_t head_dim = 0;    // D
  float scale = 1.0f;      // usually 1/sqrt(D)
  float softcap = 0.0f;    // > 0: scores = softcap * tanh(scores / softcap)
  int64_t window = 0;      // > 0: sliding window length, in positions
};

// Free and total bytes of a backend's memory space (Backend::MemoryInfo).
struct DeviceMemory {
  uint64_t free_bytes = 0;
  uint64_t total_bytes = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // ---- Memory of this backend's space. The defaults are host memory (ref,
  // cpu); a device backend (cuda) overrides all of them. The model placement
  // (model/placement.h) routes a device's layers' weights, scratch
  // activations, batch metadata and KV cache through them, so that every
  // pointer handed to the ops below lives where the backend computes; host
  // backends keep zero-copy views into the mapped file.
  //
  // Whether pointers of this backend are plain host pointers.
  virtual bool IsHost() const { return true; }
  // `bytes` of uninitialized memory, 64-byte aligned; release with Free.
  virtual Result<void*> Alloc(size_t bytes) {
    void* p = ::operator new(bytes == 0 ? 1 : bytes, std::align_val_t{64}, std::nothrow);
    if (p == nullptr) {
      return Status::ResourceExhausted("host allocation of " + std::to_string(bytes) +
                                       " bytes failed: free memory or use a smaller model/context");
    }
    return p;
  }
  // Frees memory from Alloc (nullptr is a no-op).
  virtual void Free(void* p) {
    if (p != nullptr) ::operator delete(p, std::align_val_t{64});
  }
  // dst (backend memory) <- src (host memory); complete when it returns.
  virtual Status CopyToDevice(void* dst, const void* src, size_t bytes) {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return Status::Ok();
  }
  // dst (host memory) <- src (backend memory), after every op queued before
  // it has finished; complete when it returns.
  virtual Status CopyToHost(void* dst, const void* src, size_t bytes) {
    if (bytes != 0) std::memcpy(dst, src, bytes);
    return Status::Ok();
  }
  // Free and total bytes of this backend's memory, as the device reports
  // them now (a device: cudaMemGetInfo). Host backends answer Unsupported:
  // host memory is shared with everything else in the process, and the fit
  // check measures it itself (planner::CpuMemoryBudget: MemAvailable + RSS).
  virtual Result<DeviceMemory> MemoryInfo() {
    return Status::Unsupported(std::string(name()) + " computes in host memory: see the host memory budget");
  }
  // Waits for every queued op. Ops of an asynchronous backend that return
  // void report their failures (a bad launch, a device fault, an argument the
  // kernels cannot handle) here, as the first error since the last call.
  virtual Status Synchronize() { return Status::Ok(); }

  // ---- Weight layout. A host backend may compute faster from its own
  // arrangement of a matrix (kernels stream one run of bytes per row group
  // instead of one per row). The model placement asks at load: PackedBytes
  // says how many bytes `w` takes packed (0: keep the mapped rows, the
  // default), and PackWeight writes them to `dst` (host memory of that many
  // bytes, 64-byte aligned) and returns the view to compute with (layout
  // kPacked; only this backend's MatMul reads it). Results are bit-identical
  // to the rows'. The packed view is always `w` with data = dst and layout
  // kPacked. Packing runs of rows (16-row multiples from a 16-row multiple;
  // the last run may hold the tail) at dst + first_row * row_bytes writes
  // exactly the bytes packing the whole matrix there would. The bytes
  // depend only on the rows and PackedFormat(), a name of the layout's
  // version: packed bytes kept from an earlier load (model/pack_cache.h)
  // are reused under the same name.
  virtual size_t PackedBytes(const WeightView& w) const {
    (void)w;
    return 0;
  }
  virtual std::string PackedFormat() const { return ""; }
  virtual Result<WeightView> PackWeight(const WeightView& w, void* dst) {
    (void)dst;
    return Status::Unsupported(std::string(name()) + " keeps weights as GGUF rows (" + DTypeName(w.type) + ")");
  }

  // y (T, N) = x (T, C) · Wᵀ, W of any supported weight type.
  virtual Status MatMul(const WeightView& w, const float* x, float* y, int64_t T) = 0;

  // ys[i] (T, N_i) = x (T, C) · W_iᵀ for i < n: weights that read the same
  // input (q/k/v, gate/up; all with C columns). Equal, bit for bit, to n
  // MatMul calls, which is what this default does; a backend may run them as
  // one job (cpu: x quantized once, one dispatch, the small matrices'
  // rows streamed beside the big one's).
  virtual Status MatMulShared(const WeightView* ws, float* const* ys, int n, const float* x, int64_t T) {
    for (int i = 0; i < n; ++i) {
      if (Status st = MatMul(ws[i], x, ys[i], T); !st.ok()) return st;
    }
    return Status::Ok();
  }

  // y (T, C): row t of `table` (token embedding lookup), dequantized to f32.
  virtual Status GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) = 0;

  // y (T, C) = x / sqrt(mean(x²) + eps) * weight;  weight (C) may be null (= 1).
  // y may alias x (per-head q/k norms run in place).
  virtual void RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C,
                       float eps) = 0;

  // y (T, C) = (x - mean) / sqrt(var + eps) * weight + bias; weight/bias may be null;
  // y may alias x.
  virtual void LayerNorm(const float* x, const float* weight, const float* bias, float* y,
                         int64_t T, int64_t C, float eps) = 0;

  // In place: x is (T, n_heads, D); token t is rotated by positions[t].
  virtual void Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
                    const RopeParams& params) = 0;

  // Writes k, v (T, KH, D) into the cache rows given by batch.slots.
  virtual void StoreKv(const float* k, const float* v, const AttentionBatch& batch,
                       const KvLayerView& kv) = 0;

  // out (T, H, D) = softmax(q·Kᵀ · scale [softcapped], causal/windowed) · V over each
  // token's own sequence, K/V read from the paged cache (the batch's own K/V
  // must have been stored first).
  virtual void Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch,
                         const AttentionParams& params, float* out) = 0;

  // y (n) = silu(gate) * up.
  virtual void SiluMul(const float* gate, const float* up, float* y, int64_t n) = 0;
  // y (n) = gelu_tanh(gate) * up (gemma's GeGLU).
  virtual void GeluMul(const float* gate, const float* up, float* y, int64_t n) = 0;
  // y (n) = gelu(x), exact erf form (falcon, gpt2 use the tanh form: see `tanh_approx`).
  virtual void Gelu(const float* x, float* y, int64_t n, bool tanh_approx) = 0;
  // y (n) = a + b (y may alias a or b).
  virtual void Add(const float* a, const float* b, float* y, int64_t n) = 0;
  // y (T, C) = x + bias (C) broadcast over rows (y may alias x).
  virtual void AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) = 0;
  // x (n) *= s.
  virtual void Scale(float* x, float s, int64_t n) = 0;
  // y (n) = cap * tanh(x / cap) (final-logit soft-capping; y may alias x).
  virtual void SoftCap(const float* x, float* y, int64_t n, float cap) = 0;
  // y (R, C): y[r] = x[rows[r]] for x (T, C) (gathers the rows that need logits).
  virtual void CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) = 0;
};

// Memory from one backend's Alloc, given back with its Free when destroyed
// (move-only). The backend must outlive the buffer. Used by the model
// placement (weights uploaded to a device, scratch, batch metadata) and the
// KV cache.
class BackendBuffer {
 public:
  BackendBuffer() = default;
  // `bytes` from `be`; ResourceExhausted (the backend's own message) when it has none left.
  static Result<BackendBuffer> Allocate(Backend& be, size_t bytes) {
    FORMIGA_ASSIGN_OR_RETURN(void* p, be.Alloc(bytes));
    Result<BackendBuffer> r{BackendBuffer(&be, p, bytes)};
    return r;  // NOTE: not `return b;`: nvcc compiles this header as C++17 (no implicit move into Result)
  }
  BackendBuffer(BackendBuffer&& o) noexcept : be_(o.be_), data_(o.data_), bytes_(o.bytes_) {
    o.be_ = nullptr;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  BackendBuffer& operator=(BackendBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      be_ = o.be_;
      data_ = o.data_;
      bytes_ = o.bytes_;
      o.be_ = nullptr;
      o.data_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  BackendBuffer(const BackendBuffer&) = delete;
  BackendBuffer& operator=(const BackendBuffer&) = delete;
  ~BackendBuffer() { Reset(); }

  void Reset() {
    if (be_ != nullptr) be_->Free(data_);
    be_ = nullptr;
    data_ = nullptr;
    bytes_ = 0;
  }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Backend* backend() const { return be_; }

 private:
  BackendBuffer(Backend* be, void* data, size_t bytes) : be_(be), data_(data), bytes_(bytes) {}

  Backend* be_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// The naive reference backend (kernels/ref): correct by inspection, slow.
std::unique_ptr<Backend> MakeRefBackend();

// The fast CPU backend (kernels/cpu_*): AVX2/FMA/F16C kernels on a pool of
// n_threads threads (<= 0: one per hardware thread). Results are bit-identical
// for any thread count. Unsupported if this CPU lacks AVX2, FMA or F16C.
Result<std::unique_ptr<Backend>> MakeCpuBackend(int n_threads);

// The CUDA backend (kernels/cuda) on GPU `device`. Its memory is device
// memory: every pointer passed to its ops (weights, activations, ids,
// positions, block tables and the array of table pointers, KV, RoPE
// factors) must come from its Alloc. Ops are queued on one stream and run
// asynchronously; CopyToHost and Synchronize wait for them.
// Unsupported when formiga was built without CUDA or no usable device is
// present (the message says which, with CUDA's own reason); OutOfRange when
// `device` is not a valid index. Never aborts.
Result<std::unique_ptr<Backend>> MakeCudaBackend(int device);

}  // namespace formiga
