#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace formiga {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct DTypeInfo {
  SafetensorsDType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {SafetensorsDType::kF64, "F64", 8},     {SafetensorsDType::kF32, "F32", 4},
    {SafetensorsDType::kF16, "F16", 2},     {SafetensorsDType::kBF16, "BF16", 2},
    {SafetensorsDType::kI64, "I64", 8},     {SafetensorsDType::kI32, "I32", 4},
    {SafetensorsDType::kI16, "I16", 2},     {SafetensorsDType::kI8, "I8", 1},
    {SafetensorsDType::kU8, "U8", 1},       {SafetensorsDType::kBool, "BOOL", 1},
    {SafetensorsDType::kF8_E4M3, "F8_E4M3", 1}, {SafetensorsDType::kF8_E5M2, "F8_E5M2", 1},
};

Status Corrupt(const std::string& name, const std::string& problem) {
  return Status::Corruption(name + ": " + problem);
}

// Reads a JSON non-negative integer that fits uint64.
bool AsU64(const json& j, uint64_t* out) {
  if (!j.is_number_unsigned()) {
    if (j.is_number_integer() && j.get<int64_t>() >= 0) {
      *out = static_cast<uint64_t>(j.get<int64_t>());
      return true;
    }
    return false;
  }
  *out = j.get<uint64_t>();
  return true;
}

Status ParseTensor(const std::string& file, const std::string& name, const json& entry,
                   uint64_t data_size, SafetensorsTensor* t) {
  const std::string where = "tensor '" + name + "'";
  if (!entry.is_object()) return Corrupt(file, where + ": header entry is not an object");
  auto dtype_it = entry.find("dtype");
  auto shape_it = entry.find("shape");
  auto offs_it = entry.find("data_offsets");
  if (dtype_it == entry.end() || !dtype_it->is_string()) return Corrupt(file, where + ": missing string 'dtype'");
  if (shape_it == entry.end() || !shape_it->is_array()) return Corrupt(file, where + ": missing array 'shape'");
  if (offs_it == entry.end() || !offs_it->is_array() || offs_it->size() != 2) {
    return Corrupt(file, where + ": 'data_offsets' must be an array [begin, end]");
  }
  const std::string dtype_name = dtype_it->get<std::string>();
  std::optional<SafetensorsDType> dtype = ParseSafetensorsDType(dtype_name);
  if (!dtype) {
    return Status::Unsupported(file + ": " + where + ": dtype '" + dtype_name +
                               "' is not supported (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2)");
  }
  t->name = name;
  t->dtype = *dtype;
  uint64_t n = 1;
  for (const json& d : *shape_it) {
    uint64_t dim = 0;
    if (!AsU64(d, &dim) || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Corrupt(file, where + ": shape entries must be non-negative integers");
    }
    if (__builtin_mul_overflow(n, dim, &n) || n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Corrupt(file, where + ": element count overflows");
    }
    t->shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t begin = 0, end = 0, expected = 0;
  if (!AsU64((*offs_it)[0], &begin) || !AsU64((*offs_it)[1], &end) || begin > end) {
    return Corrupt(file, where + ": data_offsets must be non-negative integers with begin <= end");
  }
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(SafetensorsDTypeSize(*dtype)), &expected)) {
    return Corrupt(file, where + ": byte size overflows");
  }
  if (end - begin != expected) {
    return Corrupt(file, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                             ") hold " + std::to_string(end - begin) + " bytes but shape and dtype need " +
                             std::to_string(expected));
  }
  if (end > data_size) {
    return Corrupt(file, where + ": data [" + std::to_string(begin) + ", " + std::to_string(end) +
                             ") goes beyond the data section (" + std::to_string(data_size) +
                             " bytes); the file may be truncated");
  }
  t->offset = begin;
  t->nbytes = expected;
  return Status::Ok();
}

}  // namespace

const char* SafetensorsDTypeName(SafetensorsDType dtype) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

size_t SafetensorsDTypeSize(SafetensorsDType dtype) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 1;
}

std::optional<SafetensorsDType> ParseSafetensorsDType(std::string_view name) {
  for (const DTypeInfo& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  return std::nullopt;
}

int64_t SafetensorsTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  FORMIGA_ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::Open(path));
  FORMIGA_ASSIGN_OR_RETURN(SafetensorsFile file, Parse(mapped.data(), mapped.size(), path));
  file.file_ = std::move(mapped);  // the mapping address does not change on move
  return file;
}

