// What each device holds when formiga runs a placed model: one prediction,
// used by the fit check before anything is allocated (planner/place_model.h),
// by the auto/balanced strategies that choose how many layers go to each
// GPU, and proven against what a device really holds at peak
// (device_memory_test.cc, with model/test_device_backend.h standing in).
//
// A device (cuda:N) holds, as the runtime allocates them (model/placement_buffers.h):
//   weights     every tensor of its parts, exactly as uploaded (one
//               allocation per tensor; a tensor shared by two parts on one
//               device, tied embeddings, once);
//   kv_cache    its layers' K and V arrays (the engine's blocks, every layer
//               full length: exact);
//   activations its stage's Scratch (model/transformer.h Scratch::BytesFor),
//               with the logits (rows x vocab) when the output head is there;
//   metadata    its stage's batch metadata buffer (token ids, positions,
//               slots, block tables): an upper bound (the runtime grows it to
//               twice the largest batch seen, at least 4 KiB).
// The host ("cpu") holds formiga's CPU engine (PredictCpuRun) with only the
// host parts counted: the mapped pages of host parts' weights (device parts'
// pages are released after upload: ReleaseUploadedPages), host layers' KV,
// the host stage's scratch, the engine's logits, the staging buffer for
// device -> device hops and the metadata's host images, the tokenizer and
// the runtime.
//
// Not counted: what the device runtime itself takes (a CUDA context, the
// allocator's rounding of each cudaMalloc). The fit check measures free
// memory with the backend already created (the context is outside it);
// `allocations` says how many allocations a device makes, for the rounding.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "planner/memory.h"
#include "planner/placement.h"
#include "planner/weights.h"

namespace formiga::planner {

struct DeviceShare {
  std::string device;          // "cpu", "cuda:0", ...
  bool host = false;
  uint64_t weights = 0;
  uint64_t kv_cache = 0;
  uint64_t activations = 0;    // scratch (+ logits on a device running the output head)
  uint64_t metadata = 0;       // device: batch metadata; host: engine logits, hop staging, metadata images
  uint64_t runtime = 0;        // host: binary and threads, tokenizer, GGUF header
  int64_t allocations = 0;     // device: Alloc calls live at peak
  std::vector<int64_t> layers;
  bool embedding = false, output = false;
  uint64_t total() const { return weights + kv_cache + activations + metadata + runtime; }
  // "weights 1.2 GiB, KV cache 256 MiB, activations 40 MiB, metadata 8 KiB".
  std::string Breakdown() const;
};

struct PlacementMemory {
  std::vector<DeviceShare> devices;  // "cpu" first, then the devices in order of first use
  const DeviceShare* Find(const std::string& device) const;
};

// The tokens of the largest forward pass the engine runs for `e` (what its
// scratch is sized for), and the most logits rows of one pass.
int64_t StepTokens(const EngineShape& e);
int64_t StepLogitRows(const EngineShape& e);

// The share of every device `where` uses, and of the host. `metadata_bytes`:
// the GGUF header size (as PredictCpuRun).
PlacementMemory PredictPlacement(const ModelConfig& c, const ModelWeights& w, const EngineShape& e,
                                 const ModuleDevices& where, uint64_t metadata_bytes);

}  // namespace formiga::planner
