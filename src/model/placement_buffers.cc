#include "model/placement_buffers.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "model/weights.h"

namespace formiga {
namespace {

std::string Mib(uint64_t bytes) {
  const uint64_t tenths = bytes * 10 / (1 << 20);
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " MiB";
}

size_t Align8(size_t n) { return (n + 7) / 8 * 8; }

}  // namespace

// ---- ReleaseUploadedPages ----------------------------------------------------

void ReleaseUploadedPages(const GgufFile& file, const ModelPlacement& placement) {
  const MappedFile& map = file.mapping();
  if (map.data() == nullptr || map.size() == 0) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const bool tied = file.FindTensor("output.weight") == nullptr;
  auto on_device = [](const ModelPlacement::Part& p) { return p.backend != nullptr && !p.backend->IsHost(); };
  for (const GgufTensorInfo& t : file.tensors()) {
    bool device_only = false;
    if (t.name.rfind("blk.", 0) == 0) {
      const size_t dot = t.name.find('.', 4);
      const std::string n = t.name.substr(4, dot == std::string::npos ? std::string::npos : dot - 4);
      if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos) continue;
      const size_t il = std::stoul(n);
      device_only = il < placement.layers.size() && on_device(placement.layers[il]);
    } else if (t.name == "token_embd.weight") {
      device_only = on_device(placement.embed) && (!tied || on_device(placement.output));
    } else if (t.name.rfind("output", 0) == 0) {
      device_only = on_device(placement.output);
    }
    if (!device_only || t.data == nullptr) continue;
    const uintptr_t begin = (reinterpret_cast<uintptr_t>(t.data) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(t.data) + t.nbytes) / page * page;
    // NOTE: the mapping is shared and read-only: MADV_DONTNEED only unmaps
    // the pages from this process; the data stays in the file.
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
}

// ---- PlacedWeights ----------------------------------------------------------

Result<const void*> PlacedWeights::Upload(const ModelPlacement::Part& part, const void* src, size_t bytes,
                                          const std::string& what) {
  Backend& be = *part.backend;
  const auto key = std::make_pair(static_cast<const Backend*>(&be), src);
  if (auto it = placed_.find(key); it != placed_.end() && it->second.second >= bytes) return it->second.first;
  Result<BackendBuffer> buf = BackendBuffer::Allocate(be, bytes);
  if (!buf.ok()) {
    const std::string dev = part.name();
    return Status::ResourceExhausted(
        dev + " is out of memory placing " + what + " (" + Mib(bytes) + "; " + Mib(bytes_on(&be)) +
        " of weights already placed there): " + buf.status().message() + ". Put fewer layers on " + dev +
        " (--gpu-layers N, --device-map), cap it with --max-memory " + dev +
        "=SIZE, or ask the planner what fits: formiga plan -m MODEL --max-memory " + dev + "=SIZE --out plan.json");
  }
  FORMIGA_RETURN_IF_ERROR(be.CopyToDevice(buf->data(), src, bytes).WithContext("uploading " + what));
  const void* dst = buf->data();
  placed_[key] = {dst, bytes};
  buffers_.push_back(std::move(*buf));
  return dst;
}

Status PlacedWeights::Place(const ModelPlacement::Part& part, WeightView* w, const std::string& what) {
  if (w->data == nullptr) return Status::Ok();
  if (part.backend->IsHost()) return Pack(part, w, what);
  FORMIGA_ASSIGN_OR_RETURN(w->data, Upload(part, w->data, static_cast<size_t>(w->rows) * w->row_bytes, what));
  return Status::Ok();
}

Status PlacedWeights::PlaceTable(const ModelPlacement::Part& part, WeightView* w, const std::string& what) {
  if (w->data == nullptr) return Status::Ok();
  if (part.backend->IsHost()) {
    // A tied output packs these same bytes (before or after): the table
    // then reads its rows from that copy, and the file's pages of it are
    // never touched again.
    if (const auto it = packed_views_.find(w->data); it != packed_views_.end() && SameMatrix(it->second, *w)) {
      *w = it->second;
    } else {
      tables_.push_back(w);
    }
    return Status::Ok();
  }
  return Place(part, w, what);
}

bool PlacedWeights::EveryLayerMatrixPacks(Backend& be) const {
  if (file_ == nullptr) return true;
  for (const GgufTensorInfo& t : file_->tensors()) {
    if (t.name.rfind("blk.", 0) != 0 || t.shape.size() != 2 || t.data == nullptr) continue;
    const WeightView v{t.type, t.data, t.shape[0], t.shape[1],
                       static_cast<size_t>(DTypeRowBytes(t.type, static_cast<uint64_t>(t.shape[0])))};
    if (be.PackedBytes(v) == 0) return false;
  }
  return true;
}

Status PlacedWeights::Pack(const ModelPlacement::Part& part, WeightView* w, const std::string& what) {
  Backend& be = *part.backend;
  if (!pack_checked_) {
    // NOTE: all or nothing. In a file mixing packed and unpacked layer
    // matrices (Gemma-3's Q5_0 beside Q4_K/Q6_K), the unpacked ones keep
    // the 2 MB file pages they share with released packed rows mapped: RSS
    // grew 6 % over the plan (tests/test_plan.py). Such files compute from
    // the mapping, as before.
    pack_checked_ = true;
    pack_ = EveryLayerMatrixPacks(be);
  }
  const size_t bytes = pack_ ? be.PackedBytes(*w) : 0;
  if (bytes == 0) return Status::Ok();
  const size_t src_bytes = static_cast<size_t>(w->rows) * w->row_bytes;
  if (!cache_opened_ && file_ != nullptr) {
    cache_ = PackCache::Open(*file_, be.PackedFormat(), pack_cache_dir_);
    cache_opened_ = true;
  }
  if (const void* hit = cache_.Find(w->data, src_bytes, bytes)) {
    // Packed at an earlier load: the cache file's mapping, no copy.
    WeightView packed = *w;
    packed.data = hit;
    packed.layout = WeightLayout::kPacked;
    Adopt(w, packed);
    packed_bytes_ += bytes;
    return Status::Ok();
  }
  Result<HostPages> pages = HostPages::Allocate(bytes);
  if (!pages.ok()) {
    return Status::ResourceExhausted("packing " + what + " for " + part.name() + ": " + pages.status().message() +
                                     " (FORMIGA_PACK_WEIGHTS=0 computes from the mapped file instead)");
  }
  // In runs of about kPackSlice bytes of rows, each run's file pages
  // released once packed: the load's peak RSS stays the file's plus one run
  // (a 137 MiB tied Gemma-3 table packed whole raised it by that much).
  constexpr size_t kPackSlice = size_t{8} << 20;
  const int64_t step = std::max<int64_t>(16, static_cast<int64_t>(kPackSlice / w->row_bytes) / 16 * 16);
  auto* dst = static_cast<uint8_t*>(pages->data());
  for (int64_t r0 = 0; r0 < w->rows;) {
    // (The last run takes the rest, tail rows included, so it has >= 16.)
    const int64_t n = w->rows - r0 < 2 * step ? w->rows - r0 : step;
    const WeightView run = SliceRows(*w, r0, n);
    FORMIGA_RETURN_IF_ERROR(be.PackWeight(run, dst + static_cast<size_t>(r0) * w->row_bytes).status());
    ReleaseRows(run);
    r0 += n;
  }
  WeightView packed = *w;
  packed.data = dst;
  packed.layout = WeightLayout::kPacked;
  cache_.Add(w->data, src_bytes, pages->data(), bytes);
  Adopt(w, packed);
  packed_.push_back(std::move(*pages));
  packed_bytes_ += bytes;
  return Status::Ok();
}

bool PlacedWeights::SameMatrix(const WeightView& a, const WeightView& b) {
  return a.type == b.type && a.rows == b.rows && a.cols == b.cols && a.row_bytes == b.row_bytes;
}

void PlacedWeights::Adopt(WeightView* w, const WeightView& packed) {
  ReleaseRows(*w);
  for (WeightView* table : tables_) {
    if (table->data == w->data && SameMatrix(*table, *w)) *table = packed;
  }
  packed_views_[w->data] = packed;
  *w = packed;
}

// The rows' file pages are not read again (MatMuls and a tied table's
// GetRows read the packed copy): out of this process's resident set (the
// tensor's whole pages; the page cache keeps them for other processes and
// the next load; a device part placed later faults back what it uploads).
// Only for a file mapping: MADV_DONTNEED would zero anonymous memory.
void PlacedWeights::ReleaseRows(const WeightView& w) const {
  const auto begin = reinterpret_cast<uintptr_t>(w.data);
  const uintptr_t end = begin + static_cast<size_t>(w.rows) * w.row_bytes;
  const MappedFile* map = file_ != nullptr ? &file_->mapping() : nullptr;
  const auto map_begin = map != nullptr ? reinterpret_cast<uintptr_t>(map->data()) : 0;
  if (map == nullptr || map->data() == nullptr || begin < map_begin || end > map_begin + map->size()) return;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::string PlacedWeights::FinishPacking() {
  if (packed_bytes_ == 0) return "";
  std::string note = Mib(packed_bytes_) + " of weights packed for the cpu kernels";
  const uint64_t found = cache_.found_bytes();
  if (!cache_.active()) return note + " (in memory; no cache: " +
                               (pack_cache_dir_.empty() ? "off" : "the model file is not a plain file") + ")";
  if (found == packed_bytes_) return note + " (mapped from " + cache_.path() + ")";
  const Status st = cache_.Write();
  if (!st.ok()) return note + " (in memory; cache not written: " + st.message() + ")";
  return note + " (packed now, kept in " + cache_.path() + " for the next load)";
}

Status PlacedWeights::Place(const ModelPlacement::Part& part, const float** v, int64_t n, const std::string& what) {
  if (part.backend->IsHost() || *v == nullptr) return Status::Ok();
  FORMIGA_ASSIGN_OR_RETURN(const void* p, Upload(part, *v, static_cast<size_t>(n) * sizeof(float), what));
  *v = static_cast<const float*>(p);
  return Status::Ok();
}

Status PlacedWeights::PlaceAttention(const ModelPlacement::Part& part, const ModelConfig& c, AttentionWeights* w,
                                     const std::string& prefix) {
  const int64_t C = c.hidden_size, D = c.head_dim, qd = c.n_heads * D, kvd = c.n_kv_heads * D;
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->wq, prefix + "attn_q"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->wk, prefix + "attn_k"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->wv, prefix + "attn_v"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->wo, prefix + "attn_output"));
  if (part.backend->IsHost()) return Status::Ok();  // (the vectors stay where they are)
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->bq, qd, prefix + "attn_q.bias"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->bk, kvd, prefix + "attn_k.bias"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->bv, kvd, prefix + "attn_v.bias"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->bo, C, prefix + "attn_output.bias"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->q_norm, D, prefix + "attn_q_norm"));
  FORMIGA_RETURN_IF_ERROR(Place(part, &w->k_norm, D, prefix + "attn_k_norm"));
  return Status::Ok();
}

