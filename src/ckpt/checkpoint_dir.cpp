// Checkpoint directories: naming, manifest, verification, publishing, retention.
#include "pyramidclip/ckpt/checkpoint_dir.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "pyramidclip/util/errors.h"
#include "pyramidclip/util/fs_sync.h"

namespace pc {
namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "MANIFEST.json";

// step-000000123 -> 123; -1 for anything else (including step-N.tmp)
int64_t parse_step_dir(const std::string& name) {
  if (name.size() < 6 || name.rfind("step-", 0) != 0) return -1;
  int64_t step = 0;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

}  // namespace

std::string step_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%09lld", static_cast<long long>(step));
  return buf;
}

std::string optim_file_name(int rank, int world_size) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "optim-%05d-of-%05d.h5", rank, world_size);
  return buf;
}

Manifest write_manifest(const std::string& dir, int64_t step, int world_size, double samples_seen) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != kManifest) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<ManifestFile> files;
  for (const auto& name : names) {
    const FileDigest d = file_digest((fs::path(dir) / name).string());
    files.push_back({name, d.bytes, d.xxh3});
  }
  return write_manifest(dir, step, world_size, samples_seen, std::move(files));
}

Manifest write_manifest(const std::string& dir, int64_t step, int world_size, double samples_seen,
                        std::vector<ManifestFile> files) {
  Manifest m;
  m.step = step;
  m.world_size = world_size;
  m.samples_seen = samples_seen;
  m.version = PYRAMIDCLIP_VERSION;
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  m.files = std::move(files);
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : m.files) list.push_back({{"name", f.name}, {"bytes", f.bytes}, {"xxh3", f.xxh3}});
  const nlohmann::json j = {{"format", m.format},         {"step", step},      {"world_size", world_size},
                            {"samples_seen", samples_seen}, {"version", m.version}, {"files", list}};
  write_file_atomic((fs::path(dir) / kManifest).string(), j.dump(1) + "\n");
  return m;
}

std::string digest_sidecar_name(int rank) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "digest-rank-%05d.json", rank);
  return buf;
}

void write_digest_sidecar(const std::string& dir, int rank, const std::vector<std::string>& names) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& name : names) {
    const FileDigest d = file_digest((fs::path(dir) / name).string());
    list.push_back({{"name", name}, {"bytes", d.bytes}, {"xxh3", d.xxh3}});
  }
  write_file_atomic((fs::path(dir) / digest_sidecar_name(rank)).string(), list.dump() + "\n");
}

std::vector<ManifestFile> read_digest_sidecar(const std::string& dir, int rank) {
  const std::string path = (fs::path(dir) / digest_sidecar_name(rank)).string();
  std::ifstream in(path);
  require(in.good(), path + " is missing: rank " + std::to_string(rank) + " did not finish its part of the save");
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<ManifestFile> out;
  try {
    for (const auto& f : nlohmann::json::parse(ss.str()))
      out.push_back({f.at("name").get<std::string>(), f.at("bytes").get<int64_t>(), f.at("xxh3").get<std::string>()});
  } catch (const nlohmann::json::exception& e) {
    throw UserError(path + " is damaged (" + e.what() + ")");
  }
  return out;
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = (fs::path(dir) / kManifest).string();
  std::ifstream in(path);
  require(in.good(), path + " is missing: the save did not finish (not a valid checkpoint)");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    const auto j = nlohmann::json::parse(ss.str());
    Manifest m;
    m.format = j.at("format").get<int>();
    require(m.format == kCheckpointFormat, path + " has format " + std::to_string(m.format) +
                                               ", this pyramidclip reads format " + std::to_string(kCheckpointFormat));
    m.step = j.at("step").get<int64_t>();
    m.world_size = j.at("world_size").get<int>();
    m.samples_seen = j.at("samples_seen").get<double>();
    m.version = j.value("version", "");
    for (const auto& f : j.at("files")) {
      const std::string name = f.at("name").get<std::string>();
      require(!name.empty() && name.find('/') == std::string::npos && name != "." && name != "..",
              path + " lists a file outside its directory ('" + name + "')");
      m.files.push_back({name, f.at("bytes").get<int64_t>(), f.at("xxh3").get<std::string>()});
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw UserError(path + " is not a valid manifest (" + e.what() + ")");
  }
}

