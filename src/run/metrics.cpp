#include "pyramidclip/run/metrics.h"

#include "pyramidclip/util/errors.h"

namespace pc {

MetricsWriter::MetricsWriter(const std::string& path) : out_(path, std::ios::app) {
  require(out_.good(), "cannot open metrics file " + path + " for writing: check the run directory's permissions");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << '\n';
  out_.flush();
}

}  // namespace pc
