#pragma once
// Appends one JSON object per line to <run>/metrics.jsonl (open_clip's metric names).
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace pc {

class MetricsWriter {
 public:
  explicit MetricsWriter(const std::string& path);  // appends: a resumed run continues the file
  void write(const nlohmann::json& record);

 private:
  std::ofstream out_;
};

}  // namespace pc
