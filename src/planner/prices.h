// Prices from an editable JSON file (data/prices.json: seed 003's figures to
// start; format in docs/planner.md): the cost of a hardware setup per hour
// (cloud on demand, or purchase amortized) and per million generated tokens.
//
// Thread safety: plain values.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/status.h"
#include "planner/hardware.h"

namespace formiga::planner {

struct PriceOption {
  std::string id, name;
  std::string devices;          // "a100-80g:8"
  double usd_per_hour = 0;      // on demand, whole option
  double spot_discount_min = 0, spot_discount_max = 0;
  double purchase_usd = 0;
  std::string source;
};

struct PriceTable {
  double brl_per_usd = 0;
  double amortize_years = 3;
  std::vector<PriceOption> options;
  std::string source;

  static Result<PriceTable> Parse(const nlohmann::json& j, const std::string& source);
  static Result<PriceTable> Load(const std::string& path);
};

struct Cost {
  std::string option;       // price option id, or "catalog" when summed from device prices
  double usd_per_hour = 0;  // on demand, or amortized purchase
  double spot_usd_per_hour_min = 0, spot_usd_per_hour_max = 0;
  double purchase_usd = 0;
  bool known = false;
};

// The setup's accelerators as "id:count" groups, e.g. "a100-80g:4".
std::string SetupDeviceKey(const HardwareSetup& hw);
Cost CostOf(const HardwareSetup& hw, const PriceTable& prices);

}  // namespace formiga::planner
