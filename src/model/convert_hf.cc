// ConvertHfCheckpoint: safetensors + config.json -> GGUF, streamed row chunk
// by row chunk (see convert_hf.h). The tokenizer part is in
// convert_hf_tokenizer.cc.
#include "model/convert_hf.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>
#include <thread>
#include <unordered_map>

#include "core/fp16.h"
#include "core/quant.h"
#include "formats/gguf_writer.h"
#include "formats/safetensors.h"
#include "model/gguf_metadata.h"
#include "model/parallel_rows.h"

namespace formiga {
namespace {

// NOTE: general.quantization_version is ggml's GGML_QNT_VERSION (2); llama.cpp
// expects it on every file whose tensors may be block-quantized.
constexpr uint32_t kGgmlQuantizationVersion = 2;
constexpr const char* kRopeFreqs = "rope_freqs.weight";

// Where one GGUF tensor's data comes from.
struct Source {
  const SafetensorsTensor* hf = nullptr;  // nullptr: generated (rope_freqs)
  std::string file;                       // shard path, for messages
  HfTensorMapping mapping;
};

bool IsFloatDType(SafetensorsDType t) {
  return t == SafetensorsDType::kF32 || t == SafetensorsDType::kF16 || t == SafetensorsDType::kBF16 ||
         t == SafetensorsDType::kF64;
}

DType ReportDType(SafetensorsDType t) {
  switch (t) {
    case SafetensorsDType::kF16: return DType::kF16;
    case SafetensorsDType::kBF16: return DType::kBF16;
    default: return DType::kF32;  // f32, and f64 (read as f32)
  }
}

// n elements of `dtype` starting at element `start`, `stride` elements apart,
// as f32. NOTE: memcpy per element: safetensors data is only guaranteed
// 8-byte aligned at the start of the data section, not per tensor.
void LoadF32(SafetensorsDType dtype, const uint8_t* base, int64_t start, int64_t stride, int64_t n, float* out) {
  switch (dtype) {
    case SafetensorsDType::kF32:
      if (stride == 1) {
        std::memcpy(out, base + start * 4, static_cast<size_t>(n) * 4);
      } else {
        for (int64_t i = 0; i < n; ++i) std::memcpy(&out[i], base + (start + i * stride) * 4, 4);
      }
      return;
    case SafetensorsDType::kF16:
    case SafetensorsDType::kBF16: {
      const bool f16 = dtype == SafetensorsDType::kF16;
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, base + (start + i * stride) * 2, 2);
        out[i] = f16 ? F16ToF32(h) : BF16ToF32(h);
      }
      return;
    }
    case SafetensorsDType::kF64:
      for (int64_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, base + (start + i * stride) * 8, 8);
        out[i] = static_cast<float>(d);
      }
      return;
    default:
      return;  // rejected before streaming starts
  }
}

// Maps every HF tensor of the checkpoint; returns GGUF name -> source.
Status MapCheckpoint(const ModelConfig& config, const SafetensorsCheckpoint& ckpt,
                     std::unordered_map<std::string, Source>* sources, std::vector<std::string>* skipped) {
  for (const SafetensorsFile& shard : ckpt.shards()) {
    for (const SafetensorsTensor& t : shard.tensors()) {
      Result<HfTensorMapping> m = MapHfTensor(config, t.name, t.shape);
      if (!m.ok()) {
        return m.status().WithContext(shard.path() +
                                      " (fix config.json or the checkpoint; formiga maps the parameter names "
                                      "transformers uses for this model_type)");
      }
      if (m->transform == HfTransform::kSkip) {
        skipped->push_back(t.name);
        continue;
      }
      if (!IsFloatDType(t.dtype)) {
        return Status::Unsupported(shard.path() + ": HF tensor '" + t.name + "' has dtype " +
                                   SafetensorsDTypeName(t.dtype) +
                                   "; formiga converts F32/F16/BF16/F64 checkpoints (pre-quantized "
                                   "GPTQ/AWQ/FP8 checkpoints are not supported: convert the original weights)");
      }
      auto [it, inserted] = sources->emplace(m->gguf_name, Source{&t, shard.path(), *m});
      if (!inserted) {
        return Status::InvalidArgument(shard.path() + ": HF tensors '" + it->second.hf->name + "' and '" +
                                       t.name + "' both map to GGUF tensor " + m->gguf_name +
                                       " (a checkpoint mixing two layouts of this architecture?)");
      }
    }
  }
  return Status::Ok();
}

