#include "planner/hardware.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "planner/data_file.h"
#include "planner/units.h"

namespace formiga::planner {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string AlnumLower(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string Trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

Result<DeviceSpec> ParseDevice(const nlohmann::json& d, const std::string& where) {
  DeviceSpec s;
  if (!d.is_object() || !d.contains("id") || !d["id"].is_string()) {
    return Status::InvalidArgument(where + ": every device needs a string \"id\"");
  }
  s.id = d["id"].get<std::string>();
  s.name = d.value("name", s.id);
  const std::string kind = d.value("kind", "gpu");
  if (kind == "cpu") s.kind = DeviceKind::kCpu;
  else if (kind == "gpu") s.kind = DeviceKind::kGpu;
  else if (kind == "unified") s.kind = DeviceKind::kUnified;
  else return Status::InvalidArgument(where + ": device " + s.id + ": kind must be cpu, gpu or unified, not " + kind);
  if (!d.contains("memory") || !d["memory"].is_string()) {
    return Status::InvalidArgument(where + ": device " + s.id + " needs \"memory\" as a string such as \"80GiB\"");
  }
  FORMIGA_ASSIGN_OR_RETURN(s.memory_bytes, ParseBytes(d["memory"].get<std::string>()));
  if (d.contains("reserved")) {
    FORMIGA_ASSIGN_OR_RETURN(s.reserved_bytes, ParseBytes(d["reserved"].get<std::string>()));
  }
  s.bandwidth_gbs = d.value("bandwidth_gbs", 0.0);
  s.thread_bandwidth_gbs = d.value("thread_bandwidth_gbs", 0.0);
  if (d.contains("tflops") && d["tflops"].is_object()) {
    for (auto& [k, v] : d["tflops"].items()) s.tflops[k] = v.get<double>();
  }
  s.price_usd = d.value("price_usd", 0.0);
  s.usd_per_hour = d.value("usd_per_hour", 0.0);
  return s;
}

// "24GiB/1008": a raw accelerator of that memory and bandwidth (GB/s).
Result<DeviceSpec> RawDevice(const std::string& spec) {
  const size_t slash = spec.find('/');
  DeviceSpec s;
  s.id = spec;
  s.name = "custom GPU " + spec;
  s.kind = DeviceKind::kGpu;
  FORMIGA_ASSIGN_OR_RETURN(s.memory_bytes, ParseBytes(spec.substr(0, slash)));
  if (slash != std::string::npos) {
    try {
      s.bandwidth_gbs = std::stod(spec.substr(slash + 1));
    } catch (...) {
      return Status::InvalidArgument("'" + spec + "': the part after '/' must be the bandwidth in GB/s");
    }
  }
  s.reserved_bytes = 512 * kMiB;
  return s;
}

}  // namespace

const char* DeviceKindName(DeviceKind k) {
  switch (k) {
    case DeviceKind::kCpu: return "cpu";
    case DeviceKind::kGpu: return "gpu";
    case DeviceKind::kUnified: return "unified";
  }
  return "gpu";
}

double DeviceSpec::Tflops(const std::string& type) const {
  for (const std::string& t : {type, std::string("f16"), std::string("bf16"), std::string("f32")}) {
    auto it = tflops.find(t);
    if (it != tflops.end() && it->second > 0) return it->second;
  }
  return 0;
}

Result<HardwareCatalog> HardwareCatalog::Parse(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("devices") || !j["devices"].is_array()) {
    return Status::InvalidArgument(source + ": a hardware catalog is an object with a \"devices\" array");
  }
  HardwareCatalog c;
  c.source_ = source;
  for (const nlohmann::json& d : j["devices"]) {
    FORMIGA_ASSIGN_OR_RETURN(DeviceSpec s, ParseDevice(d, source));
    c.devices_.push_back(std::move(s));
  }
  return c;
}

Result<HardwareCatalog> HardwareCatalog::Load(const std::string& path) {
  FORMIGA_ASSIGN_OR_RETURN(nlohmann::json j, ReadDataFile(path, "hardware catalog", "--catalog"));
  return Parse(j, path);
}

Result<DeviceSpec> HardwareCatalog::Find(const std::string& id) const {
  const std::string want = Lower(id);
  for (const DeviceSpec& d : devices_) {
    if (Lower(d.id) == want) return d;
  }
  std::string ids;
  for (const DeviceSpec& d : devices_) ids += (ids.empty() ? "" : ", ") + d.id;
  return Status::NotFound("no device '" + id + "' in " + source_ + " (devices: " + ids +
                          "; or give a raw GPU as MEMORY/BANDWIDTH_GBS, e.g. 24GiB/1008)");
}

