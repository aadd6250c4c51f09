// Shard specs: brace patterns, list files, directories.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>

#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/util/errors.h"

namespace fs = std::filesystem;

namespace pc {
namespace {

constexpr size_t kMaxExpansion = 10'000'000;  // a typo like {0..99999999999} must not eat the memory

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Alternatives of one brace body: a numeric range "a..b" or a comma list.
std::vector<std::string> brace_items(const std::string& body, const std::string& pattern) {
  const size_t dots = body.find("..");
  if (dots != std::string::npos && body.find(',') == std::string::npos) {
    const std::string lo = body.substr(0, dots), hi = body.substr(dots + 2);
    if (!all_digits(lo) || !all_digits(hi) || lo.size() > 18 || hi.size() > 18)
      throw UserError("bad range {" + body + "} in shard pattern '" + pattern + "': write {00000..00099}");
    const long long a = std::stoll(lo), b = std::stoll(hi);
    if (b < a)
      throw UserError("descending range {" + body + "} in shard pattern '" + pattern + "': put the smaller bound first");
    if (static_cast<unsigned long long>(b - a) >= kMaxExpansion)
      throw UserError("range {" + body + "} in shard pattern '" + pattern + "' is too large");
    // braceexpand's rule: a leading zero on either bound pads every number to the longer bound
    const bool padded = (lo.size() > 1 && lo[0] == '0') || (hi.size() > 1 && hi[0] == '0');
    const size_t width = padded ? std::max(lo.size(), hi.size()) : 0;
    std::vector<std::string> out;
    out.reserve(static_cast<size_t>(b - a + 1));
    for (long long v = a; v <= b; ++v) {
      std::string s = std::to_string(v);
      if (s.size() < width) s.insert(0, width - s.size(), '0');
      out.push_back(std::move(s));
    }
    return out;
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = body.find(',', start);
    out.push_back(body.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

bool is_shard_file(const fs::path& p) {
  const std::string name = p.filename().string();
  auto ends = [&](const std::string& suf) {
    return name.size() >= suf.size() && name.compare(name.size() - suf.size(), suf.size(), suf) == 0;
  };
  return ends(".tar") || ends(".tar.gz") || ends(".tgz") || ends(".tar.zst");
}

void add_pattern(const std::string& pattern, const fs::path& base, std::vector<std::string>& out) {
  for (const std::string& p : expand_braces(pattern)) {
    fs::path path(p);
    if (path.is_relative() && !base.empty()) path = base / path;
    out.push_back(path.lexically_normal().string());
  }
}

void resolve_one(const std::string& spec, std::vector<std::string>& out) {
  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(spec, ec))
      if (e.is_regular_file() && is_shard_file(e.path())) found.push_back(e.path().string());
    std::sort(found.begin(), found.end());
    if (found.empty())
      throw UserError("shard directory " + spec + " holds no .tar files: point at the directory that has the shards");
    out.insert(out.end(), found.begin(), found.end());
    return;
  }
  if (spec.size() > 4 && spec.compare(spec.size() - 4, 4, ".txt") == 0 && spec.find('{') == std::string::npos) {
    std::ifstream in(spec);
    if (!in) throw UserError("shard list file " + spec + " does not exist: give a brace pattern, a list file or a directory");
    const fs::path base = fs::path(spec).parent_path();
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const auto first = line.find_first_not_of(" \t");
      if (first == std::string::npos || line[first] == '#') continue;
      const auto last = line.find_last_not_of(" \t");
      add_pattern(line.substr(first, last - first + 1), base, out);
    }
    return;
  }
  add_pattern(spec, fs::path(), out);
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  // Find the first top-level brace pair; expand it and recurse on each result (handles several
  // and nested braces).
  size_t open = std::string::npos;
  int depth = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      if (depth++ == 0) open = i;
    } else if (pattern[i] == '}') {
      if (depth == 0) throw UserError("unbalanced '}' in shard pattern '" + pattern + "'");
      if (--depth == 0) {
        const std::string prefix = pattern.substr(0, open), suffix = pattern.substr(i + 1);
        // split the body at top-level commas so nested braces stay whole
        const std::string body = pattern.substr(open + 1, i - open - 1);
        std::vector<std::string> items;
        if (body.find('{') == std::string::npos) {
          items = brace_items(body, pattern);
        } else {
          int d = 0;
          size_t start = 0;
          for (size_t k = 0; k <= body.size(); ++k) {
            if (k == body.size() || (body[k] == ',' && d == 0)) {
              items.push_back(body.substr(start, k - start));
              start = k + 1;
            } else if (body[k] == '{') {
              ++d;
            } else if (body[k] == '}') {
              --d;
            }
          }
        }
        std::vector<std::string> out;
        for (const std::string& item : items)
          for (std::string& s : expand_braces(prefix + item + suffix)) {
            out.push_back(std::move(s));
            if (out.size() > kMaxExpansion) throw UserError("shard pattern '" + pattern + "' expands to too many names");
          }
        return out;
      }
    }
  }
  if (depth != 0) throw UserError("unbalanced '{' in shard pattern '" + pattern + "'");
  return {pattern};
}

std::vector<std::string> list_shards(const std::string& spec) {
  if (spec.empty()) throw UserError("no training shards given: set data.train-shards to a brace pattern, list file or directory");
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t sep = spec.find("::", start);
    const std::string part = spec.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
    if (!part.empty()) resolve_one(part, out);
    if (sep == std::string::npos) break;
    start = sep + 2;
  }
  std::error_code ec;
  for (const std::string& p : out)
    if (!fs::is_regular_file(p, ec))
      throw UserError("shard " + p + " does not exist (from '" + spec + "'): fix the pattern or run `pyramidclip data synth`");
  if (out.empty()) throw UserError("shard spec '" + spec + "' names no files");
  return out;
}

}  // namespace pc