// Fills `n_rows` GGUF rows [r0, r0 + n_rows) of length ne0 (f32) for one tensor.
void FillRows(const ModelConfig& config, const Source& src, const std::vector<float>& generated, int64_t ne0,
              int64_t r0, int64_t n_rows, float* out) {
  if (src.hf == nullptr) {
    std::memcpy(out, generated.data() + r0 * ne0, static_cast<size_t>(n_rows * ne0) * sizeof(float));
    return;
  }
  const SafetensorsTensor& t = *src.hf;
  const HfTensorMapping& m = src.mapping;
  const int64_t n = t.n_elements();
  if (m.transform == HfTransform::kTranspose) {
    // HF Conv1D [in][out]: GGUF row k (length in) is column k.
    const int64_t in = t.shape[0], cols = n / in;
    for (int64_t r = 0; r < n_rows; ++r) LoadF32(t.dtype, t.data, r0 + r, cols, in, out + r * ne0);
    return;
  }
  if (t.shape.size() <= 1) {  // a vector: one GGUF row
    LoadF32(t.dtype, t.data, r0 * ne0, 1, n_rows * ne0, out);
  } else {
    const int64_t hf_rows = n / ne0;
    for (int64_t r = 0; r < n_rows; ++r) {
      const int64_t sr = HfSourceRow(config, m, hf_rows, r0 + r);
      LoadF32(t.dtype, t.data, sr * ne0, 1, ne0, out + r * ne0);
    }
  }
  if (m.transform == HfTransform::kAddOne) {
    for (int64_t i = 0; i < n_rows * ne0; ++i) out[i] += 1.0f;
  }
}

}  // namespace

int64_t HfSourceRow(const ModelConfig& c, const HfTensorMapping& m, int64_t hf_rows, int64_t o) {
  switch (m.transform) {
    case HfTransform::kPermuteRope: {
      // GGUF row 2j + part of a head <- HF row part * hd/2 + j (see ApplyHfTransform).
      const int64_t hd = hf_rows / m.rope_heads, half = hd / 2;
      const int64_t h = o / hd, w = o % hd;
      return h * hd + (w % 2) * half + w / 2;
    }
    case HfTransform::kFalconQkv: {
      // GGUF: all q heads, all k, all v. HF: per KV group g, qpk q heads, k, v.
      const int64_t hd = c.head_dim, kv = c.n_kv_heads, qpk = c.n_heads / c.n_kv_heads;
      const int64_t head = o / hd, d = o % hd;
      if (head < c.n_heads) return ((head / qpk) * (qpk + 2) + head % qpk) * hd + d;
      if (head < c.n_heads + kv) return ((head - c.n_heads) * (qpk + 2) + qpk) * hd + d;
      return ((head - c.n_heads - kv) * (qpk + 2) + qpk + 1) * hd + d;
    }
    default:
      return o;
  }
}

