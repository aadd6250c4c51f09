#include "pyramidclip/optim/flat_layout.h"

#include <c10/util/Exception.h>

#include <istream>
#include <ostream>
#include <sstream>

namespace pc {

const FlatParam& FlatLayout::find(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return p;
  TORCH_CHECK(false, "flat layout has no parameter '", name, "'");
}

FlatLayout FlatLayout::with_world_size(int world) const {
  TORCH_CHECK(world > 0, "world size must be positive");
  FlatLayout l = *this;
  l.world_size = world;
  l.padded_numel = (numel + world - 1) / world * world;
  return l;
}

FlatLayout make_flat_layout(const std::vector<std::string>& names, const std::vector<at::Tensor>& params,
                            const std::vector<bool>& decay, int world_size) {
  TORCH_CHECK(names.size() == params.size() && decay.size() == params.size(),
              "make_flat_layout: names, params and decay flags differ in length");
  FlatLayout l;
  for (size_t i = 0; i < params.size(); ++i) {
    FlatParam p;
    p.name = names[i];
    p.offset = l.numel;
    p.numel = params[i].numel();
    p.shape = params[i].sizes().vec();
    p.weight_decay = decay[i] ? 1.0f : 0.0f;
    l.numel += p.numel;
    l.params.push_back(std::move(p));
  }
  return l.with_world_size(world_size);
}

std::vector<DecaySpan> decay_spans(const FlatLayout& layout, int64_t begin, int64_t end) {
  std::vector<DecaySpan> spans;
  for (const auto& p : layout.params) {
    const int64_t lo = std::max(begin, p.offset), hi = std::min(end, p.offset + p.numel);
    if (lo >= hi) continue;
    if (!spans.empty() && spans.back().end == lo && spans.back().weight_decay == p.weight_decay)
      spans.back().end = hi;
    else
      spans.push_back({lo, hi, p.weight_decay});
  }
  return spans;
}

void write_layout_table(const FlatLayout& layout, std::ostream& out) {
  out << "# pyramidclip flat layout v1 numel=" << layout.numel << " padded=" << layout.padded_numel
      << " world=" << layout.world_size << "\n";
  out << "name\toffset\tnumel\tshape\tweight_decay\n";
  for (const auto& p : layout.params) {
    out << p.name << '\t' << p.offset << '\t' << p.numel << '\t';
    for (size_t d = 0; d < p.shape.size(); ++d) out << (d ? "," : "") << p.shape[d];
    out << '\t' << p.weight_decay << '\n';
  }
}

std::string layout_table(const FlatLayout& layout) {
  std::ostringstream s;
  write_layout_table(layout, s);
  return s.str();
}

FlatLayout read_layout_table(std::istream& in) {
  std::string line;
  TORCH_CHECK(std::getline(in, line) && line.rfind("# pyramidclip flat layout v1 ", 0) == 0,
              "flat layout table: bad first line '", line, "'");
  FlatLayout l;
  int64_t numel = -1, padded = -1;
  int world = -1;
  std::istringstream head(line.substr(29));
  std::string kv;
  while (head >> kv) {
    auto eq = kv.find('=');
    TORCH_CHECK(eq != std::string::npos, "flat layout table: bad header field '", kv, "'");
    const std::string key = kv.substr(0, eq);
    const int64_t value = std::stoll(kv.substr(eq + 1));
    if (key == "numel") numel = value;
    else if (key == "padded") padded = value;
    else if (key == "world") world = static_cast<int>(value);
  }
  TORCH_CHECK(numel >= 0 && padded >= numel && world > 0, "flat layout table: incomplete header");
  TORCH_CHECK(std::getline(in, line) && line == "name\toffset\tnumel\tshape\tweight_decay",
              "flat layout table: bad column line");
  int64_t next = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream row(line);
    FlatParam p;
    std::string offset, count, shape, wd;
    TORCH_CHECK(std::getline(row, p.name, '\t') && std::getline(row, offset, '\t') &&
                    std::getline(row, count, '\t') && std::getline(row, shape, '\t') && std::getline(row, wd),
                "flat layout table: bad row '", line, "'");
    p.offset = std::stoll(offset);
    p.numel = std::stoll(count);
    p.weight_decay = std::stof(wd);
    int64_t prod = 1;
    std::istringstream dims(shape);
    std::string d;
    while (std::getline(dims, d, ',')) {
      p.shape.push_back(std::stoll(d));
      prod *= p.shape.back();
    }
    TORCH_CHECK(p.offset == next && prod == p.numel, "flat layout table: row '", line,
                "' is not contiguous or its shape does not match numel");
    next += p.numel;
    l.params.push_back(std::move(p));
  }
  TORCH_CHECK(next == numel, "flat layout table: rows sum to ", next, " elements, header says ", numel);
  l.numel = numel;
  l.world_size = world;
  l.padded_numel = padded;
  TORCH_CHECK(padded == l.with_world_size(world).padded_numel, "flat layout table: padding does not match world");
  return l;
}

}  // namespace pc