uint64_t PlacedWeights::bytes_on(const Backend* be) const {
  uint64_t n = 0;
  for (const BackendBuffer& b : buffers_) {
    if (b.backend() == be) n += b.bytes();
  }
  return n;
}

// ---- ForwardStages ----------------------------------------------------------

MetadataLayout LayOutMetadata(int64_t T, int64_t R, int64_t n_seqs, int64_t n_table) {
  MetadataLayout l;
  l.tokens = 0;
  l.positions = Align8(l.tokens + 4 * T);
  l.seq_of = Align8(l.positions + 4 * T);
  l.slots = Align8(l.seq_of + 4 * T);
  l.rows = l.slots + 8 * T;
  l.ptrs = Align8(l.rows + 4 * R);
  l.tables = l.ptrs + sizeof(int32_t*) * n_seqs;
  l.total = l.tables + 4 * n_table;
  return l;
}

size_t MetadataAllocBytes(size_t total) { return std::max(total * 2, size_t{4096}); }

ForwardStages::ForwardStages(const ModelPlacement& placement) : placement_(placement) {
  auto stage_of = [&](const ModelPlacement::Part& part) {
    for (size_t i = 0; i < stages_.size(); ++i) {
      if (stages_[i]->be == part.backend) return i;
    }
    auto s = std::make_unique<Stage>();
    s->be = part.backend;
    s->device = part.name();
    stages_.push_back(std::move(s));
    return stages_.size() - 1;
  };
  embed_stage_ = stage_of(placement_.embed);
  for (const ModelPlacement::Part& p : placement_.layers) layer_stage_.push_back(stage_of(p));
  output_stage_ = stage_of(placement_.output);
}

