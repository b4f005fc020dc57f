#include "model/placement.h"

#include <algorithm>

namespace formiga {

ModelPlacement ModelPlacement::Uniform(Backend& backend, int64_t n_layers, const std::string& device) {
  ModelPlacement p;
  p.embed = Part{&backend, device};
  p.layers.assign(static_cast<size_t>(std::max<int64_t>(n_layers, 0)), Part{&backend, device});
  p.output = Part{&backend, device};
  return p;
}

Status ModelPlacement::Validate(int64_t n_layers) const {
  if (static_cast<int64_t>(layers.size()) != n_layers) {
    return Status::InvalidArgument("the placement names " + std::to_string(layers.size()) +
                                   " layers but the model has " + std::to_string(n_layers) +
                                   ": make the device map for this model (formiga plan -m MODEL --out plan.json)");
  }
  if (embed.backend == nullptr || output.backend == nullptr) {
    return Status::InvalidArgument("the placement has no backend for the embedding or the output head");
  }
  for (size_t il = 0; il < layers.size(); ++il) {
    if (layers[il].backend == nullptr) {
      return Status::InvalidArgument("the placement has no backend for layer " + std::to_string(il));
    }
  }
  return Status::Ok();
}

bool ModelPlacement::AllHost() const {
  for (Backend* be : Backends()) {
    if (!be->IsHost()) return false;
  }
  return true;
}

std::vector<Backend*> ModelPlacement::Backends() const {
  std::vector<Backend*> out;
  auto add = [&](Backend* be) {
    if (be != nullptr && std::find(out.begin(), out.end(), be) == out.end()) out.push_back(be);
  };
  add(embed.backend);
  for (const Part& p : layers) add(p.backend);
  add(output.backend);
  return out;
}

std::vector<Backend*> ModelPlacement::LayerBackends() const {
  std::vector<Backend*> out;
  for (const Part& p : layers) out.push_back(p.backend);
  return out;
}

std::vector<std::string> ModelPlacement::LayerDevices() const {
  std::vector<std::string> out;
  for (const Part& p : layers) out.push_back(p.name());
  return out;
}

}  // namespace formiga
