// ModelPlacement: which backend runs each part of a model — the token
// embedding, every layer, the output head (final norm + logits) — and the
// device name each part is on ("cpu", "cuda:0"), for messages.
//
// The planner decides the placement (planner/placement.h: --device-map,
// --gpu-layers, --plan, resolved by ResolveDeviceMap into one device name per
// part); the CLI turns the names into Backend objects and hands the result to
// LoadModel. A part on a host backend (IsHost) keeps zero-copy views into the
// mapped file; a part on a device backend gets its weights uploaded once at
// load, its own scratch and KV arrays, and per-forward copies of the batch
// metadata (model/placement_buffers.h). The residual stream hops between
// backends at part boundaries.
//
// Ownership: the placement borrows the backends; they must outlive every
// model loaded with it. Thread safety: a plain value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "kernels/backend.h"

namespace formiga {

struct ModelPlacement {
  struct Part {
    Backend* backend = nullptr;
    std::string device;  // "cpu", "cuda:0", ... (empty: the backend's name)
    std::string name() const { return !device.empty() ? device : backend != nullptr ? backend->name() : "(none)"; }
  };
  Part embed;               // token embedding lookup (and gemma's embedding scale)
  std::vector<Part> layers; // one per transformer block
  Part output;              // final norm + output projection (+ logit soft-capping)
  // Where host backends' packed weights are kept between loads
  // (model/pack_cache.h); empty: pack in memory at every load.
  std::string pack_cache_dir;

  // Every part on `backend`.
  static ModelPlacement Uniform(Backend& backend, int64_t n_layers, const std::string& device = "");

  // OK when there is a backend for the embedding, the output and exactly
  // n_layers layers.
  Status Validate(int64_t n_layers) const;
  // Whether every part runs on a host backend (then nothing is copied).
  bool AllHost() const;
  // The distinct backends, in order of first use (embedding, layers, output).
  std::vector<Backend*> Backends() const;
  std::vector<Backend*> LayerBackends() const;
  std::vector<std::string> LayerDevices() const;
};

}  // namespace formiga