Result<Stage*> ForwardStages::Begin(const ModelConfig& c, const ForwardBatch& b, const KvCache& kv) {
  if (kv.n_layers() != static_cast<int64_t>(layer_stage_.size())) {
    return Status::InvalidArgument("the KV cache has " + std::to_string(kv.n_layers()) + " layers, the model " +
                                   std::to_string(layer_stage_.size()));
  }
  for (size_t il = 0; il < layer_stage_.size(); ++il) {
    const Backend* be = stages_[layer_stage_[il]]->be;
    const Backend* owner = kv.layer_backend(static_cast<int64_t>(il));
    if (be->IsHost() ? owner != nullptr : owner != be) {
      return Status::InvalidArgument("the KV cache of layer " + std::to_string(il) + " is not in the memory of " +
                                     stages_[layer_stage_[il]]->device +
                                     ", where the layer runs: create the cache with Model::NewKvCache");
    }
  }
  T_ = b.attn.n_tokens;
  R_ = b.n_logit_rows;
  C_ = c.hidden_size;
  V_ = c.vocab_size;
  int n_device_stages = 0;
  for (size_t i = 0; i < stages_.size(); ++i) {
    Stage& s = *stages_[i];
    const bool logits_here = i == output_stage_ && !s.be->IsHost();
    FORMIGA_RETURN_IF_ERROR(s.scratch.Reserve(*s.be, c, T_, R_, logits_here, s.device));
    if (s.be->IsHost()) {
      s.batch = b;
    } else {
      FORMIGA_RETURN_IF_ERROR(CopyMetadata(s, b, kv.layout().block_size));
      ++n_device_stages;
    }
  }
  // Device -> device hops need a host staging buffer; grown here, not per hop.
  if (n_device_stages > 1 && staging_.size() < static_cast<size_t>(T_ * C_)) staging_.resize(static_cast<size_t>(T_ * C_));
  current_ = embed_stage_;
  return stages_[embed_stage_].get();
}