Status AddAccelerators(const std::string& spec_in, const HardwareCatalog& catalog, HardwareSetup* setup) {
  std::string spec = Trim(spec_in);
  int count = 1;
  const size_t colon = spec.rfind(':');
  if (colon != std::string::npos) {
    try {
      size_t used = 0;
      count = std::stoi(spec.substr(colon + 1), &used);
      if (used != spec.size() - colon - 1) throw 0;
    } catch (...) {
      return Status::InvalidArgument("'" + spec + "': the count after ':' must be a number (e.g. a100-80g:4)");
    }
    if (count <= 0 || count > 4096) return Status::InvalidArgument("'" + spec + "': the device count must be 1..4096");
    spec = spec.substr(0, colon);
  }
  DeviceSpec dev;
  if (auto found = catalog.Find(spec); found.ok()) {
    dev = *found;
  } else if (!spec.empty() && std::isdigit(static_cast<unsigned char>(spec[0]))) {
    FORMIGA_ASSIGN_OR_RETURN(dev, RawDevice(spec));
  } else {
    return found.status();
  }
  if (dev.kind == DeviceKind::kCpu) {
    setup->cpu.spec = dev;
    setup->has_cpu = true;
    return Status::Ok();
  }
  int next = 0;
  for (const DeviceSlot& s : setup->accelerators) next += (s.spec.kind == dev.kind) ? 1 : 0;
  for (int i = 0; i < count; ++i) {
    const std::string prefix = dev.kind == DeviceKind::kUnified ? dev.id : std::string("cuda");
    setup->accelerators.push_back(DeviceSlot{prefix + ":" + std::to_string(next + i), dev});
  }
  return Status::Ok();
}

Result<HardwareSetup> ParseHardwareSetup(const std::string& spec, const HardwareCatalog& catalog) {
  HardwareSetup setup;
  setup.cpu.label = "cpu";
  FORMIGA_ASSIGN_OR_RETURN(setup.cpu.spec, catalog.Find("cpu"));
  setup.cpu.spec.memory_bytes = 0;  // no host RAM unless cpu=SIZE says so
  setup.has_cpu = false;
  std::stringstream ss(spec);
  std::string part;
  while (std::getline(ss, part, '+')) {
    part = Trim(part);
    if (part.empty()) continue;
    if (Lower(part).rfind("cpu=", 0) == 0) {
      FORMIGA_ASSIGN_OR_RETURN(setup.cpu.spec.memory_bytes, ParseBytes(part.substr(4)));
      setup.has_cpu = true;
      continue;
    }
    FORMIGA_RETURN_IF_ERROR(AddAccelerators(part, catalog, &setup));
  }
  if (setup.accelerators.empty() && !setup.has_cpu) {
    return Status::InvalidArgument("hardware '" + spec + "' names no device");
  }
  setup.description = DescribeSetup(setup);
  return setup;
}

