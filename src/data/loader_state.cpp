// LoaderState: flat int64 encoding and the merge of the ranks' parts.
#include "pyramidclip/data/loader_state.h"

#include <filesystem>

#include "loader_internal.h"
#include "pyramidclip/data/rng.h"
#include "pyramidclip/util/errors.h"

namespace pc {

namespace {
constexpr int64_t kHeader = 9;  // version, seed, streams, block, num_shards, shards_hash, epoch_samples, position, fields
constexpr int64_t kFields = 4;  // held, epoch, start, taken
}  // namespace

bool LoaderState::complete() const {
  if (streams <= 0 || static_cast<int64_t>(held.size()) != streams) return false;
  for (uint8_t h : held)
    if (!h) return false;
  return true;
}

std::vector<int64_t> LoaderState::encode() const {
  std::vector<int64_t> v = {kVersion,   static_cast<int64_t>(seed),        streams,       block,  num_shards,
                            static_cast<int64_t>(shards_hash), epoch_samples, position, kFields};
  for (int64_t s = 0; s < streams; ++s) {
    const StreamCursor& c = cursors[static_cast<size_t>(s)];
    v.insert(v.end(), {held[static_cast<size_t>(s)] ? 1 : 0, c.epoch, c.start, c.taken});
  }
  return v;
}

LoaderState LoaderState::decode(const std::vector<int64_t>& v) {
  const std::string fix = ": the checkpoint's data state is damaged or from another program version";
  if (v.size() < static_cast<size_t>(kHeader)) throw UserError("data: loader state too short" + fix);
  if (v[0] != kVersion)
    throw UserError("data: loader state version " + std::to_string(v[0]) + " is not " + std::to_string(kVersion) + fix);
  LoaderState s;
  s.seed = static_cast<uint64_t>(v[1]);
  s.streams = v[2];
  s.block = v[3];
  s.num_shards = v[4];
  s.shards_hash = static_cast<uint64_t>(v[5]);
  s.epoch_samples = v[6];
  s.position = v[7];
  if (v[8] != kFields || s.streams < 1 || s.block < 1 || s.position < 0 ||
      static_cast<int64_t>(v.size()) != kHeader + s.streams * kFields)
    throw UserError("data: loader state has an inconsistent size" + fix);
  s.cursors.resize(static_cast<size_t>(s.streams));
  s.held.resize(static_cast<size_t>(s.streams));
  for (int64_t i = 0; i < s.streams; ++i) {
    const int64_t* f = v.data() + kHeader + i * kFields;
    s.held[static_cast<size_t>(i)] = f[0] != 0;
    s.cursors[static_cast<size_t>(i)] = {f[1], f[2], f[3]};
  }
  return s;
}

LoaderState LoaderState::merge(const std::vector<LoaderState>& parts) {
  if (parts.empty()) throw std::invalid_argument("LoaderState::merge: no parts");
  LoaderState m = parts.front();
  for (size_t p = 1; p < parts.size(); ++p) {
    const LoaderState& o = parts[p];
    if (o.seed != m.seed || o.streams != m.streams || o.block != m.block || o.num_shards != m.num_shards ||
        o.shards_hash != m.shards_hash || o.epoch_samples != m.epoch_samples || o.position != m.position)
      throw UserError("data: the ranks' loader states disagree (seed, streams, shards or position): the ranks did "
                      "not run the same data configuration");
    for (int64_t s = 0; s < m.streams; ++s) {
      if (!o.held[static_cast<size_t>(s)]) continue;
      if (m.held[static_cast<size_t>(s)])
        throw UserError("data: stream " + std::to_string(s) + " is held by two ranks' loader states");
      m.held[static_cast<size_t>(s)] = 1;
      m.cursors[static_cast<size_t>(s)] = o.cursors[static_cast<size_t>(s)];
    }
  }
  return m;
}

uint64_t shard_list_hash(const std::vector<std::string>& shards) {
  // Base names only: the same shards mounted elsewhere are the same data.
  uint64_t h = data_internal::fnv1a(std::to_string(shards.size()));
  for (const auto& s : shards) h = mix_seed({h, data_internal::fnv1a(std::filesystem::path(s).filename().string())});
  return h;
}

}  // namespace pc
