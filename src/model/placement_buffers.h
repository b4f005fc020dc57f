// The device side of a model placement (model/placement.h): the weights of
// parts placed on device backends, uploaded once at load (PlacedWeights), and
// per forward pass one Stage per backend — its scratch activations and the
// batch with every pointer in that backend's memory — with the residual
// stream hopping between stages at device boundaries (ForwardStages).
//
// Host backends (IsHost) copy nothing, with one exception: a host backend
// may keep a matrix in its own packed layout (Backend::PackWeight; cpu:
// Q4_0/Q8_0 for the avx512-vnni kernels), copied once at load into 2 MB
// pages, the mapped file's pages of that tensor then released from this
// process (so RSS holds one copy). Everything else stays a view into the
// mapped file, and a host stage's batch is the caller's. A device backend gets
// one metadata buffer per stage (token ids, positions, sequences, slots,
// logit rows, the block tables and the array of table pointers), filled by
// one CopyToDevice per forward from a host staging vector. Hops: device ->
// host and host -> device copy straight between the stages' scratch; device
// -> device goes through one host staging buffer. Buffers only grow (before
// the ops run), so nothing is allocated on the hot path.
//
// Thread safety: one forward at a time (as Model). Ownership: the placement's
// backends must outlive these objects.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "formats/gguf.h"
#include "kernels/backend.h"
#include "kernels/kv_cache.h"
#include "model/config.h"
#include "model/model.h"
#include "model/pack_cache.h"
#include "model/placement.h"
#include "model/transformer.h"

namespace formiga {

// After LoadModel on `placement`: the file pages of tensors that only
// device parts use (uploaded, never read on the host again) are released
// from this process (madvise MADV_DONTNEED on each tensor's whole pages), so
// the resident size drops by what went to the devices. Tensors a host part
// views are left alone, and a released page read again would only fault back
// in from the page cache. A no-op for a model not mapped from a file.
void ReleaseUploadedPages(const GgufFile& file, const ModelPlacement& placement);

class PlacedWeights {
 public:
  // `file`: where the weights are mapped from (the packed tensors' pages are
  // released only from a file mapping; null: never released);
  // `pack_cache_dir`: where packed weights are kept between loads
  // (model/pack_cache.h; empty: none).
  explicit PlacedWeights(const GgufFile* file = nullptr, std::string pack_cache_dir = "")
      : file_(file), pack_cache_dir_(std::move(pack_cache_dir)) {}

  // Makes `*w` live in the part's backend memory, as the backend computes
  // from it: on a device, the rows are uploaded once (the same bytes placed
  // twice on one backend, e.g. tied embeddings, share one copy); on a host
  // backend, packed when the backend has a layout for it (PackedBytes > 0),
  // else left as the mapped rows. `what` names the tensor in the
  // out-of-memory message.
  Status Place(const ModelPlacement::Part& part, WeightView* w, const std::string& what);
  // The same for an embedding table (read by GetRows, row by row: never
  // packed on a host backend for itself; when a tied output packs the same
  // bytes, the table is switched to that packed copy, which GetRows reads
  // too). `*w` must stay where it is until loading ends.
  Status PlaceTable(const ModelPlacement::Part& part, WeightView* w, const std::string& what);
  // The same for a vector of n floats (null stays null).
  Status Place(const ModelPlacement::Part& part, const float** v, int64_t n, const std::string& what);
  // q/k/v/o projections, biases and q/k norms of one layer's attention.
  Status PlaceAttention(const ModelPlacement::Part& part, const ModelConfig& c, AttentionWeights* w,
                        const std::string& prefix);

  // Bytes uploaded to `be`.
  uint64_t bytes_on(const Backend* be) const;
  // Bytes of weights held packed (in host memory or mapped from the cache).
  uint64_t packed_bytes() const { return packed_bytes_; }
  // After the last Place: writes what this load packed to the cache (best
  // effort). Says what happened, for the user: "" when nothing was packed.
  std::string FinishPacking();