uint64_t MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value = 0;
  std::string unit;
  while (in >> key >> value) {
    std::getline(in, unit);
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

Result<HardwareSetup> DetectLocalHardware(const HardwareCatalog& catalog, double cpu_bandwidth_gbs) {
  HardwareSetup setup;
  setup.cpu.label = "cpu";
  FORMIGA_ASSIGN_OR_RETURN(setup.cpu.spec, catalog.Find("cpu"));
  setup.has_cpu = true;
  {
    std::ifstream in("/proc/meminfo");
    std::string key, unit;
    uint64_t value = 0;
    while (in >> key >> value) {
      std::getline(in, unit);
      if (key == "MemTotal:") setup.cpu.spec.memory_bytes = value * 1024;
    }
  }
  if (setup.cpu.spec.memory_bytes == 0) return Status::Unsupported("cannot read /proc/meminfo: give --cpu-ram SIZE");
  setup.cpu_threads = static_cast<int>(std::thread::hardware_concurrency());
  double mhz = 0;
  bool fma = false, avx2 = false, avx512 = false;
  {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      const size_t c = line.find(':');
      if (c == std::string::npos) continue;
      const std::string k = Trim(line.substr(0, c)), v = Trim(line.substr(c + 1));
      if (k == "model name" && setup.cpu_model.empty()) setup.cpu_model = v;
      if (k == "cpu MHz" && mhz == 0) mhz = std::atof(v.c_str());
      if (k == "flags" && !fma) {
        std::string padded = " " + v + " ";
        fma = padded.find(" fma ") != std::string::npos;
        avx2 = padded.find(" avx2 ") != std::string::npos;
        avx512 = padded.find(" avx512f ") != std::string::npos;
      }
    }
  }
  setup.cpu.spec.id = "cpu";
  setup.cpu.spec.name = setup.cpu_model.empty() ? "this machine's CPU" : setup.cpu_model;
  if (cpu_bandwidth_gbs > 0) {
    setup.cpu.spec.bandwidth_gbs = cpu_bandwidth_gbs;
  } else if (setup.cpu.spec.thread_bandwidth_gbs > 0 && setup.cpu_threads > 0) {
    // NOTE: a few cores cannot saturate the memory bus: the engine streams
    // about thread_bandwidth_gbs per thread (calibrated, docs/planner.md).
    setup.cpu.spec.bandwidth_gbs =
        std::min(setup.cpu.spec.bandwidth_gbs, setup.cpu.spec.thread_bandwidth_gbs * setup.cpu_threads);
  }
  // NOTE: peak f32 FLOP/s = threads x GHz x (FMA lanes x 2 units x 2): 32
  // per cycle with AVX2+FMA, 64 with AVX-512, 8 for SSE. Hyper-threads share
  // the units; threads are what the engine uses, the calibrated prefill
  // efficiency absorbs the difference.
  if (mhz > 0 && setup.cpu_threads > 0) {
    const double per_cycle = avx512 ? 64 : (avx2 && fma) ? 32 : 8;
    const double tf = setup.cpu_threads * mhz * 1e6 * per_cycle / 1e12;
    setup.cpu.spec.tflops = {{"f32", tf}, {"f16", tf}, {"bf16", tf}, {"int8", tf}};
  }
  // GPUs: nvidia-smi, if installed (no CUDA linking in the planner).
  if (FILE* p = popen("nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits 2>/dev/null", "r")) {
    char buf[512];
    int idx = 0;
    while (std::fgets(buf, sizeof buf, p) != nullptr) {
      std::string line = Trim(buf);
      const size_t comma = line.rfind(',');
      if (comma == std::string::npos) continue;
      DeviceSpec g;
      g.name = Trim(line.substr(0, comma));
      g.kind = DeviceKind::kGpu;
      g.memory_bytes = static_cast<uint64_t>(std::atof(line.substr(comma + 1).c_str())) * kMiB;
      g.reserved_bytes = 512 * kMiB;
      g.id = "local-gpu";
      // Speeds from the catalog entry whose id's model part ("h100" of
      // h100-sxm, "rtx4090") this GPU's name contains (letters and digits
      // only) and whose memory is within 10 %; unknown speeds stay 0.
      const std::string lname = AlnumLower(g.name);
      for (const DeviceSpec& d : catalog.devices()) {
        if (d.kind != DeviceKind::kGpu) continue;
        const std::string key = AlnumLower(d.id.substr(0, d.id.find('-')));
        const double ratio = static_cast<double>(g.memory_bytes) / static_cast<double>(std::max<uint64_t>(d.memory_bytes, 1));
        if (!key.empty() && lname.find(key) != std::string::npos && ratio > 0.9 && ratio < 1.1) {
          g.id = d.id;
          g.bandwidth_gbs = d.bandwidth_gbs;
          g.tflops = d.tflops;
          g.usd_per_hour = d.usd_per_hour;
          break;
        }
      }
      setup.accelerators.push_back(DeviceSlot{"cuda:" + std::to_string(idx++), g});
    }
    pclose(p);
  }
  setup.description = "this machine: " + DescribeSetup(setup);
  return setup;
}

std::string DescribeSetup(const HardwareSetup& setup) {
  std::string out;
  // Group equal consecutive accelerators: "4x a100-80g".
  for (size_t i = 0; i < setup.accelerators.size();) {
    size_t j = i;
    while (j < setup.accelerators.size() && setup.accelerators[j].spec.id == setup.accelerators[i].spec.id &&
           setup.accelerators[j].spec.memory_bytes == setup.accelerators[i].spec.memory_bytes) {
      ++j;
    }
    if (!out.empty()) out += " + ";
    out += std::to_string(j - i) + "x " +
           (setup.accelerators[i].spec.id == "local-gpu" ? setup.accelerators[i].spec.name : setup.accelerators[i].spec.id);
    i = j;
  }
  if (setup.has_cpu && setup.cpu.spec.memory_bytes > 0) {
    if (!out.empty()) out += " + ";
    out += FormatBytes(setup.cpu.spec.memory_bytes) + " RAM";
  }
  return out;
}

}  // namespace formiga::planner
