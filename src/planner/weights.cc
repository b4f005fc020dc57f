#include "planner/weights.h"

#include <cmath>
#include <cstdlib>

#include "formats/gguf.h"
#include "model/quantize.h"

namespace formiga::planner {
namespace {

constexpr double kNf4BitsPerWeight = 4.127;  // 4 + 8/64 (absmax, double-quantized) + 32/(64*256) (second level)

ModelWeights Summarize(std::vector<TensorBytes> tensors, const ModelConfig& config, const std::string& type) {
  ModelWeights w;
  w.type = type;
  w.layer_bytes.assign(static_cast<size_t>(config.n_layers), 0);
  bool has_output = false;
  for (const TensorBytes& t : tensors) {
    w.total_bytes += t.bytes;
    w.parameters += t.elements;
    if (t.layer >= 0 && t.layer < config.n_layers) {
      w.layer_bytes[static_cast<size_t>(t.layer)] += t.bytes;
    } else if (t.name == "token_embd.weight") {
      w.embedding_bytes += t.bytes;
    } else {
      has_output = has_output || t.name == "output.weight";
      w.output_bytes += t.bytes;  // output.weight, output_norm, position embeddings
    }
  }
  w.tied_embeddings = !has_output;
  w.tensors = std::move(tensors);
  return w;
}

}  // namespace

std::vector<std::string> AutoQuantCandidates() {
  return {"bf16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k"};
}

int64_t LayerOfTensor(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  return std::strtoll(name.c_str() + 4, nullptr, 10);
}

Result<ModelWeights> WeightsForConfig(const ModelConfig& config, const std::string& type) {
  FORMIGA_RETURN_IF_ERROR(config.Validate());
  const std::vector<TensorSpec> specs = ModelTensors(config);
  if (type == "nf4") {
    std::vector<TensorBytes> out;
    for (const TensorSpec& s : specs) {
      TensorBytes t{s.name, LayerOfTensor(s.name), DType::kBF16, 1, 0};
      for (int64_t d : s.shape) t.elements *= d;
      // NOTE: bitsandbytes quantizes the blocks' Linear layers only;
      // embeddings, lm_head and norms stay in bf16.
      if (s.is_matrix && t.layer >= 0) {
        t.bytes = static_cast<uint64_t>(std::ceil(static_cast<double>(t.elements) * kNf4BitsPerWeight / 8.0));
      } else {
        t.bytes = static_cast<uint64_t>(t.elements) * 2;
      }
      out.push_back(std::move(t));
    }
    return Summarize(std::move(out), config, type);
  }
  FORMIGA_ASSIGN_OR_RETURN(QuantizePreset preset, ParseQuantizePreset(type));
  std::vector<TensorQuantPlan> in;
  in.reserve(specs.size());
  for (const TensorSpec& s : specs) {
    TensorQuantPlan p;
    p.name = s.name;
    p.shape = s.shape;
    p.from = s.shape.size() >= 2 ? DType::kF16 : DType::kF32;
    in.push_back(std::move(p));
  }
  FORMIGA_ASSIGN_OR_RETURN(std::vector<TensorQuantPlan> planned,
                           PlanQuantization(std::move(in), ArchName(config.arch), config.n_heads,
                                            config.n_kv_heads, preset));
  std::vector<TensorBytes> out;
  for (const TensorQuantPlan& p : planned) {
    TensorBytes t{p.name, LayerOfTensor(p.name), p.to, 1, p.out_bytes};
    for (int64_t d : p.shape) t.elements *= d;
    out.push_back(std::move(t));
  }
  return Summarize(std::move(out), config, type);
}

Result<ModelWeights> WeightsFromGguf(const GgufFile& file, const ModelConfig& config, const std::string& type) {
  if (!type.empty() && type != "file") {
    if (type == "nf4") return WeightsForConfig(config, type);
    FORMIGA_ASSIGN_OR_RETURN(QuantizePreset preset, ParseQuantizePreset(type));
    FORMIGA_ASSIGN_OR_RETURN(std::vector<TensorQuantPlan> planned, PlanQuantization(file, preset));
    std::vector<TensorBytes> out;
    for (const TensorQuantPlan& p : planned) {
      TensorBytes t{p.name, LayerOfTensor(p.name), p.to, 1, p.out_bytes};
      for (int64_t d : p.shape) t.elements *= d;
      out.push_back(std::move(t));
    }
    return Summarize(std::move(out), config, type);
  }
  std::vector<TensorBytes> out;
  for (const GgufTensorInfo& g : file.tensors()) {
    TensorBytes t{g.name, LayerOfTensor(g.name), g.type, g.n_elements(), 0};
    t.bytes = DTypeRowBytes(g.type, static_cast<uint64_t>(t.elements));
    out.push_back(std::move(t));
  }
  return Summarize(std::move(out), config, "file");
}

int64_t LoraParameters(const ModelConfig& config, int64_t rank) {
  int64_t n = 0;
  for (const TensorSpec& s : ModelTensors(config)) {
    if (!s.is_matrix || LayerOfTensor(s.name) < 0 || s.shape.size() != 2) continue;
    n += rank * (s.shape[0] + s.shape[1]);
  }
  return n;
}

}  // namespace formiga::planner
