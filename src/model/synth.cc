// SynthesizeModel: random-weight GGUF files of real architectures (see synth.h).
#include "model/synth.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/quant.h"
#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "model/gguf_metadata.h"
#include "model/quantize.h"
#include "model/parallel_rows.h"

namespace formiga {
namespace {

constexpr int32_t kTokenTypeUnused = 5;  // llama.cpp LLAMA_TOKEN_TYPE_UNUSED
constexpr float kWeightStd = 0.02f;

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// One row of weights: a sum of four 16-bit uniforms per element (mean 0,
// std 1 after scaling: Irwin-Hall with n=4 has variance 1/3), times `std`.
void FillRow(uint64_t seed, uint64_t tensor_index, uint64_t row, float std, float* x, int64_t n) {
  uint64_t s = SplitMix64(seed ^ SplitMix64(tensor_index * 0x100000001b3ull + row));
  const float scale = std * std::sqrt(3.0f) / 65536.0f;
  for (int64_t i = 0; i < n; ++i) {
    // xorshift64*: fast, and good enough for random weights.
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    const uint64_t r = s * 0x2545f4914f6cdd1dull;
    const uint32_t sum = static_cast<uint32_t>(r & 0xffff) + static_cast<uint32_t>((r >> 16) & 0xffff) +
                         static_cast<uint32_t>((r >> 32) & 0xffff) + static_cast<uint32_t>(r >> 48);
    x[i] = (static_cast<float>(sum) - 2.0f * 65535.0f) * scale;
  }
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Copies the donor's tokenizer.* keys, resized to `vocab` entries.
Status CopyTokenizer(const GgufFile& donor, int64_t vocab, GgufWriter& w) {
  const GgufValue* tokens = donor.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->type != GgufType::kArray || tokens->elem_type != GgufType::kString) {
    return Status::InvalidArgument(donor.path() + ": no tokenizer.ggml.tokens string array to copy the "
                                   "tokenizer from (pass --tokenizer-from MODEL.gguf)");
  }
  const int64_t donor_vocab = static_cast<int64_t>(tokens->size());
  std::unordered_set<std::string> kept;  // only needed when shrinking
  if (vocab < donor_vocab) {
    for (int64_t i = 0; i < vocab; ++i) kept.insert(std::string(tokens->StringAt(static_cast<size_t>(i))));
  }
  for (const auto& [key, value] : donor.metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    if (key == "tokenizer.ggml.tokens" || key == "tokenizer.ggml.token_type" || key == "tokenizer.ggml.scores") {
      if (value.type != GgufType::kArray || static_cast<int64_t>(value.size()) != donor_vocab) {
        return Status::Corruption(donor.path() + ": " + key + " does not have one entry per token");
      }
      GgufValue v = value;
      if (vocab < donor_vocab) {
        v.Truncate(static_cast<size_t>(vocab));
      } else {
        for (int64_t i = donor_vocab; i < vocab; ++i) {
          if (key == "tokenizer.ggml.tokens") {
            v.Append(GgufValue::String("<formiga_unused_" + std::to_string(i - donor_vocab) + ">"));
          } else if (key == "tokenizer.ggml.token_type") {
            v.Append(GgufValue::Int32(kTokenTypeUnused));
          } else {
            v.Append(GgufValue::Float32(0.0f));
          }
        }
      }
      w.Set(key, std::move(v));
    } else if (key == "tokenizer.ggml.merges" && vocab < donor_vocab && value.type == GgufType::kArray) {
      // NOTE: a merge "a b" needs a, b and their concatenation in the vocab.
      GgufValue v = GgufValue::Array(GgufType::kString);
      for (size_t k = 0; k < value.size(); ++k) {
        const std::string m(value.StringAt(k));
        const size_t sp = m.find(' ');
        if (sp == std::string::npos) continue;
        const std::string a = m.substr(0, sp), b = m.substr(sp + 1);
        if (kept.count(a) && kept.count(b) && kept.count(a + b)) v.AppendString(m);
      }
      w.Set(key, std::move(v));
    } else if (EndsWith(key, "_token_id")) {
      Result<int64_t> id = value.AsInt();
      if (id.ok() && *id >= 0 && *id < vocab) w.Set(key, value);
    } else {
      w.Set(key, value);
    }
  }
  return Status::Ok();
}

struct PlannedTensor {
  TensorSpec spec;
  DType type;
  int64_t rows;
  enum Fill { kRandom, kOnes, kZeros } fill;
};

}  // namespace

DType SynthTensorType(DType base, int64_t ne0) {
  DType t = base;
  if (ne0 % GetDTypeTraits(t).block_size != 0) {
    switch (base) {
      case DType::kQ2_K:
      case DType::kQ3_K: t = DType::kQ4_0; break;
      case DType::kQ4_K: t = DType::kQ5_0; break;
      case DType::kQ5_K: t = DType::kQ5_1; break;
      case DType::kQ6_K: t = DType::kQ8_0; break;
      default: t = DType::kF16; break;
    }
  }
  if (ne0 % GetDTypeTraits(t).block_size != 0) t = DType::kF16;
  return t;
}

Result<SynthReport> SynthesizeModel(const ModelConfig& config, const SynthOptions& options,
                                    const std::string& out_path,
                                    const std::function<void(const SynthProgress&)>& progress) {
  FORMIGA_RETURN_IF_ERROR(config.Validate());
  FORMIGA_ASSIGN_OR_RETURN(QuantizePreset preset, ParseQuantizePreset(options.type));
  if (options.tokenizer_from.empty()) {
    return Status::InvalidArgument("synth: no tokenizer donor GGUF given (--tokenizer-from MODEL.gguf)");
  }
  Result<GgufFile> donor = GgufFile::Open(options.tokenizer_from);
  if (!donor.ok()) return donor.status().WithContext("synth: tokenizer donor");

  GgufWriter w;
  w.SetString("general.architecture", ArchName(config.arch));
  w.SetString("general.type", "model");
  w.SetString("general.name", config.name.empty() ? std::string("formiga-synth") : config.name);
  w.SetString("general.description", "random weights generated by formiga synth (seed " +
                                         std::to_string(options.seed) + "); not a trained model");
  w.SetUint32("general.file_type", static_cast<uint32_t>(preset.file_type));
  w.SetUint32("general.quantization_version", 2);
  WriteArchMetadata(config, w);
  FORMIGA_RETURN_IF_ERROR(CopyTokenizer(*donor, config.vocab_size, w));

  // Plan every tensor's type and fill.
  std::vector<PlannedTensor> plan;
  SynthReport report;
  for (TensorSpec& spec : ModelTensors(config)) {
    PlannedTensor t{spec, DType::kF32, 1, PlannedTensor::kRandom};
    for (size_t d = 1; d < spec.shape.size(); ++d) t.rows *= spec.shape[d];
    if (spec.is_matrix) {
      DType base = preset.base_type;
      const bool is_output = spec.name == "output.weight" || (config.tied_embeddings && spec.name == "token_embd.weight");
      if (preset.mixed && is_output && GetDTypeTraits(base).block_size == 256) base = DType::kQ6_K;
      t.type = SynthTensorType(base, spec.shape[0]);
    } else {
      t.fill = EndsWith(spec.name, ".bias") ? PlannedTensor::kZeros : PlannedTensor::kOnes;
    }
    FORMIGA_RETURN_IF_ERROR(w.AddTensor(spec.name, spec.shape, t.type));
    report.n_params += t.rows * spec.shape[0];
    report.tensor_bytes += t.rows * DTypeRowBytes(t.type, static_cast<uint64_t>(spec.shape[0]));
    plan.push_back(std::move(t));
  }
  FORMIGA_RETURN_IF_ERROR(w.Begin(out_path));

  const int threads = options.threads > 0 ? options.threads
                                          : std::max(1u, std::thread::hardware_concurrency());
  SynthProgress prog;
  prog.bytes_total = report.tensor_bytes;
  std::vector<uint8_t> chunk;
  for (size_t ti = 0; ti < plan.size(); ++ti) {
    const PlannedTensor& t = plan[ti];
    const int64_t ne0 = t.spec.shape[0];
    const uint64_t row_bytes = DTypeRowBytes(t.type, static_cast<uint64_t>(ne0));
    const int64_t rows_per_chunk =
        std::max<int64_t>(1, static_cast<int64_t>(options.chunk_bytes / sizeof(float)) / ne0);
    prog.tensor = t.spec.name.c_str();
    for (int64_t r0 = 0; r0 < t.rows; r0 += rows_per_chunk) {
      const int64_t nr = std::min(rows_per_chunk, t.rows - r0);
      chunk.resize(static_cast<size_t>(nr * row_bytes));
      // Rows [r0, r0 + nr) split across workers; each writes its own rows.
      auto work = [&](int64_t a, int64_t b) -> Status {
        std::vector<float> row(static_cast<size_t>(ne0));
        for (int64_t r = a; r < b; ++r) {
          if (t.fill == PlannedTensor::kRandom) {
            FillRow(options.seed, ti, static_cast<uint64_t>(r0 + r), kWeightStd, row.data(), ne0);
          } else {
            std::fill(row.begin(), row.end(), t.fill == PlannedTensor::kOnes ? 1.0f : 0.0f);
          }
          FORMIGA_RETURN_IF_ERROR(QuantizeRow(t.type, row.data(), chunk.data() + r * row_bytes, ne0));
        }
        return Status::Ok();
      };
      const int n_workers = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, nr * ne0 / 65536)));
      FORMIGA_RETURN_IF_ERROR(RunRowsInParallel(nr, n_workers, work));
      FORMIGA_RETURN_IF_ERROR(w.WriteTensorData(chunk.data(), chunk.size()));
      prog.bytes_done += chunk.size();
      if (progress) progress(prog);
    }
  }
  report.file_bytes = w.file_size();
  FORMIGA_RETURN_IF_ERROR(w.Finish());
  return report;
}

}  // namespace formiga
