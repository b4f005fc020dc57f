#include "planner/data_file.h"

#include <exception>
#include <fstream>

namespace formiga::planner {

Result<nlohmann::json> ReadDataFile(const std::string& path, const std::string& what, const std::string& flag) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("cannot open " + what + " " + path + " (pass " + flag + " FILE)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": not valid JSON: " + e.what());
  }
  return j;
}

}  // namespace formiga::planner