 private:
  Result<const void*> Upload(const ModelPlacement::Part& part, const void* src, size_t bytes, const std::string& what);
  Status Pack(const ModelPlacement::Part& part, WeightView* w, const std::string& what);

  // The file pages of a packed tensor's rows, out of this process.
  void ReleaseRows(const WeightView& w) const;
  // `*w` becomes `packed` (and so do the tables with the same bytes).
  void Adopt(WeightView* w, const WeightView& packed);
  static bool SameMatrix(const WeightView& a, const WeightView& b);
  // Whether `be` packs every layer matrix of the file (packing is all or
  // nothing: see Pack).
  bool EveryLayerMatrixPacks(Backend& be) const;

  const GgufFile* file_ = nullptr;
  std::string pack_cache_dir_;
  bool cache_opened_ = false;
  bool pack_checked_ = false, pack_ = false;
  PackCache cache_;
  std::vector<HostPages> packed_;
  uint64_t packed_bytes_ = 0;
  std::vector<WeightView*> tables_;                     // host tables (PlaceTable)
  std::map<const void*, WeightView> packed_views_;      // by the rows' address
  std::vector<BackendBuffer> buffers_;
  std::map<std::pair<const Backend*, const void*>, std::pair<const void*, size_t>> placed_;
};

// Where each section of a device stage's packed batch metadata lies, for T
// tokens, R logits rows and n_seqs sequences whose block tables hold n_table
// entries together (8-byte aligned sections; `total` bytes in all).
struct MetadataLayout {
  size_t tokens = 0, positions = 0, seq_of = 0, slots = 0, rows = 0, ptrs = 0, tables = 0, total = 0;
};
MetadataLayout LayOutMetadata(int64_t T, int64_t R, int64_t n_seqs, int64_t n_table);
// What a stage allocates when its metadata buffer must grow to `total`
// bytes: twice that (fewer regrowths), at least 4 KiB.
size_t MetadataAllocBytes(size_t total);

// A backend's share of one forward pass.
struct Stage {
  Backend* be = nullptr;
  std::string device;
  Scratch scratch;
  ForwardBatch batch;  // the caller's (host) or copies in be's memory (device)
  // Device stages: the packed metadata, and its host image.
  BackendBuffer meta;
  std::vector<uint8_t> meta_host;
  std::vector<int64_t> table_len;  // per sequence: blocks of its table this batch can read

  float* x() const { return scratch.x.data(); }  // (T, C) residual stream
};

class ForwardStages {
 public:
  ForwardStages() = default;
  explicit ForwardStages(const ModelPlacement& placement);

  // Before each forward: checks that the KV cache's layers live with their
  // layers' backends, reserves every stage's scratch for the batch, copies
  // the batch metadata to each device stage, and returns the embedding's
  // stage (the residual stream starts there).
  Result<Stage*> Begin(const ModelConfig& c, const ForwardBatch& batch, const KvCache& kv);
  // The stage of layer il / of the output head, with the residual stream
  // (T, C) moved there from the current stage when they differ.
  Result<Stage*> EnterLayer(int64_t il) { return Enter(layer_stage_[static_cast<size_t>(il)]); }
  Result<Stage*> EnterOutput() { return Enter(output_stage_); }
  // Where the output stage writes logits: `host_logits`, or its device scratch.
  float* LogitsOut(float* host_logits) const;
  // Copies device logits (R, vocab) to `host_logits` and waits for every
  // device stage (their asynchronous errors come back here).
  Status Finish(float* host_logits);

  const ModelPlacement& placement() const { return placement_; }

 private:
  Result<Stage*> Enter(size_t stage);
  Status CopyMetadata(Stage& s, const ForwardBatch& b, int64_t block_size);

  ModelPlacement placement_;
  std::vector<std::unique_ptr<Stage>> stages_;  // one per distinct backend
  size_t embed_stage_ = 0, output_stage_ = 0;
  std::vector<size_t> layer_stage_;
  size_t current_ = 0;
  int64_t T_ = 0, R_ = 0, C_ = 0, V_ = 0;
  std::vector<float> staging_;  // device -> device hops
};

}  // namespace formiga
