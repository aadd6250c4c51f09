#pragma once
// Logical sample streams: the world-size-independent sample order (DESIGN §4).
//
// Every epoch e the shards are shuffled with (seed, e) and laid end to end; that sequence of D
// samples is cut into S equal contiguous ranges of L = floor(D / S) samples (the last D - S*L
// are left out of that epoch, as DistributedSampler's drop_last does; a new shuffle leaves out
// others). Stream s reads range s in blocks of `block` samples and serves each block in an
// order shuffled with (seed, epoch, stream, block start); after its range it starts its next
// epoch. All streams have the same length, so epochs stay in step across streams.
//
// The job's global sample sequence interleaves the streams: position j is served by stream
// j mod S. With N ranks (N divides S), rank r serves positions r, r+N, ..., which all belong to
// its streams r, r+N, ...; a global batch is positions [t*B, (t+1)*B) whatever N is. A stream's
// place is a StreamCursor, so a job saved on N ranks resumes on any M dividing S.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pyramidclip/data/data_stats.h"
#include "pyramidclip/data/tar.h"

namespace pc {

// Where a stream stands: the block being served starts `start` samples into the stream's range
// of epoch `epoch`, and `taken` of its samples were served.
struct StreamCursor {
  int64_t epoch = 0, start = 0, taken = 0;
  bool operator==(const StreamCursor& o) const { return epoch == o.epoch && start == o.start && taken == o.taken; }
  bool operator!=(const StreamCursor& o) const { return !(*this == o); }
};

// How the shards' samples are dealt to streams each epoch.
class StreamLayout {
 public:
  // `counts`: samples per shard (shard_sample_counts). UserError when there are fewer samples
  // than streams.
  StreamLayout(std::vector<int64_t> counts, int64_t streams, uint64_t seed);
  int64_t streams() const { return streams_; }
  int64_t stream_samples() const { return per_stream_; }            // L
  int64_t epoch_samples() const { return per_stream_ * streams_; }  // S * L

  // A stream's range in one epoch, as consecutive pieces of shards.
  struct Span {
    int64_t shard = 0, begin = 0, end = 0;  // samples [begin, end) of the shard
  };
  std::vector<Span> spans(int64_t stream, int64_t epoch) const;

 private:
  std::vector<int64_t> counts_;
  int64_t streams_, per_stream_ = 0;
  uint64_t seed_;
};

// One raw (undecoded) sample as a stream serves it.
struct StreamSample {
  RawSample raw;
  int64_t epoch = 0;        // the stream's epoch it belongs to
  int64_t shard = 0;        // index into the shard list
  StreamCursor after;       // the stream's cursor once this sample is served
};

// Reads one stream. Not thread-safe. A shard that cannot be opened or ends early (damaged, or
// shorter than its count) leaves its span short; it is counted in stats().shards_damaged and
// logged.
class SampleStream {
 public:
  SampleStream(const std::vector<std::string>& shards, const StreamLayout& layout, int64_t stream, int64_t block,
               uint64_t seed, StreamCursor start = {});
  ~SampleStream();
  SampleStream(SampleStream&&) noexcept;
  // The next sample; epochs repeat forever. Throws UserError when two consecutive epochs of this
  // stream hold no readable sample.
  void next(StreamSample& out);
  int64_t stream() const;
  const DataStats& stats() const;  // shards_damaged only

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pc