// NOTE: the metadata is packed into one buffer (one CopyToDevice per stage
// per forward) in this order, each section 8-byte aligned: tokens [T],
// positions [T], seq_of [T] (int32), slots [T] (int64), logit rows [R]
// (int32), the table pointers [n_seqs], then the tables themselves. A
// sequence's table is copied up to the block of its last position in this
// batch: the most attention or StoreKv can read.
Status ForwardStages::CopyMetadata(Stage& s, const ForwardBatch& b, int64_t block_size) {
  const int64_t T = b.attn.n_tokens, R = b.n_logit_rows;
  int64_t n_seqs = 0;
  for (int64_t t = 0; t < T; ++t) n_seqs = std::max<int64_t>(n_seqs, b.attn.seq_of_token[t] + 1);
  std::vector<int64_t>& table_len = s.table_len;  // grown once, reused: no allocation per forward
  table_len.assign(static_cast<size_t>(n_seqs), 0);
  for (int64_t t = 0; t < T; ++t) {
    int64_t& len = table_len[static_cast<size_t>(b.attn.seq_of_token[t])];
    len = std::max<int64_t>(len, b.attn.positions[t] / block_size + 1);
  }
  int64_t n_table = 0;
  for (int64_t len : table_len) n_table += len;
  const MetadataLayout lay = LayOutMetadata(T, R, n_seqs, n_table);
  const size_t off_tokens = lay.tokens, off_pos = lay.positions, off_seq = lay.seq_of, off_slots = lay.slots,
               off_rows = lay.rows, off_ptrs = lay.ptrs, off_tables = lay.tables, total = lay.total;
  if (s.meta.bytes() < total) {
    s.meta.Reset();
    Result<BackendBuffer> m = BackendBuffer::Allocate(*s.be, MetadataAllocBytes(total));
    if (!m.ok()) {
      return Status::ResourceExhausted("the batch's token and block-table metadata (" + std::to_string(total) +
                                       " bytes) does not fit on " + s.device + ": " + m.status().message());
    }
    s.meta = std::move(*m);
  }
  if (s.meta_host.size() < total) s.meta_host.resize(s.meta.bytes());
  uint8_t* h = s.meta_host.data();
  auto* dev = static_cast<uint8_t*>(s.meta.data());
  std::memcpy(h + off_tokens, b.tokens, 4 * T);
  std::memcpy(h + off_pos, b.attn.positions, 4 * T);
  std::memcpy(h + off_seq, b.attn.seq_of_token, 4 * T);
  std::memcpy(h + off_slots, b.attn.slots, 8 * T);
  if (R > 0) std::memcpy(h + off_rows, b.logit_rows, 4 * R);
  size_t table_off = off_tables;
  for (int64_t sq = 0; sq < n_seqs; ++sq) {
    const int32_t* dev_table = reinterpret_cast<const int32_t*>(dev + table_off);
    std::memcpy(h + off_ptrs + sizeof(int32_t*) * sq, &dev_table, sizeof(dev_table));
    const size_t len = static_cast<size_t>(table_len[static_cast<size_t>(sq)]);
    if (len > 0) std::memcpy(h + table_off, b.attn.block_tables[sq], 4 * len);
    table_off += 4 * len;
  }
  FORMIGA_RETURN_IF_ERROR(s.be->CopyToDevice(dev, h, total).WithContext("copying the batch to " + s.device));
  s.batch = b;
  s.batch.tokens = reinterpret_cast<const int32_t*>(dev + off_tokens);
  s.batch.attn.positions = reinterpret_cast<const int32_t*>(dev + off_pos);
  s.batch.attn.seq_of_token = reinterpret_cast<const int32_t*>(dev + off_seq);
  s.batch.attn.slots = reinterpret_cast<const int64_t*>(dev + off_slots);
  s.batch.logit_rows = reinterpret_cast<const int32_t*>(dev + off_rows);
  s.batch.attn.block_tables = reinterpret_cast<const int32_t* const*>(dev + off_ptrs);
  return Status::Ok();
}

