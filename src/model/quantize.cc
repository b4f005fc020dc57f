// Model quantization pipeline: plan (which type per tensor), then stream
// tensors through dequantize -> quantize into a GgufWriter.
#include "model/quantize.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <thread>

#include "core/quant.h"
#include "formats/gguf_writer.h"
#include "model/parallel_rows.h"

namespace formiga {
namespace {

// NOTE: general.quantization_version is ggml's GGML_QNT_VERSION; llama.cpp
// writes it on every quantized file and refuses files with another value.
constexpr uint32_t kGgmlQuantizationVersion = 2;

bool Contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers, and
// every third layer in between, get the higher-precision type in _M mixes.
bool UseMoreBits(int i_layer, int n_layers) {
  return i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2;
}

// Whether a tensor is quantized at all (llama.cpp's llama_model_quantize_impl
// filter): 2-D+ weights, except norms, MoE routers, position/token-type
// embeddings and convolution/recurrent-state kernels, which are small and
// precision-sensitive. Everything else is copied unchanged.
bool IsQuantizable(const TensorQuantPlan& t) {
  const std::string_view name = t.name;
  if (!EndsWith(name, "weight") || t.shape.size() < 2) return false;
  for (std::string_view keep : {"_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d.weight",
                                "shortconv.conv.weight", "time_mix_first.weight", "time_mix_w0.weight",
                                "time_mix_w1.weight", "time_mix_w2.weight", "time_mix_v0.weight",
                                "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
                                "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
                                "time_mix_g2.weight", "time_mix_decay_w1.weight",
                                "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
                                "attn_rel_b.weight"}) {
    if (Contains(name, keep)) return false;
  }
  return name != "position_embd.weight" && name != "token_types.weight";
}

// Counters the rules need, in file order (llama.cpp's quantize_state_impl).
struct MixState {
  std::string arch;
  bool has_output = false;
  int64_t n_head = 0, n_head_kv = 0;
  int n_attention_wv = 0, i_attention_wv = 0;
  int n_ffn_down = 0, i_ffn_down = 0;
};

// The mix table (a faithful subset of llama.cpp's llama_tensor_get_type for
// the presets formiga offers; IQ/MoE-specific rules are left out):
//
//   tensor                      q2_k   q3_k_m          q4_k_m          q5_k_m          legacy/q6_k
//   output.weight (or the
//     tied token_embd)          Q6_K   Q6_K            Q6_K            Q6_K            Q6_K (q8_0 stays Q8_0)
//   attn_v.weight               Q3_K*  Q5_K first 2,   Q6_K if         Q6_K if         base
//                                      else Q4_K       use_more_bits   use_more_bits
//   ffn_down                    Q3_K   Q5_K first n/16 Q6_K if         Q6_K if         base
//                                      else Q4_K       use_more_bits   use_more_bits
//   attn_output.weight          Q3_K   Q4_K            base            base            base
//   attn_qkv.weight             base   Q4_K            Q5_K            Q6_K            base
//   other 2-D weights           Q2_K   Q3_K            Q4_K            Q5_K            base
//   (*) Q4_K when n_head / n_head_kv >= 4 (grouped-query attention).
//   Falcon: output -> Q8_0; q4_k_m ffn_down Q6_K first n/16, Q5_K use_more_bits, else Q4_K.
//
// Then, if ne[0] is not a multiple of the chosen type's block size:
//   Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0 (llama.cpp
//   now uses IQ4_NL, which formiga does not implement; Q4_0 has the same 4.5
//   bits per weight and was llama.cpp's earlier choice), any 32-block type -> F16.
DType MixedType(const TensorQuantPlan& t, const QuantizePreset& p, MixState& s, bool* fallback) {
  const std::string& name = t.name;
  const LlamaFileType ft = p.file_type;
  DType type = p.base_type;
  const bool falcon = s.arch == "falcon";
  if (name == "output.weight" || (!s.has_output && name == "token_embd.weight")) {
    if (falcon || t.shape[0] % kQK_K != 0) {
      type = DType::kQ8_0;
    } else if (type != DType::kQ8_0) {
      type = DType::kQ6_K;
    }
  } else if (Contains(name, "attn_v.weight")) {
    const bool gqa4 = s.n_head_kv > 0 && s.n_head / s.n_head_kv >= 4;
    if (ft == LlamaFileType::kMostlyQ2_K) {
      type = gqa4 ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == LlamaFileType::kMostlyQ3_K_M) {
      type = s.i_attention_wv < 2 ? DType::kQ5_K : DType::kQ4_K;
    } else if ((ft == LlamaFileType::kMostlyQ4_K_M || ft == LlamaFileType::kMostlyQ5_K_M) &&
               UseMoreBits(s.i_attention_wv, s.n_attention_wv)) {
      type = DType::kQ6_K;
    }
    ++s.i_attention_wv;
  } else if (Contains(name, "ffn_down")) {
    const int i = s.i_ffn_down, n = s.n_ffn_down;
    if (ft == LlamaFileType::kMostlyQ2_K) {
      type = DType::kQ3_K;
    } else if (ft == LlamaFileType::kMostlyQ3_K_M) {
      type = i < n / 16 ? DType::kQ5_K : (!falcon || UseMoreBits(i, n)) ? DType::kQ4_K : DType::kQ3_K;
    } else if (ft == LlamaFileType::kMostlyQ4_K_M) {
      if (falcon) {
        type = i < n / 16 ? DType::kQ6_K : UseMoreBits(i, n) ? DType::kQ5_K : DType::kQ4_K;
      } else if (UseMoreBits(i, n)) {
        type = DType::kQ6_K;
      }
    } else if (ft == LlamaFileType::kMostlyQ5_K_M && UseMoreBits(i, n)) {
      type = DType::kQ6_K;
    }
    ++s.i_ffn_down;
  } else if (Contains(name, "attn_output.weight")) {
    if (!falcon) {
      if (ft == LlamaFileType::kMostlyQ2_K) type = DType::kQ3_K;
      if (ft == LlamaFileType::kMostlyQ3_K_M) type = DType::kQ4_K;
    }
  } else if (Contains(name, "attn_qkv.weight")) {
    if (ft == LlamaFileType::kMostlyQ3_K_M) type = DType::kQ4_K;
    if (ft == LlamaFileType::kMostlyQ4_K_M) type = DType::kQ5_K;
    if (ft == LlamaFileType::kMostlyQ5_K_M) type = DType::kQ6_K;
  }

  const int64_t ne0 = t.shape[0];
  if (ne0 % GetDTypeTraits(type).block_size != 0) {
    *fallback = true;
    switch (type) {
      case DType::kQ2_K:
      case DType::kQ3_K: type = DType::kQ4_0; break;
      case DType::kQ4_K: type = DType::kQ5_0; break;
      case DType::kQ5_K: type = DType::kQ5_1; break;
      case DType::kQ6_K: type = DType::kQ8_0; break;
      default: break;
    }
    if (ne0 % GetDTypeTraits(type).block_size != 0) type = DType::kF16;
  }
  return type;
}

}  // namespace

const std::vector<QuantizePreset>& QuantizePresets() {
  static const std::vector<QuantizePreset> kPresets = {
      {"q8_0", DType::kQ8_0, LlamaFileType::kMostlyQ8_0, true},
      {"q6_k", DType::kQ6_K, LlamaFileType::kMostlyQ6_K, true},
      {"q5_k_m", DType::kQ5_K, LlamaFileType::kMostlyQ5_K_M, true},
      {"q5_1", DType::kQ5_1, LlamaFileType::kMostlyQ5_1, true},
      {"q5_0", DType::kQ5_0, LlamaFileType::kMostlyQ5_0, true},
      {"q4_k_m", DType::kQ4_K, LlamaFileType::kMostlyQ4_K_M, true},
      {"q4_1", DType::kQ4_1, LlamaFileType::kMostlyQ4_1, true},
      {"q4_0", DType::kQ4_0, LlamaFileType::kMostlyQ4_0, true},
      {"q3_k_m", DType::kQ3_K, LlamaFileType::kMostlyQ3_K_M, true},
      {"q2_k", DType::kQ2_K, LlamaFileType::kMostlyQ2_K, true},
      {"f16", DType::kF16, LlamaFileType::kMostlyF16, false},
      {"bf16", DType::kBF16, LlamaFileType::kMostlyBF16, false},
      {"f32", DType::kF32, LlamaFileType::kAllF32, false},
  };
  return kPresets;
}

Result<QuantizePreset> ParseQuantizePreset(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string names;
  for (const QuantizePreset& p : QuantizePresets()) {
    if (p.name == lower) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  return Status::InvalidArgument("unknown quantization type '" + std::string(name) + "' (choose one of: " +
                                 names + ")");
}

Result<std::vector<TensorQuantPlan>> PlanQuantization(std::vector<TensorQuantPlan> tensors, std::string_view arch,
                                                      int64_t n_head, int64_t n_head_kv,
                                                      const QuantizePreset& preset) {
  MixState s;
  s.arch = std::string(arch);
  s.n_head = n_head;
  s.n_head_kv = n_head_kv;
  for (const TensorQuantPlan& t : tensors) {
    s.has_output = s.has_output || t.name == "output.weight";
    if (Contains(t.name, "attn_v.weight") || Contains(t.name, "attn_qkv.weight")) ++s.n_attention_wv;
    if (Contains(t.name, "ffn_down")) ++s.n_ffn_down;
  }
  if (s.n_head_kv == 0) s.n_head_kv = s.n_head;

  for (TensorQuantPlan& p : tensors) {
    p.to = p.from;
    p.quantized = false;
    p.fallback = false;
    if (IsQuantizable(p)) {
      p.quantized = true;
      if (preset.mixed) {
        p.to = MixedType(p, preset, s, &p.fallback);
      } else {
        p.to = preset.base_type;
      }
      if (p.to != p.from && (!IsQuantizeSupported(p.from) || !IsQuantizeSupported(p.to))) {
        return Status::Unsupported("tensor '" + p.name + "' of type " + DTypeName(p.from) +
                                   " cannot be converted to " + DTypeName(p.to) +
                                   ": formiga has no dequantizer for " + DTypeName(p.from));
      }
    }
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    p.out_bytes = DTypeRowBytes(p.to, static_cast<uint64_t>(n));
  }
  return tensors;
}

Result<std::vector<TensorQuantPlan>> PlanQuantization(const GgufFile& in, const QuantizePreset& preset) {
  const std::string arch = in.architecture();
  int64_t n_head = 0, n_head_kv = 0;
  if (!arch.empty()) {
    if (auto r = in.GetInt(arch + ".attention.head_count"); r.ok()) n_head = *r;
    if (auto r = in.GetInt(arch + ".attention.head_count_kv"); r.ok()) n_head_kv = *r;
  }
  std::vector<TensorQuantPlan> tensors;
  tensors.reserve(in.tensors().size());
  for (const GgufTensorInfo& t : in.tensors()) {
    TensorQuantPlan p;
    p.name = t.name;
    p.shape = t.shape;
    p.from = t.type;
    tensors.push_back(std::move(p));
  }
  return PlanQuantization(std::move(tensors), arch, n_head, n_head_kv, preset);
}

namespace {

// Converts `n_rows` rows of `ne0` elements from `from` to `to` with `threads`
// workers, each on its own contiguous range of rows. `scratch` holds
// n_rows * ne0 floats.
Status ConvertRows(const uint8_t* src, DType from, uint8_t* dst, DType to, int64_t ne0, int64_t n_rows,
                   float* scratch, int threads) {
  const uint64_t in_row = DTypeRowBytes(from, ne0);
  const uint64_t out_row = DTypeRowBytes(to, ne0);
  auto work = [&](int64_t r0, int64_t r1) -> Status {
    for (int64_t r = r0; r < r1; ++r) {
      float* f = scratch + r * ne0;
      FORMIGA_RETURN_IF_ERROR(DequantizeRow(from, src + r * in_row, f, ne0));
      FORMIGA_RETURN_IF_ERROR(QuantizeRow(to, f, dst + r * out_row, ne0));
    }
    return Status::Ok();
  };
  return RunRowsInParallel(n_rows, static_cast<int>(std::min<int64_t>(threads, n_rows)), work);
}

}  // namespace

Result<QuantizeReport> QuantizeModel(const std::string& in_path, const std::string& out_path,
                                     const QuantizeOptions& options, const QuantizeProgressFn& progress) {
  FORMIGA_ASSIGN_OR_RETURN(QuantizePreset preset, ParseQuantizePreset(options.preset));
  if (in_path == out_path) {
    return Status::InvalidArgument("quantize: input and output are the same file (" + in_path +
                                   "); choose another output path");
  }
  FORMIGA_ASSIGN_OR_RETURN(GgufFile in, GgufFile::Open(in_path));
  FORMIGA_ASSIGN_OR_RETURN(std::vector<TensorQuantPlan> plans, PlanQuantization(in, preset));

  QuantizeReport report;
  GgufWriter writer(static_cast<uint32_t>(in.alignment()));
  for (const auto& [key, value] : in.metadata()) writer.Set(key, value);
  writer.SetUint32("general.file_type", static_cast<uint32_t>(preset.file_type));
  writer.SetUint32("general.quantization_version", kGgmlQuantizationVersion);
  writer.SetString("general.quantized_by", "formiga");
  for (const TensorQuantPlan& p : plans) {
    FORMIGA_RETURN_IF_ERROR(writer.AddTensor(p.name, p.shape, p.to).WithContext("quantize: " + out_path));
    report.output_tensor_bytes += p.out_bytes;
  }
  FORMIGA_RETURN_IF_ERROR(writer.Begin(out_path));

  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  std::vector<float> scratch;
  std::vector<uint8_t> out_buf;
  QuantizeProgress prog;
  prog.n_tensors = plans.size();
  prog.bytes_total = report.output_tensor_bytes;
  for (size_t ti = 0; ti < plans.size(); ++ti) {
    const TensorQuantPlan& p = plans[ti];
    const GgufTensorInfo& t = in.tensors()[ti];
    prog.tensor_index = ti;
    prog.tensor = &p;
    report.n_elements += static_cast<uint64_t>(t.n_elements());
    report.input_tensor_bytes += t.nbytes;
    report.type_counts[p.to]++;
    report.n_fallback += p.fallback ? 1 : 0;
    if (p.from == p.to) {
      // Same type: copy the bytes (exact; no requantization loss).
      FORMIGA_RETURN_IF_ERROR(writer.WriteTensorData(t.data, t.nbytes));
      prog.bytes_done += t.nbytes;
      if (progress) progress(prog);
      continue;
    }
    if (GetDTypeTraits(p.from).quantized) ++report.n_requantized;
    const int64_t ne0 = t.shape[0];
    const int64_t n_rows = t.n_elements() / ne0;
    const int64_t rows_per_chunk =
        std::max<int64_t>(1, static_cast<int64_t>(options.chunk_bytes / sizeof(float)) / ne0);
    scratch.resize(static_cast<size_t>(std::min(rows_per_chunk, n_rows) * ne0));
    out_buf.resize(DTypeRowBytes(p.to, static_cast<uint64_t>(std::min(rows_per_chunk, n_rows) * ne0)));
    const uint64_t in_row = DTypeRowBytes(p.from, ne0);
    const uint64_t out_row = DTypeRowBytes(p.to, ne0);
    for (int64_t r = 0; r < n_rows; r += rows_per_chunk) {
      const int64_t rows = std::min(rows_per_chunk, n_rows - r);
      FORMIGA_RETURN_IF_ERROR(ConvertRows(t.data + r * in_row, p.from, out_buf.data(), p.to, ne0, rows,
                                          scratch.data(), threads)
                                  .WithContext("quantize: tensor '" + p.name + "'"));
      FORMIGA_RETURN_IF_ERROR(writer.WriteTensorData(out_buf.data(), rows * out_row));
      prog.bytes_done += rows * out_row;
      if (progress) progress(prog);
    }
  }
  FORMIGA_RETURN_IF_ERROR(writer.Finish());
  report.output_file_bytes = writer.file_size();
  report.tensors = std::move(plans);
  return report;
}

}  // namespace formiga
