#include "planner/prices.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "planner/data_file.h"

namespace formiga::planner {

Result<PriceTable> PriceTable::Parse(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object() || !j.contains("options") || !j["options"].is_array()) {
    return Status::InvalidArgument(source + ": a price file is an object with an \"options\" array");
  }
  PriceTable t;
  t.source = source;
  t.brl_per_usd = j.value("brl_per_usd", 0.0);
  t.amortize_years = j.value("amortize_years", 3.0);
  for (const nlohmann::json& o : j["options"]) {
    if (!o.is_object() || !o.contains("devices")) {
      return Status::InvalidArgument(source + ": every price option needs \"devices\" (e.g. \"a100-80g:8\")");
    }
    PriceOption p;
    p.id = o.value("id", "");
    p.name = o.value("name", p.id);
    p.devices = o["devices"].get<std::string>();
    p.usd_per_hour = o.value("usd_per_hour", 0.0);
    p.purchase_usd = o.value("purchase_usd", 0.0);
    p.source = o.value("source", "");
    if (o.contains("spot_discount") && o["spot_discount"].is_array() && o["spot_discount"].size() == 2) {
      p.spot_discount_min = o["spot_discount"][0].get<double>();
      p.spot_discount_max = o["spot_discount"][1].get<double>();
    }
    t.options.push_back(std::move(p));
  }
  return t;
}

Result<PriceTable> PriceTable::Load(const std::string& path) {
  FORMIGA_ASSIGN_OR_RETURN(nlohmann::json j, ReadDataFile(path, "price file", "--prices"));
  return Parse(j, path);
}

std::string SetupDeviceKey(const HardwareSetup& hw) {
  std::string key;
  for (size_t i = 0; i < hw.accelerators.size();) {
    size_t j = i;
    while (j < hw.accelerators.size() && hw.accelerators[j].spec.id == hw.accelerators[i].spec.id) ++j;
    key += (key.empty() ? "" : "+") + hw.accelerators[i].spec.id + ":" + std::to_string(j - i);
    i = j;
  }
  return key;
}

Cost CostOf(const HardwareSetup& hw, const PriceTable& prices) {
  Cost c;
  const std::string key = SetupDeviceKey(hw);
  for (const PriceOption& o : prices.options) {
    if (o.devices != key) continue;
    c.option = o.id;
    c.known = true;
    if (o.usd_per_hour > 0) {
      c.usd_per_hour = o.usd_per_hour;
      c.spot_usd_per_hour_min = o.usd_per_hour * (1 - o.spot_discount_max);
      c.spot_usd_per_hour_max = o.usd_per_hour * (1 - o.spot_discount_min);
    } else if (o.purchase_usd > 0) {
      c.purchase_usd = o.purchase_usd;
      c.usd_per_hour = o.purchase_usd / (prices.amortize_years * 365 * 24);
    }
    return c;
  }
  // No option for this exact setup: the catalog's per-device figures.
  double hourly = 0, purchase = 0;
  bool all_hourly = !hw.accelerators.empty(), all_purchase = !hw.accelerators.empty();
  for (const DeviceSlot& s : hw.accelerators) {
    hourly += s.spec.usd_per_hour;
    purchase += s.spec.price_usd;
    all_hourly = all_hourly && s.spec.usd_per_hour > 0;
    all_purchase = all_purchase && s.spec.price_usd > 0;
  }
  if (all_hourly) {
    c.known = true;
    c.option = "catalog";
    c.usd_per_hour = hourly;
  } else if (all_purchase) {
    c.known = true;
    c.option = "catalog";
    c.purchase_usd = purchase;
    c.usd_per_hour = purchase / (prices.amortize_years * 365 * 24);
  }
  return c;
}

}  // namespace formiga::planner