Result<Stage*> ForwardStages::Enter(size_t to) {
  if (to == current_) return stages_[to].get();
  Stage& from = *stages_[current_];
  Stage& dst = *stages_[to];
  const size_t bytes = static_cast<size_t>(T_ * C_) * sizeof(float);
  if (from.be->IsHost() && dst.be->IsHost()) {
    std::memcpy(dst.x(), from.x(), bytes);
  } else if (from.be->IsHost()) {
    FORMIGA_RETURN_IF_ERROR(dst.be->CopyToDevice(dst.x(), from.x(), bytes));
  } else if (dst.be->IsHost()) {
    FORMIGA_RETURN_IF_ERROR(from.be->CopyToHost(dst.x(), from.x(), bytes));
  } else {
    FORMIGA_RETURN_IF_ERROR(from.be->CopyToHost(staging_.data(), from.x(), bytes));
    FORMIGA_RETURN_IF_ERROR(dst.be->CopyToDevice(dst.x(), staging_.data(), bytes));
  }
  current_ = to;
  return &dst;
}

float* ForwardStages::LogitsOut(float* host_logits) const {
  const Stage& s = *stages_[output_stage_];
  return s.be->IsHost() ? host_logits : s.scratch.logits.data();
}

Status ForwardStages::Finish(float* host_logits) {
  const Stage& out = *stages_[output_stage_];
  if (!out.be->IsHost() && R_ > 0) {
    FORMIGA_RETURN_IF_ERROR(out.be->CopyToHost(host_logits, out.scratch.logits.data(),
                                               static_cast<size_t>(R_ * V_) * sizeof(float)));
  }
  for (const auto& s : stages_) {
    if (!s->be->IsHost()) FORMIGA_RETURN_IF_ERROR(s->be->Synchronize().WithContext("on " + s->device));
  }
  return Status::Ok();
}

}  // namespace formiga
