#include "planner/device_memory.h"

#include <algorithm>
#include <set>

#include "model/placement_buffers.h"
#include "model/transformer.h"
#include "planner/units.h"

namespace formiga::planner {
namespace {

bool IsHostDevice(const std::string& d) { return d == "cpu"; }

// The parts a tensor belongs to: its layer, or the embedding / output head.
// token_embd is also the output projection when the model has no output.weight.
struct TensorParts {
  bool embed = false, output = false;
  int64_t layer = -1;
};
TensorParts PartsOf(const TensorBytes& t, bool tied) {
  TensorParts p;
  if (t.layer >= 0) {
    p.layer = t.layer;
  } else if (t.name == "token_embd.weight") {
    p.embed = true;
    p.output = tied;
  } else if (t.name.rfind("output", 0) == 0) {  // output.weight, output_norm.weight / .bias
    p.output = true;
  }
  return p;  // anything else (rope_freqs) is never uploaded: it stays a host view
}

}  // namespace

std::string DeviceShare::Breakdown() const {
  std::string s = "weights " + FormatBytes(weights) + ", KV cache " + FormatBytes(kv_cache) + ", activations " +
                  FormatBytes(activations);
  if (metadata > 0) s += (host ? ", logits and transfer buffers " : ", batch metadata ") + FormatBytes(metadata);
  if (runtime > 0) s += ", tokenizer and runtime " + FormatBytes(runtime);
  return s;
}

const DeviceShare* PlacementMemory::Find(const std::string& device) const {
  for (const DeviceShare& d : devices) {
    if (d.device == device) return &d;
  }
  return nullptr;
}

int64_t StepTokens(const EngineShape& e) {
  const int64_t t = e.prompt_tokens > 0 ? std::min(e.prompt_tokens, e.max_batch_tokens)
                                        : std::min(e.max_batch_tokens, e.n_ctx - 1);
  // A decode step of every sequence is a batch of max_seqs tokens too.
  return std::max<int64_t>({t, std::min(e.max_seqs, e.max_batch_tokens), 1});
}

int64_t StepLogitRows(const EngineShape& e) { return std::max<int64_t>(std::min(e.max_seqs, StepTokens(e)), 1); }

PlacementMemory PredictPlacement(const ModelConfig& c, const ModelWeights& w, const EngineShape& e,
                                 const ModuleDevices& where, uint64_t metadata_bytes) {
  PlacementMemory out;
  auto share = [&](const std::string& dev) -> DeviceShare& {
    for (DeviceShare& d : out.devices) {
      if (d.device == dev) return d;
    }
    DeviceShare d;
    d.device = dev;
    d.host = IsHostDevice(dev);
    out.devices.push_back(std::move(d));
    return out.devices.back();
  };
  share("cpu");
  for (const std::string& dev : where.Devices()) share(dev);
  // Every device is in out.devices now: references stay valid below.
  DeviceShare& host = out.devices.front();
  auto layer_device = [&](int64_t il) -> const std::string& {
    static const std::string cpu = "cpu";
    return il >= 0 && static_cast<size_t>(il) < where.layers.size() ? where.layers[static_cast<size_t>(il)] : cpu;
  };
  share(where.embed).embedding = true;
  share(where.output).output = true;
  for (size_t il = 0; il < where.layers.size(); ++il) share(where.layers[il]).layers.push_back(static_cast<int64_t>(il));

  // ---- the host: formiga's CPU engine with only the host parts counted.
  const CpuRunMemory cpu = PredictCpuRun(c, w, e, metadata_bytes);
  host.runtime = cpu.runtime + cpu.tokenizer + cpu.file_header;
  host.metadata = cpu.logits;  // the engine's logits (rows x vocab), always on the host
  const bool tied = w.tied_embeddings;
  uint64_t host_weights = 0;
  for (const TensorBytes& t : w.tensors) {
    const TensorParts p = PartsOf(t, tied);
    if (p.layer >= 0) {
      if (IsHostDevice(layer_device(p.layer))) host_weights += t.bytes;
    } else if (p.embed) {
      // As PredictCpuRun: a host output head reading the tied table touches
      // all of it; a host embedding alone touches the prompt's rows.
      if (p.output && IsHostDevice(where.output)) {
        host_weights += t.bytes;
      } else if (IsHostDevice(where.embed)) {
        host_weights += std::min<uint64_t>(t.bytes, EmbeddingBytesTouched(c, w, e));
      }
    } else if (p.output) {
      if (IsHostDevice(where.output)) host_weights += t.bytes;
    } else {
      host_weights += t.bytes;
    }
  }
  host.weights = host_weights;

  // ---- devices: each tensor of their parts, once per device.
  std::set<std::pair<std::string, std::string>> uploaded;  // (device, tensor)
  for (const TensorBytes& t : w.tensors) {
    const TensorParts p = PartsOf(t, tied);
    std::vector<std::string> devs;
    if (p.layer >= 0) devs.push_back(layer_device(p.layer));
    if (p.embed) devs.push_back(where.embed);
    if (p.output) devs.push_back(where.output);
    for (const std::string& d : devs) {
      if (IsHostDevice(d) || !uploaded.insert({d, t.name}).second) continue;
      DeviceShare& s = share(d);
      s.weights += t.bytes;
      ++s.allocations;
    }
  }

  // ---- KV cache: every layer holds the engine's blocks, full length.
  const int64_t blocks = e.n_blocks > 0 ? e.n_blocks : e.max_seqs * ((e.n_ctx + e.block_size - 1) / e.block_size);
  const uint64_t kv_layer =
      KvBytesPerTokenLayer(c, e.kv_type) * static_cast<uint64_t>(blocks) * static_cast<uint64_t>(e.block_size);
  for (size_t il = 0; il < where.layers.size(); ++il) {
    DeviceShare& s = share(where.layers[il]);
    s.kv_cache += kv_layer;
    if (!s.host) s.allocations += 2;
  }

  // ---- stages: scratch and batch metadata per backend that runs a part.
  const int64_t T = StepTokens(e), R = StepLogitRows(e);
  const int64_t table_per_seq = std::min<int64_t>((e.n_ctx + e.block_size - 1) / e.block_size, blocks);
  const uint64_t meta = MetadataAllocBytes(
      LayOutMetadata(T, R, e.max_seqs, std::min<int64_t>(e.max_seqs * table_per_seq, blocks)).total);
  int device_stages = 0;
  for (DeviceShare& s : out.devices) {
    const bool runs_a_part = s.embedding || s.output || !s.layers.empty();
    if (!runs_a_part) continue;
    if (s.host) {
      s.activations = CpuScratchBytes(c, T, R);
    } else {
      s.activations = Scratch::BytesFor(c, T, s.output ? R : 0);
      s.metadata = meta;
      s.allocations += 2;
      host.metadata += meta;  // its host image
      ++device_stages;
    }
  }
  if (device_stages > 1) host.metadata += static_cast<uint64_t>(T * c.hidden_size) * sizeof(float);  // hop staging
  return out;
}

}  // namespace formiga::planner
