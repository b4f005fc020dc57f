// Hardware the planner sizes for: a catalog of devices read from an editable
// JSON file (data/hardware.json, format in docs/planner.md), setups built
// from specs such as "a100-80g:4" or raw sizes, and this machine
// (--hardware local: /proc/meminfo, /proc/cpuinfo, nvidia-smi if present).
//
// Thread safety: plain values; DetectLocalHardware runs a subprocess.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"

namespace formiga::planner {

enum class DeviceKind { kCpu, kGpu, kUnified };  // unified: one memory for CPU and GPU (DGX Spark, Jetson)
const char* DeviceKindName(DeviceKind k);

struct DeviceSpec {
  std::string id;    // "a100-80g"
  std::string name;  // "NVIDIA A100 80 GB SXM"
  DeviceKind kind = DeviceKind::kGpu;
  uint64_t memory_bytes = 0;
  uint64_t reserved_bytes = 0;     // kept by driver / OS; never planned into
  double bandwidth_gbs = 0;        // peak memory bandwidth, GB/s
  double thread_bandwidth_gbs = 0; // CPU: what one thread can stream (caps few-core machines); 0 = no cap
  std::map<std::string, double> tflops;  // dense peak per type: "f32", "bf16", "f16", "int8"
  double price_usd = 0;            // purchase, 0 = unknown
  double usd_per_hour = 0;         // cloud on demand per device, 0 = unknown

  // Peak TFLOP/s for compute in `type` ("bf16", ...), falling back to f16 then f32.
  double Tflops(const std::string& type) const;
};

class HardwareCatalog {
 public:
  static Result<HardwareCatalog> Parse(const nlohmann::json& j, const std::string& source);
  static Result<HardwareCatalog> Load(const std::string& path);
  // NotFound listing the catalog's ids when `id` is unknown.
  Result<DeviceSpec> Find(const std::string& id) const;
  const std::vector<DeviceSpec>& devices() const { return devices_; }
  const std::string& source() const { return source_; }

 private:
  std::vector<DeviceSpec> devices_;
  std::string source_;
};

// One machine (or linked machines) to plan for: accelerators in placement
// order (cuda:0, cuda:1, ... or unified boxes) and the host CPU's RAM.
struct DeviceSlot {
  std::string label;  // "cuda:0", "spark:1", "cpu"
  DeviceSpec spec;
};
struct HardwareSetup {
  std::string description;             // "4x a100-80g + 256 GiB RAM"
  std::vector<DeviceSlot> accelerators;
  bool has_cpu = true;                 // false when the setup is only unified-memory boxes
  DeviceSlot cpu;                      // label "cpu"
  int cpu_threads = 0;                 // 0 = unknown
  std::string cpu_model;               // from /proc/cpuinfo for local
};

// "a100-80g", "a100-80g:4", "24GiB/1008" (memory / GB/s, a raw GPU),
// "cpu=256GiB" (host RAM). Several joined with '+': "a100-80g:4+cpu=256GiB".
Result<HardwareSetup> ParseHardwareSetup(const std::string& spec, const HardwareCatalog& catalog);
// Appends `count` devices named by `spec` (catalog id or raw MEM/BW) to `setup`.
Status AddAccelerators(const std::string& spec, const HardwareCatalog& catalog, HardwareSetup* setup);

// This machine: MemTotal/MemAvailable, CPU model and threads, and every GPU
// `nvidia-smi --query-gpu=name,memory.total` lists (bandwidth from the catalog
// when the name matches, else 0 = unknown). The CPU's bandwidth is the
// catalog's "cpu" figure unless `cpu_bandwidth_gbs` > 0.
Result<HardwareSetup> DetectLocalHardware(const HardwareCatalog& catalog, double cpu_bandwidth_gbs = 0);

// /proc/meminfo MemAvailable in bytes (0 when unreadable).
uint64_t MemAvailableBytes();

std::string DescribeSetup(const HardwareSetup& setup);

}  // namespace formiga::planner
