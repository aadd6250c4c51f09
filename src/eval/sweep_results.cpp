// The sweep's summary: results.csv and one SVG per headline metric, rebuilt from every cached
// result JSON (so shards and restarts all contribute, and the table always matches the files).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "pyramidclip/eval/svg_plot.h"
#include "pyramidclip/eval/sweep.h"
#include "pyramidclip/util/fs_sync.h"

namespace fs = std::filesystem;

namespace pc {
namespace {

const char* const kFixedColumns[] = {"step", "samples_seen", "task", "kind"};

std::string metric_title(const std::string& m) {
  static const std::map<std::string, std::string> names = {
      {"top1", "zero-shot top-1 accuracy"},   {"top5", "zero-shot top-5 accuracy"},
      {"i2t_r1", "image->text recall@1"},     {"i2t_r5", "image->text recall@5"},
      {"i2t_r10", "image->text recall@10"},   {"t2i_r1", "text->image recall@1"},
      {"t2i_r5", "text->image recall@5"},     {"t2i_r10", "text->image recall@10"},
      {"mean_recall", "mean retrieval recall"}};
  auto it = names.find(m);
  return it == names.end() ? m : it->second;
}

// Scalar metric columns: the headline metrics in display order, then the other numbers sorted.
std::vector<std::string> metric_columns(const std::vector<nlohmann::json>& results) {
  std::set<std::string> present;
  for (const auto& r : results)
    for (auto it = r["metrics"].begin(); it != r["metrics"].end(); ++it)
      if (it->is_number()) present.insert(it.key());
  std::vector<std::string> cols;
  for (const char* kind : {"zeroshot", "retrieval"})
    for (const auto& m : headline_metrics(kind))
      if (present.erase(m)) cols.push_back(m);
  cols.insert(cols.end(), present.begin(), present.end());
  return cols;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

std::vector<nlohmann::json> read_sweep_results(const std::string& out_dir) {
  std::vector<nlohmann::json> out;
  std::error_code ec;
  if (!fs::is_directory(out_dir, ec)) return out;
  for (const auto& d : fs::directory_iterator(out_dir, ec)) {
    if (!d.is_directory() || d.path().filename().string().rfind("step-", 0) != 0) continue;
    for (const auto& f : fs::directory_iterator(d.path(), ec)) {
      if (!f.is_regular_file() || f.path().extension() != ".json") continue;
      std::ifstream in(f.path());
      std::stringstream ss;
      ss << in.rdbuf();
      try {
        auto j = nlohmann::json::parse(ss.str());
        j.at("step").get<int64_t>();
        j.at("samples_seen").get<double>();
        j.at("task").at("name").get<std::string>();
        j.at("task").at("kind").get<std::string>();
        if (j.at("metrics").is_object()) {
          out.push_back(std::move(j));
          continue;
        }
        spdlog::warn("sweep: {} has no metrics object: left out of the table", f.path().string());
      } catch (const nlohmann::json::exception& e) {
        spdlog::warn("sweep: {} is not a sweep result ({}): left out of the table", f.path().string(), e.what());
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    const int64_t sa = a["step"].get<int64_t>(), sb = b["step"].get<int64_t>();
    if (sa != sb) return sa < sb;
    return a["task"]["name"].get<std::string>() < b["task"]["name"].get<std::string>();
  });
  return out;
}

std::string sweep_results_csv(const std::vector<nlohmann::json>& results) {
  const std::vector<std::string> cols = metric_columns(results);
  std::string csv;
  for (const char* c : kFixedColumns) csv += std::string(csv.empty() ? "" : ",") + c;
  for (const auto& c : cols) csv += "," + c;
  csv += "\n";
  for (const auto& r : results) {
    csv += r["step"].dump() + "," + r["samples_seen"].dump() + "," + csv_field(r["task"]["name"].get<std::string>()) +
           "," + csv_field(r["task"]["kind"].get<std::string>());
    const auto& m = r["metrics"];
    for (const auto& c : cols) csv += "," + (m.contains(c) && m[c].is_number() ? m[c].dump() : std::string());
    csv += "\n";
  }
  return csv;
}

std::vector<std::string> write_sweep_summary(const std::string& out_dir) {
  const auto results = read_sweep_results(out_dir);
  std::vector<std::string> written;
  if (results.empty()) return written;
  const std::string csv_path = (fs::path(out_dir) / "results.csv").string();
  write_file_atomic(csv_path, sweep_results_csv(results));
  written.push_back(csv_path);
  // one chart per headline metric, one line per task that has it
  std::vector<std::string> metrics;
  for (const char* kind : {"zeroshot", "retrieval"})
    for (const auto& m : headline_metrics(kind)) metrics.push_back(m);
  for (const auto& metric : metrics) {
    std::map<std::string, PlotSeries> by_task;
    for (const auto& r : results) {
      const auto& m = r["metrics"];
      if (!m.contains(metric) || !m[metric].is_number()) continue;
      PlotSeries& s = by_task[r["task"]["name"].get<std::string>()];
      s.name = r["task"]["name"].get<std::string>();
      s.points.emplace_back(r["samples_seen"].get<double>(), m[metric].get<double>());
    }
    if (by_task.empty()) continue;
    std::vector<PlotSeries> series;
    for (auto& [name, s] : by_task) series.push_back(std::move(s));
    PlotOptions po;
    po.title = metric_title(metric) + " vs samples seen";
    po.x_label = "samples seen";
    po.y_label = metric;
    const std::string path = (fs::path(out_dir) / ("plot-" + metric + ".svg")).string();
    write_file_atomic(path, svg_line_chart(series, po));
    written.push_back(path);
  }
  return written;
}

}  // namespace pc