Result<SafetensorsFile> SafetensorsFile::Parse(const uint8_t* data, size_t size, const std::string& name) {
  SafetensorsFile file;
  file.path_ = name;
  file.file_size_ = size;
  if (size < 8) return Corrupt(name, "file too small to be safetensors (" + std::to_string(size) + " bytes)");
  uint64_t n = 0;
  std::memcpy(&n, data, 8);  // little-endian host (see gguf.cc)
  if (n > kSafetensorsMaxHeader) {
    return Corrupt(name, "header length " + std::to_string(n) + " exceeds the limit of " +
                             std::to_string(kSafetensorsMaxHeader) + " bytes (not a safetensors file?)");
  }
  if (n > size - 8) {
    return Corrupt(name, "header length " + std::to_string(n) + " goes beyond the end of the file (" +
                             std::to_string(size) + " bytes); the file may be truncated");
  }
  if (n < 2 || data[8] != '{') return Corrupt(name, "header does not start with a JSON object '{'");
  file.header_size_ = n;
  json header;
  try {
    header = json::parse(data + 8, data + 8 + n);
  } catch (const json::exception& e) {
    return Corrupt(name, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) return Corrupt(name, "header is not a JSON object");
  const uint64_t data_size = size - 8 - n;
  const uint8_t* data_start = data + 8 + n;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return Corrupt(name, "__metadata__ is not an object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) return Corrupt(name, "__metadata__ value of '" + m.key() + "' is not a string");
        file.metadata_.emplace(m.key(), m->get<std::string>());
      }
      continue;
    }
    SafetensorsTensor t;
    FORMIGA_RETURN_IF_ERROR(ParseTensor(name, it.key(), *it, data_size, &t));
    t.data = data_start + t.offset;
    file.tensors_.push_back(std::move(t));
  }
  std::sort(file.tensors_.begin(), file.tensors_.end(), [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  // NOTE: empty tensors (a 0 in the shape) take no bytes and cannot overlap;
  // compare each non-empty tensor with the previous non-empty one.
  const SafetensorsTensor* prev = nullptr;
  for (const SafetensorsTensor& cur : file.tensors_) {
    if (cur.nbytes == 0) continue;
    if (prev != nullptr && prev->offset + prev->nbytes > cur.offset) {
      return Corrupt(name, "tensor '" + cur.name + "' data overlaps tensor '" + prev->name + "'");
    }
    prev = &cur;
  }
  for (size_t k = 0; k < file.tensors_.size(); ++k) file.index_.emplace(file.tensors_[k].name, k);
  return file;
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

// ---- sharded checkpoints ---------------------------------------------------

Result<SafetensorsCheckpoint> SafetensorsCheckpoint::Open(const std::string& dir_or_file) {
  SafetensorsCheckpoint ckpt;
  std::error_code ec;
  fs::path p(dir_or_file);
  fs::path index_path;
  if (fs::is_directory(p, ec)) {
    ckpt.dir_ = p.string();
    if (fs::exists(p / "model.safetensors.index.json", ec)) {
      index_path = p / "model.safetensors.index.json";
    } else if (fs::exists(p / "model.safetensors", ec)) {
      p = p / "model.safetensors";
    } else {
      return Status::NotFound(dir_or_file + ": no model.safetensors.index.json or model.safetensors in this directory");
    }
  } else if (!fs::exists(p, ec)) {
    return Status::NotFound(dir_or_file + ": no such file or directory (check the path)");
  } else {
    ckpt.dir_ = p.parent_path().string();
    if (p.extension() == ".json") index_path = p;
  }

  if (index_path.empty()) {
    FORMIGA_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open(p.string()));
    for (size_t k = 0; k < f.tensors().size(); ++k) ckpt.index_.emplace(f.tensors()[k].name, std::make_pair(size_t{0}, k));
    ckpt.shards_.push_back(std::move(f));
    return ckpt;
  }

  const std::string idx = index_path.string();
  std::ifstream in(idx, std::ios::binary);
  if (!in) return Status::IOError(idx + ": cannot read");
  std::ostringstream text;
  text << in.rdbuf();
  json index;
  try {
    index = json::parse(text.str());
  } catch (const json::exception& e) {
    return Corrupt(idx, std::string("not valid JSON: ") + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return Corrupt(idx, "missing the object 'weight_map'");
  }
  const json& weight_map = index["weight_map"];
  std::map<std::string, size_t> shard_ids;
  std::vector<std::pair<std::string, size_t>> wanted;  // tensor -> shard id
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    if (!it->is_string()) return Corrupt(idx, "weight_map entry '" + it.key() + "' is not a string");
    const std::string shard = it->get<std::string>();
    // NOTE: shard names come from a downloaded file; keep them inside the checkpoint directory.
    fs::path sp(shard);
    if (shard.empty() || sp.is_absolute() || shard.find("..") != std::string::npos) {
      return Corrupt(idx, "weight_map entry '" + it.key() + "' names the shard '" + shard +
                              "', which is not a file name inside the checkpoint directory");
    }
    auto [sid, inserted] = shard_ids.emplace(shard, shard_ids.size());
    wanted.emplace_back(it.key(), sid->second);
  }
  std::vector<std::string> shard_names(shard_ids.size());
  for (const auto& [shard, id] : shard_ids) shard_names[id] = shard;
  for (const std::string& shard : shard_names) {
    FORMIGA_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::Open((index_path.parent_path() / shard).string()));
    ckpt.shards_.push_back(std::move(f));
  }
  for (const auto& [tensor, sid] : wanted) {
    const SafetensorsFile& shard = ckpt.shards_[sid];
    const SafetensorsTensor* t = shard.Find(tensor);
    if (t == nullptr) {
      return Corrupt(idx, "tensor '" + tensor + "' is mapped to " + shard_names[sid] + ", which does not hold it");
    }
    ckpt.index_.emplace(tensor, std::make_pair(sid, static_cast<size_t>(t - shard.tensors().data())));
  }
  for (size_t s = 0; s < ckpt.shards_.size(); ++s) {
    for (const SafetensorsTensor& t : ckpt.shards_[s].tensors()) {
      auto it = ckpt.index_.find(t.name);
      if (it == ckpt.index_.end()) {
        return Corrupt(idx, "tensor '" + t.name + "' of shard " + shard_names[s] + " is missing from weight_map");
      }
      if (it->second.first != s) {
        return Corrupt(idx, "tensor '" + t.name + "' appears in both " + shard_names[s] + " and " +
                                shard_names[it->second.first]);
      }
    }
  }
  return ckpt;
}

const SafetensorsTensor* SafetensorsCheckpoint::Find(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  return &shards_[it->second.first].tensors()[it->second.second];
}

std::vector<std::string> SafetensorsCheckpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, loc] : index_) names.push_back(name);
  return names;
}

}  // namespace formiga
