// The planner's editable data files (data/hardware.json, data/prices.json):
// reading one with errors that name the file and the flag that replaces it.
//
// Thread safety: pure function.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "core/status.h"

namespace formiga::planner {

// `what` names the file in messages ("hardware catalog"), `flag` the option
// that points elsewhere ("--catalog").
Result<nlohmann::json> ReadDataFile(const std::string& path, const std::string& what, const std::string& flag);

}  // namespace formiga::planner
