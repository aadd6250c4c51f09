// Logical streams: equal ranges of each epoch's shuffled shard sequence, read in shuffled blocks
// with resumable cursors.
#include "pyramidclip/data/sample_stream.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "loader_internal.h"
#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/rng.h"
#include "pyramidclip/util/errors.h"

namespace pc {

StreamLayout::StreamLayout(std::vector<int64_t> counts, int64_t streams, uint64_t seed)
    : counts_(std::move(counts)), streams_(streams), seed_(seed) {
  if (counts_.empty() || streams < 1) throw std::invalid_argument("StreamLayout: need shards and streams");
  const int64_t total = std::accumulate(counts_.begin(), counts_.end(), int64_t{0});
  per_stream_ = total / streams;
  if (per_stream_ < 1)
    throw UserError("data: the shards hold " + std::to_string(total) + " samples, fewer than data.streams = " +
                    std::to_string(streams) + ": lower data.streams or add data");
}

std::vector<StreamLayout::Span> StreamLayout::spans(int64_t stream, int64_t epoch) const {
  std::vector<int64_t> order(counts_.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(mix_seed({seed_, 0x5AADULL, static_cast<uint64_t>(epoch)}));
  rng.shuffle(order);
  const int64_t lo = stream * per_stream_, hi = lo + per_stream_;
  std::vector<Span> out;
  int64_t at = 0;  // index of the shard's first sample in the epoch's sequence
  for (int64_t shard : order) {
    const int64_t n = counts_[static_cast<size_t>(shard)];
    const int64_t b = std::max(lo, at), e = std::min(hi, at + n);
    if (b < e) out.push_back({shard, b - at, e - at});
    at += n;
    if (at >= hi) break;
  }
  return out;
}

struct SampleStream::Impl {
  const std::vector<std::string>* shards = nullptr;
  const StreamLayout* layout = nullptr;
  int64_t stream = 0, block_size = 1;
  uint64_t seed = 0;
  DataStats stats;

  int64_t epoch = 0;
  std::vector<StreamLayout::Span> spans;  // of `epoch`
  std::vector<int64_t> span_start;        // index of each span's first sample in the stream's range
  size_t read_span = 0;
  int64_t read_offset = 0;                // samples of spans[read_span] read so far
  std::unique_ptr<SampleReader> reader;   // open on that span, positioned at read_offset
  int64_t read_in_epoch = 0;
  int empty_epochs = 0;

  struct Held {
    RawSample raw;
    int64_t shard = 0;
  };
  std::vector<Held> block;
  std::vector<size_t> order;  // serving order of `block`
  int64_t block_start = 0, taken = 0;

  void start_epoch(int64_t e) {
    epoch = e;
    spans = layout->spans(stream, e);
    span_start.clear();
    int64_t at = 0;
    for (const auto& sp : spans) {
      span_start.push_back(at);
      at += sp.end - sp.begin;
    }
    read_span = 0;
    read_offset = 0;
    read_in_epoch = 0;
    reader.reset();
  }

  // Index in the stream's range of the next sample to read (damaged spans count in full).
  int64_t nominal() const {
    return read_span < spans.size() ? span_start[read_span] + read_offset : layout->stream_samples();
  }

  void seek(int64_t start) {
    reader.reset();
    read_span = 0;
    while (read_span < spans.size() && start >= span_start[read_span] + (spans[read_span].end - spans[read_span].begin))
      ++read_span;
    read_offset = read_span < spans.size() ? start - span_start[read_span] : 0;
  }

  void damaged(const StreamLayout::Span& sp, const std::string& what) {
    ++stats.shards_damaged;
    data_internal::warn_bad((*shards)[static_cast<size_t>(sp.shard)], "", what);
  }

  // Reads the next sample of the epoch into `h`; false at the end of the epoch.
  bool read_one(Held& h) {
    while (read_span < spans.size()) {
      const StreamLayout::Span& sp = spans[read_span];
      if (read_offset < sp.end - sp.begin) {
        if (!reader) {
          try {
            reader = std::make_unique<SampleReader>((*shards)[static_cast<size_t>(sp.shard)], sp.begin + read_offset);
          } catch (const CorruptData& e) {
            damaged(sp, std::string("shard skipped: ") + e.what());
          }
        }
        if (reader && reader->next(h.raw)) {
          h.shard = sp.shard;
          ++read_offset;
          ++read_in_epoch;
          return true;
        }
        if (reader)
          damaged(sp, reader->damaged() ? "damaged, rest of the shard skipped: " + reader->error()
                                        : "holds fewer samples than counted (meta.json out of date?)");
      }
      reader.reset();
      ++read_span;
      read_offset = 0;
    }
    return false;
  }

  // Reads the next block (moving to the next epoch when this one is done) and shuffles it.
  void fill_block() {
    block.clear();
    for (;;) {
      block_start = nominal();
      while (static_cast<int64_t>(block.size()) < block_size) {
        Held h;
        if (!read_one(h)) break;
        block.push_back(std::move(h));
      }
      if (!block.empty()) break;
      if (read_in_epoch > 0) empty_epochs = 0;
      if (read_in_epoch == 0 && ++empty_epochs >= 2)
        throw UserError("data: stream " + std::to_string(stream) + " read no sample in epochs " +
                        std::to_string(epoch - 1) + " and " + std::to_string(epoch) +
                        ": its shards are empty or unreadable (see the warnings above); check them with "
                        "`pyramidclip data check`");
      start_epoch(epoch + 1);
    }
    order.resize(block.size());
    std::iota(order.begin(), order.end(), size_t{0});
    Rng rng(mix_seed({seed, 0xB10CULL, static_cast<uint64_t>(epoch), static_cast<uint64_t>(stream),
                      static_cast<uint64_t>(block_start)}));
    rng.shuffle(order);
    taken = 0;
  }
};

SampleStream::SampleStream(const std::vector<std::string>& shards, const StreamLayout& layout, int64_t stream,
                           int64_t block, uint64_t seed, StreamCursor start)
    : impl_(std::make_unique<Impl>()) {
  if (block < 1) throw std::invalid_argument("SampleStream: block size must be positive");
  if (stream < 0 || stream >= layout.streams()) throw std::invalid_argument("SampleStream: stream out of range");
  Impl& s = *impl_;
  s.shards = &shards;
  s.layout = &layout;
  s.stream = stream;
  s.block_size = block;
  s.seed = seed;
  if (start.epoch < 0 || start.start < 0 || start.start > layout.stream_samples() || start.taken < 0)
    throw UserError("data: the saved cursor of stream " + std::to_string(stream) + " (epoch " +
                    std::to_string(start.epoch) + ", sample " + std::to_string(start.start) +
                    ") lies outside its range: the checkpoint belongs to a different dataset");
  s.start_epoch(start.epoch);
  s.seek(start.start);
  if (start.taken > 0) {
    s.fill_block();
    if (s.block_start != start.start || start.taken > static_cast<int64_t>(s.block.size()))
      throw UserError("data: stream " + std::to_string(stream) + " cannot be positioned at its saved cursor (the " +
                      "shards hold fewer samples than when it was saved): resume with the same shards");
    s.taken = start.taken;
  }
}

SampleStream::~SampleStream() = default;
SampleStream::SampleStream(SampleStream&&) noexcept = default;

void SampleStream::next(StreamSample& out) {
  Impl& s = *impl_;
  if (s.taken >= static_cast<int64_t>(s.block.size())) s.fill_block();
  Impl::Held& h = s.block[s.order[static_cast<size_t>(s.taken)]];
  out.raw = std::move(h.raw);
  out.shard = h.shard;
  out.epoch = s.epoch;
  ++s.taken;
  out.after = s.taken < static_cast<int64_t>(s.block.size()) ? StreamCursor{s.epoch, s.block_start, s.taken}
                                                             : StreamCursor{s.epoch, s.nominal(), 0};
}

int64_t SampleStream::stream() const { return impl_->stream; }
const DataStats& SampleStream::stats() const { return impl_->stats; }

}  // namespace pc
