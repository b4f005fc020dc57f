// CudaBackend: the Backend interface on one NVIDIA GPU. Memory is device
// memory from cudaMalloc; ops are queued on one stream owned by the
// backend; ops that return void record the first failure (a launch error,
// an argument the kernels cannot take) and Synchronize/CopyToHost report it.
//
// Thread safety: as Backend (one caller at a time). Every entry point makes
// the backend's device current on the calling thread first.
// Ownership: the backend owns its stream; memory from Alloc is the caller's
// to Free before the backend is destroyed.
#include <cuda_runtime.h>

#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/backend.h"
#include "kernels/cuda/cuda_kernels.h"

namespace formiga {
namespace {

std::string CudaMessage(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, cudaStream_t stream) : device_(device), stream_(stream) {}
  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamDestroy(stream_);
  }

  const char* name() const override { return "cuda"; }
  bool IsHost() const override { return false; }

  Result<void*> Alloc(size_t bytes) override {
    Enter();
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // an allocation failure is not sticky: clear it
      return Status::ResourceExhausted(CudaMessage(("cudaMalloc of " + std::to_string(bytes) + " bytes on GPU " +
                                                    std::to_string(device_) + " failed; free GPU memory or place less on it")
                                                       .c_str(),
                                                   e));
    }
    return p;
  }

  void Free(void* p) override {
    if (p == nullptr) return;
    Enter();
    Record(cudaFree(p), "cudaFree");
  }

  Status CopyToDevice(void* dst, const void* src, size_t bytes) override {
    Enter();
    if (bytes == 0) return Status::Ok();
    Record(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync to device");
    return Synchronize();
  }

  Status CopyToHost(void* dst, const void* src, size_t bytes) override {
    Enter();
    if (bytes == 0) return Synchronize();
    Record(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync to host");
    return Synchronize();
  }

  Result<DeviceMemory> MemoryInfo() override {
    Enter();
    size_t free_bytes = 0, total_bytes = 0;
    const cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return Status::Internal(CudaMessage(("cudaMemGetInfo on GPU " + std::to_string(device_)).c_str(), e));
    }
    return DeviceMemory{free_bytes, total_bytes};
  }

  Status Synchronize() override {
    Enter();
    Record(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    return TakeError();
  }

  Status MatMul(const WeightView& w, const float* x, float* y, int64_t T) override {
    Enter();
    FORMIGA_RETURN_IF_ERROR(CheckWeights(w, "MatMul"));
    if (T <= 0 || w.rows <= 0) return Status::Ok();
    cuda::LaunchMatMul(w, x, y, T, stream_);
    return Launched("MatMul");
  }

  Status GetRows(const WeightView& table, const int32_t* ids, int64_t T, float* y) override {
    Enter();
    FORMIGA_RETURN_IF_ERROR(CheckWeights(table, "GetRows"));
    if (T <= 0) return Status::Ok();
    // NOTE: the ids are checked on the host (a copy of T ints and a sync) so
    // that a bad id is an error value, as on the other backends, and never an
    // out-of-bounds read on the device.
    std::vector<int32_t> host(static_cast<size_t>(T));
    FORMIGA_RETURN_IF_ERROR(CopyToHost(host.data(), ids, host.size() * sizeof(int32_t)));
    for (int32_t id : host) {
      if (id < 0 || id >= table.rows) {
        return Status::OutOfRange("token id " + std::to_string(id) + " outside the vocabulary (" +
                                  std::to_string(table.rows) + " rows)");
      }
    }
    cuda::LaunchGetRows(table, ids, T, y, stream_);
    return Launched("GetRows");
  }

  void RmsNorm(const float* x, const float* weight, float* y, int64_t T, int64_t C, float eps) override {
    Enter();
    if (T <= 0 || C <= 0) return;
    cuda::LaunchRmsNorm(x, weight, y, T, C, eps, stream_);
    Record(cudaGetLastError(), "RmsNorm launch");
  }

  void LayerNorm(const float* x, const float* weight, const float* bias, float* y, int64_t T, int64_t C,
                 float eps) override {
    Enter();
    if (T <= 0 || C <= 0) return;
    cuda::LaunchLayerNorm(x, weight, bias, y, T, C, eps, stream_);
    Record(cudaGetLastError(), "LayerNorm launch");
  }

  void Rope(float* x, const int32_t* positions, int64_t T, int64_t n_heads, int64_t D,
            const RopeParams& params) override {
    Enter();
    if (T <= 0 || n_heads <= 0 || params.n_rot < 2) return;
    cuda::LaunchRope(x, positions, T, n_heads, D, params, stream_);
    Record(cudaGetLastError(), "Rope launch");
  }

  void StoreKv(const float* k, const float* v, const AttentionBatch& batch, const KvLayerView& kv) override {
    Enter();
    if (batch.n_tokens <= 0 || kv.layout.n_kv_heads * kv.layout.head_dim <= 0) return;
    if (!KvTypeOk(kv, "StoreKv")) return;
    cuda::LaunchStoreKv(k, v, batch, kv, stream_);
    Record(cudaGetLastError(), "StoreKv launch");
  }

  void Attention(const float* q, const KvLayerView& kv, const AttentionBatch& batch, const AttentionParams& p,
                 float* out) override {
    Enter();
    if (batch.n_tokens <= 0 || p.n_heads <= 0) return;
    if (!KvTypeOk(kv, "Attention")) return;
    if (p.head_dim > cuda::kMaxAttentionHeadDim || p.n_kv_heads <= 0 || p.n_heads % p.n_kv_heads != 0) {
      RecordStatus(Status::InvalidArgument(
          "cuda Attention: head_dim " + std::to_string(p.head_dim) + " (max " +
          std::to_string(cuda::kMaxAttentionHeadDim) + "), n_heads " + std::to_string(p.n_heads) +
          ", n_kv_heads " + std::to_string(p.n_kv_heads) + " not supported"));
      return;
    }
    cuda::LaunchAttention(q, kv, batch, p, out, stream_);
    Record(cudaGetLastError(), "Attention launch");
  }

  void SiluMul(const float* gate, const float* up, float* y, int64_t n) override {
    BinaryOp(cuda::Binary::kSiluMul, gate, up, y, n, "SiluMul launch");
  }
  void GeluMul(const float* gate, const float* up, float* y, int64_t n) override {
    BinaryOp(cuda::Binary::kGeluMul, gate, up, y, n, "GeluMul launch");
  }
  void Gelu(const float* x, float* y, int64_t n, bool tanh_approx) override {
    UnaryOp(tanh_approx ? cuda::Unary::kGeluTanh : cuda::Unary::kGeluErf, x, y, n, 0.0f, "Gelu launch");
  }
  void Add(const float* a, const float* b, float* y, int64_t n) override {
    BinaryOp(cuda::Binary::kAdd, a, b, y, n, "Add launch");
  }
  void AddBias(const float* x, const float* bias, float* y, int64_t T, int64_t C) override {
    Enter();
    if (T <= 0 || C <= 0) return;
    cuda::LaunchAddBias(x, bias, y, T, C, stream_);
    Record(cudaGetLastError(), "AddBias launch");
  }
  void Scale(float* x, float s, int64_t n) override { UnaryOp(cuda::Unary::kScale, x, x, n, s, "Scale launch"); }
  void SoftCap(const float* x, float* y, int64_t n, float cap) override {
    UnaryOp(cuda::Unary::kSoftCap, x, y, n, cap, "SoftCap launch");
  }
  void CopyRows(const float* x, const int32_t* rows, int64_t R, int64_t C, float* y) override {
    Enter();
    if (R <= 0 || C <= 0) return;
    cuda::LaunchCopyRows(x, rows, R, C, y, stream_);
    Record(cudaGetLastError(), "CopyRows launch");
  }

 private:
  void Enter() { Record(cudaSetDevice(device_), "cudaSetDevice"); }

  void RecordStatus(Status s) {
    if (!error_.has_value() && !s.ok()) (void)error_.emplace(std::move(s));
  }
  void Record(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
      cudaGetLastError();  // reported here; do not blame the next launch for it
      RecordStatus(Status::Internal(CudaMessage((std::string("cuda backend, GPU ") + std::to_string(device_) + ", " +
                                                 what)
                                                    .c_str(),
                                                e)));
    }
  }
  // The first failure since the last call, or Ok; clears it.
  Status TakeError() {
    if (!error_.has_value()) return Status::Ok();
    Status s = std::move(*error_);
    error_.reset();
    return s;
  }
  // The op's launch status, plus any failure recorded since the last sync.
  Status Launched(const char* what) {
    Record(cudaGetLastError(), what);
    return TakeError();
  }

  static Status CheckWeights(const WeightView& w, const char* op) {
    if (!cuda::IsWeightTypeSupported(w.type)) {
      return Status::Unsupported(std::string("cuda ") + op + ": weight type " + DTypeName(w.type) +
                                 " has no CUDA kernel; requantize the model (e.g. to q4_k or q8_0)");
    }
    const int64_t block = GetDTypeTraits(w.type).block_size;
    if (w.cols % block != 0) {
      return Status::InvalidArgument(std::string("cuda ") + op + ": " + std::to_string(w.cols) + " columns of " +
                                     DTypeName(w.type) + " are not a multiple of its block size " +
                                     std::to_string(block));
    }
    return Status::Ok();
  }

  bool KvTypeOk(const KvLayerView& kv, const char* op) {
    if (kv.layout.type == DType::kF16 || kv.layout.type == DType::kF32) return true;
    RecordStatus(Status::Unsupported(std::string("cuda ") + op + ": KV cache type " + DTypeName(kv.layout.type) +
                                     " (only f16 and f32)"));
    return false;
  }

  void UnaryOp(cuda::Unary op, const float* x, float* y, int64_t n, float p, const char* what) {
    Enter();
    if (n <= 0) return;
    cuda::LaunchUnary(op, x, y, n, p, stream_);
    Record(cudaGetLastError(), what);
  }
  void BinaryOp(cuda::Binary op, const float* a, const float* b, float* y, int64_t n, const char* what) {
    Enter();
    if (n <= 0) return;
    cuda::LaunchBinary(op, a, b, y, n, stream_);
    Record(cudaGetLastError(), what);
  }

  int device_;
  cudaStream_t stream_;
  // The first failure since the last Synchronize. NOTE: optional because
  // Status is [[nodiscard]] and nvcc warns on its assignment operator.
  std::optional<Status> error_;
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeCudaBackend(int device) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    return Status::Unsupported(
        "no CUDA device: " +
        (e != cudaSuccess ? CudaMessage("cudaGetDeviceCount", e) : std::string("cudaGetDeviceCount found 0 GPUs")) +
        "; use the cpu backend, or check the NVIDIA driver and CUDA_VISIBLE_DEVICES");
  }
  if (device < 0 || device >= count) {
    return Status::OutOfRange("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
                              " present: 0.." + std::to_string(count - 1) + ")");
  }
  cudaError_t s = cudaSetDevice(device);
  cudaStream_t stream = nullptr;
  if (s == cudaSuccess) s = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (s != cudaSuccess) {
    cudaGetLastError();
    return Status::Unsupported("no CUDA device usable: " + CudaMessage(("GPU " + std::to_string(device)).c_str(), s));
  }
  return std::unique_ptr<Backend>(std::make_unique<CudaBackend>(device, stream));
}

}  // namespace formiga