std::vector<float> Llama3RopeFactors(const ModelConfig& c) {
  // Frequencies whose wavelength is short (high frequency) are kept, long
  // ones are divided by `factor`, and those in between blend smoothly.
  const int64_t n = c.head_dim / 2;
  const double old_ctx = c.rope_original_context > 0 ? static_cast<double>(c.rope_original_context) : 8192.0;
  const double lo = c.rope_low_freq_factor, hi = c.rope_high_freq_factor, factor = c.rope_scaling_factor;
  const double low_freq_wavelen = old_ctx / lo, high_freq_wavelen = old_ctx / hi;
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double freq = std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(c.head_dim));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    double f;
    if (wavelen < high_freq_wavelen) {
      f = 1.0;
    } else if (wavelen > low_freq_wavelen) {
      f = factor;
    } else {
      const double smooth = (old_ctx / wavelen - lo) / (hi - lo);
      f = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    out[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return out;
}

Result<ConvertReport> ConvertHfCheckpoint(const std::string& dir, const std::string& out_gguf,
                                          const ConvertOptions& options, const ConvertProgressFn& progress) {
  namespace fs = std::filesystem;
  const std::string where = "convert: " + dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound(where + ": not a folder (pass a Hugging Face checkpoint folder with config.json "
                                    "and *.safetensors)");
  }
  FORMIGA_ASSIGN_OR_RETURN(QuantizePreset preset, ParseQuantizePreset(options.type));
  Result<ModelConfig> config_r = ConfigFromHfDir(dir);
  if (!config_r.ok()) return config_r.status().WithContext("convert");
  ConvertReport report;
  report.config = std::move(config_r).value();
  const ModelConfig& config = report.config;
  FORMIGA_RETURN_IF_ERROR(config.Validate().WithContext(where + "/config.json"));

  Result<SafetensorsCheckpoint> ckpt_r = SafetensorsCheckpoint::Open(dir);
  if (!ckpt_r.ok()) return ckpt_r.status().WithContext(where);
  const SafetensorsCheckpoint& ckpt = *ckpt_r;

  std::unordered_map<std::string, Source> sources;
  FORMIGA_RETURN_IF_ERROR(MapCheckpoint(config, ckpt, &sources, &report.skipped));

  // Every GGUF tensor the architecture has must come from somewhere.
  const std::vector<TensorSpec> specs = ModelTensors(config);
  std::vector<float> rope_factors;
  std::string missing;
  size_t n_missing = 0;
  std::vector<TensorQuantPlan> plan_in;
  std::vector<const Source*> order;
  Source generated;
  for (const TensorSpec& spec : specs) {
    const Source* src = nullptr;
    if (spec.name == kRopeFreqs) {
      rope_factors = Llama3RopeFactors(config);
      src = &generated;
    } else if (auto it = sources.find(spec.name); it != sources.end()) {
      src = &it->second;
    } else {
      if (n_missing++ < 8) missing += (missing.empty() ? "" : ", ") + spec.name;
      continue;
    }
    TensorQuantPlan p;
    p.name = spec.name;
    p.shape = spec.shape;
    p.from = DType::kF32;  // rows are converted to f32 first
    plan_in.push_back(std::move(p));
    order.push_back(src);
  }
  if (n_missing > 0) {
    return Status::InvalidArgument(
        where + ": no HF tensor provides " + std::to_string(n_missing) + " GGUF tensor(s) a " +
        ArchName(config.arch) + " model with this config.json needs: " + missing + (n_missing > 8 ? ", ..." : "") +
        " (the checkpoint is incomplete, or config.json does not describe these weights)");
  }
  FORMIGA_ASSIGN_OR_RETURN(report.tensors, PlanQuantization(std::move(plan_in), ArchName(config.arch),
                                                            config.n_heads, config.n_kv_heads, preset));

  GgufWriter w;
  std::string name = options.name.empty() ? config.name : options.name;
  if (name.empty()) name = fs::path(dir).lexically_normal().filename().string();
  if (name.empty() || name == ".") name = fs::absolute(dir, ec).lexically_normal().parent_path().filename().string();
  w.SetString("general.architecture", ArchName(config.arch));
  w.SetString("general.type", "model");
  w.SetString("general.name", name);
  w.SetUint32("general.file_type", static_cast<uint32_t>(preset.file_type));
  w.SetUint32("general.quantization_version", kGgmlQuantizationVersion);
  w.SetString("general.converted_by", "formiga convert");
  WriteArchMetadata(config, w);
  Result<ConvertTokenizerInfo> tok = WriteHfTokenizerMetadata(dir, config, w);
  if (!tok.ok()) return tok.status().WithContext(where);
  report.tokenizer = std::move(tok).value();

  for (size_t i = 0; i < report.tensors.size(); ++i) {
    TensorQuantPlan& p = report.tensors[i];
    FORMIGA_RETURN_IF_ERROR(w.AddTensor(p.name, p.shape, p.to).WithContext(where));
    report.output_tensor_bytes += p.out_bytes;
    report.type_counts[p.to]++;
    report.n_fallback += p.fallback ? 1 : 0;
    const Source& src = *order[i];
    if (src.hf != nullptr) {
      p.from = ReportDType(src.hf->dtype);
      report.input_tensor_bytes += src.hf->nbytes;
    }
  }
  FORMIGA_RETURN_IF_ERROR(w.Begin(out_gguf));

  const int threads = options.threads > 0 ? options.threads
                                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::vector<float> scratch;
  std::vector<uint8_t> out_buf;
  ConvertProgress prog;
  prog.n_tensors = report.tensors.size();
  prog.bytes_total = report.output_tensor_bytes;
  for (size_t ti = 0; ti < report.tensors.size(); ++ti) {
    const TensorQuantPlan& p = report.tensors[ti];
    const Source& src = *order[ti];
    prog.tensor_index = ti;
    prog.tensor = p.name.c_str();
    const int64_t ne0 = p.shape[0];
    int64_t n_elements = 1;
    for (int64_t d : p.shape) n_elements *= d;
    report.n_elements += static_cast<uint64_t>(n_elements);
    const int64_t n_rows = n_elements / ne0;
    const int64_t rows_per_chunk =
        std::min(n_rows, std::max<int64_t>(1, static_cast<int64_t>(options.chunk_bytes / sizeof(float)) / ne0));
    const uint64_t out_row = DTypeRowBytes(p.to, static_cast<uint64_t>(ne0));
    scratch.resize(static_cast<size_t>(rows_per_chunk * ne0));
    out_buf.resize(static_cast<size_t>(rows_per_chunk * out_row));
    for (int64_t r0 = 0; r0 < n_rows; r0 += rows_per_chunk) {
      const int64_t nr = std::min(rows_per_chunk, n_rows - r0);
      // Rows [r0, r0 + nr) split across workers; each fills and quantizes its own rows.
      auto work = [&](int64_t a, int64_t b) -> Status {
        if (a >= b) return Status::Ok();
        FillRows(config, src, rope_factors, ne0, r0 + a, b - a, scratch.data() + a * ne0);
        for (int64_t r = a; r < b; ++r) {
          FORMIGA_RETURN_IF_ERROR(QuantizeRow(p.to, scratch.data() + r * ne0, out_buf.data() + r * out_row, ne0));
        }
        return Status::Ok();
      };
      const int n_workers =
          static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, nr * ne0 / 65536)));
      FORMIGA_RETURN_IF_ERROR(RunRowsInParallel(nr, n_workers, work).WithContext(where + ": tensor " + p.name));
      FORMIGA_RETURN_IF_ERROR(w.WriteTensorData(out_buf.data(), static_cast<size_t>(nr * out_row)));
      prog.bytes_done += static_cast<uint64_t>(nr * out_row);
      if (progress) progress(prog);
    }
  }
  report.output_file_bytes = w.file_size();
  FORMIGA_RETURN_IF_ERROR(w.Finish());
  return report;
}

}  // namespace formiga