std::string verify_checkpoint(const std::string& dir, bool checksums) {
  Manifest m;
  try {
    m = read_manifest(dir);
  } catch (const UserError& e) {
    return e.what();
  }
  std::vector<std::string> need = {"model.h5", "state.h5"};
  for (int r = 0; r < m.world_size; ++r) need.push_back(optim_file_name(r, m.world_size));
  for (const auto& n : need)
    if (std::none_of(m.files.begin(), m.files.end(), [&](const ManifestFile& f) { return f.name == n; }))
      return dir + ": the manifest does not list " + n;
  for (const auto& f : m.files) {
    const fs::path p = fs::path(dir) / f.name;
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (ec) return p.string() + " is missing";
    if (static_cast<int64_t>(size) != f.bytes)
      return p.string() + " has " + std::to_string(size) + " bytes, the manifest says " + std::to_string(f.bytes) +
             " (truncated or replaced)";
    if (checksums) {
      try {
        const FileDigest d = file_digest(p.string());
        if (d.xxh3 != f.xxh3) return p.string() + " has checksum " + d.xxh3 + ", the manifest says " + f.xxh3 + " (corrupt)";
      } catch (const UserError& e) {
        return e.what();
      }
    }
  }
  return "";
}

std::vector<CheckpointEntry> list_checkpoints(const std::string& root) {
  std::vector<CheckpointEntry> out;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    if (!e.is_directory()) continue;
    const int64_t step = parse_step_dir(e.path().filename().string());
    if (step >= 0) out.push_back({step, e.path().string()});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.step < b.step; });
  return out;
}

std::optional<CheckpointEntry> newest_valid_checkpoint(const std::string& root, std::vector<std::string>* rejected) {
  auto all = list_checkpoints(root);
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const std::string why = verify_checkpoint(it->path);
    if (why.empty()) return *it;
    if (rejected) rejected->push_back(why);
  }
  return std::nullopt;
}

std::string read_latest(const std::string& root) {
  std::ifstream in(fs::path(root) / "latest");
  std::string name;
  std::getline(in, name);
  return name;
}

std::string publish_checkpoint(const std::string& root, const std::string& tmp_dir, int64_t step) {
  const fs::path final_dir = fs::path(root) / step_dir_name(step);
  std::error_code ec;
  require(fs::is_directory(tmp_dir, ec), "cannot publish " + tmp_dir + ": it does not exist");
  // A resumed run saving a step again: move the old one aside (never delete a valid step before
  // its replacement is in place); remove_unfinished() cleans up after a crash in between.
  const fs::path old_dir = final_dir.string() + ".old";
  if (fs::exists(final_dir, ec)) {
    fs::remove_all(old_dir, ec);
    fs::rename(final_dir, old_dir, ec);
    require(!ec, "cannot move " + final_dir.string() + " aside: " + ec.message());
  }
  fs::rename(tmp_dir, final_dir, ec);
  require(!ec, "cannot rename " + tmp_dir + " to " + final_dir.string() + ": " + ec.message());
  fs::remove_all(old_dir, ec);
  fsync_dir(root);
  write_file_atomic((fs::path(root) / "latest").string(), step_dir_name(step) + "\n");
  return final_dir.string();
}

std::vector<std::string> apply_retention(const std::string& root, int keep_last, int64_t keep_every) {
  std::vector<std::string> removed;
  auto all = list_checkpoints(root);
  const size_t keep_from = all.size() > static_cast<size_t>(std::max(1, keep_last))
                               ? all.size() - static_cast<size_t>(std::max(1, keep_last))
                               : 0;
  for (size_t i = 0; i < keep_from; ++i) {
    if (keep_every > 0 && all[i].step % keep_every == 0) continue;
    // rename first: a crash mid-delete must not leave a published step with files missing
    std::error_code ec;
    const std::string doomed = all[i].path + ".old";
    fs::rename(all[i].path, doomed, ec);
    if (ec) continue;
    fs::remove_all(doomed, ec);
    removed.push_back(all[i].path);
  }
  return removed;
}

std::vector<std::string> remove_unfinished(const std::string& root) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return removed;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    auto ends = [&](const char* suffix) {
      const size_t n = std::char_traits<char>::length(suffix);
      return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
    };
    if (e.is_directory() && name.rfind("step-", 0) == 0 && (ends(".tmp") || ends(".old"))) {
      fs::remove_all(e.path(), ec);
      if (!ec) removed.push_back(e.path().string());
    }
  }
  return removed;
}

}  // namespace pc
