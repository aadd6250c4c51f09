// TrainLoader: logical streams -> reader thread -> decode/augment workers -> ordered batches.
#include "pyramidclip/data/train_loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "loader_internal.h"
#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/sample_count.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/text/text_clean.h"
#include "pyramidclip/util/errors.h"

namespace pc {

using data_internal::warn_bad;

namespace {

// One sample after decode + augment (or the reason it is unusable).
struct Decoded {
  std::string bad;           // non-empty: skipped, with why
  std::string roi_dropped;   // non-empty: a corrupt .roi.npy was dropped, the sample kept
  std::string key;
  int64_t epoch = 0, shard = 0;
  StreamCursor after;
  std::vector<float> global, local;  // [3,S,S] each
  std::vector<int32_t> text;
  std::optional<std::vector<int32_t>> summary, tags;
  std::vector<float> roi;    // rows x roi_dim
  int64_t roi_rows = 0;
  bool has_roi = false;
};

struct Task {
  size_t local = 0;  // index of the stream among this rank's
  int64_t seq = 0;   // its position in that stream since the start of this run
  StreamSample sample;
};

bool valid_utf8(const std::string& s) { return text::utf8_encode(text::utf8_decode(s)) == s; }

}  // namespace

struct TrainLoader::Impl {
  TrainLoaderOptions opt;
  TokenizeFn tokenize;
  std::vector<std::string> shards;
  std::optional<StreamLayout> layout;
  int decode_min_side = 0;
  size_t context = 0;  // token ids per text, from the first tokenize() call
  std::mutex context_mutex;

  // Position: rank-local sample k sits at global position start_position + k*N + rank.
  int64_t start_position = 0;
  std::vector<StreamCursor> start_cursors;  // per stream of the job (restore)
  std::vector<SampleStream> streams;        // this rank's: stream id = rank + i*N
  std::vector<StreamCursor> cursors;        // per local stream, after the last sample served
  std::vector<int64_t> consume_seq;
  int64_t served = 0;                       // samples served by this rank (k)
  bool started = false;

  // Reader and workers (workers > 0).
  std::mutex m;
  std::condition_variable cv_reader, cv_worker, cv_served;
  std::deque<Task> tasks;
  std::vector<std::map<int64_t, Decoded>> results;  // per local stream, by seq
  std::deque<size_t> deficits;  // streams owing one more sample (one of theirs was bad)
  std::vector<int64_t> dispatch_seq;
  int64_t dispatch_k = 0, inflight = 0, capacity = 0;
  bool stop = false;
  std::exception_ptr error;
  std::thread reader;
  std::vector<std::thread> workers;
  std::atomic<int64_t> shards_damaged{0};

  DataStats stats;
  int64_t last_epoch = 0;

  size_t local_of(int64_t k) const {
    const int64_t n = opt.world_size, j = start_position + k * n + opt.rank;
    return static_cast<size_t>((j % opt.streams - opt.rank) / n);
  }

  void start() {
    started = true;
    const int64_t n = opt.world_size;
    for (int64_t sid = opt.rank; sid < opt.streams; sid += n) {
      const StreamCursor c = start_cursors.empty() ? StreamCursor{} : start_cursors[static_cast<size_t>(sid)];
      streams.emplace_back(shards, *layout, sid, opt.shuffle_block, opt.seed, c);
      cursors.push_back(c);
    }
    consume_seq.assign(streams.size(), 0);
    if (opt.workers <= 0) return;
    results.resize(streams.size());
    dispatch_seq.assign(streams.size(), 0);
    capacity = static_cast<int64_t>(std::max(1, opt.prefetch)) * opt.batch_size;
    reader = std::thread([this] { reader_loop(); });
    for (int i = 0; i < opt.workers; ++i) workers.emplace_back([this] { worker_loop(); });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(m);
      stop = true;
    }
    cv_reader.notify_all();
    cv_worker.notify_all();
    cv_served.notify_all();
    if (reader.joinable()) reader.join();
    for (auto& w : workers)
      if (w.joinable()) w.join();
  }

  void fail(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(m);
      if (!error) error = e;
    }
    cv_served.notify_all();
  }

  void read_sample(size_t local, StreamSample& out) {
    SampleStream& st = streams[local];
    const int64_t before = st.stats().shards_damaged;
    st.next(out);
    shards_damaged += st.stats().shards_damaged - before;
  }

  // Reads raw samples in the order positions need them (and refills for bad ones).
  void reader_loop() {
    try {
      for (;;) {
        size_t local;
        int64_t seq;
        {
          std::unique_lock<std::mutex> lock(m);
          cv_reader.wait(lock, [&] { return stop || !deficits.empty() || inflight < capacity; });
          if (stop) return;
          if (!deficits.empty()) {
            local = deficits.front();
            deficits.pop_front();
          } else {
            local = local_of(dispatch_k++);
          }
          seq = dispatch_seq[local]++;
          ++inflight;
        }
        Task t{local, seq, {}};
        read_sample(local, t.sample);
        {
          std::lock_guard<std::mutex> lock(m);
          tasks.push_back(std::move(t));
        }
        cv_worker.notify_one();
      }
    } catch (...) {
      fail(std::current_exception());
    }
  }

  void worker_loop() {
    try {
      for (;;) {
        Task t;
        {
          std::unique_lock<std::mutex> lock(m);
          cv_worker.wait(lock, [&] { return stop || !tasks.empty(); });
          if (stop) return;
          t = std::move(tasks.front());
          tasks.pop_front();
        }
        Decoded d = process(t.sample);
        {
          std::lock_guard<std::mutex> lock(m);
          results[t.local].emplace(t.seq, std::move(d));
        }
        cv_served.notify_all();
      }
    } catch (...) {
      fail(std::current_exception());
    }
  }

  // The next sample of local stream `local`, in stream order.
  Decoded take(size_t local) {
    const int64_t seq = consume_seq[local]++;
    if (opt.workers <= 0) {
      StreamSample s;
      read_sample(local, s);
      return process(s);
    }
    std::unique_lock<std::mutex> lock(m);
    auto& r = results[local];
    cv_served.wait(lock, [&] { return error || (!r.empty() && r.begin()->first == seq); });
    if (error) std::rethrow_exception(error);
    Decoded d = std::move(r.begin()->second);
    r.erase(r.begin());
    --inflight;
    if (!d.bad.empty()) deficits.push_back(local);  // its replacement comes from the same stream
    lock.unlock();
    cv_reader.notify_one();
    return d;
  }

  std::vector<int32_t> tokens(const std::string& text) {
    std::vector<int32_t> ids = tokenize(text);
    std::lock_guard<std::mutex> lock(context_mutex);
    if (context == 0) {
      if (ids.empty()) throw std::runtime_error("TrainLoader: the tokenize callback returned no ids");
      context = ids.size();
    }
    if (ids.size() != context)
      throw std::runtime_error("TrainLoader: the tokenize callback returned " + std::to_string(ids.size()) +
                               " ids after " + std::to_string(context) + " (it must pad to a fixed length)");
    return ids;
  }

  // Decodes and augments one sample (any thread). Bad data is reported in the result.
  Decoded process(StreamSample& in) {
    Decoded d;
    const RawSample& s = in.raw;
    d.key = s.key;
    d.epoch = in.epoch;
    d.shard = in.shard;
    d.after = in.after;
    std::string ext;
    const std::string* img_bytes = data_internal::find_image_member(s, ext);
    if (!img_bytes) {
      d.bad = "no image member (.jpg/.jpeg/.png)";
      return d;
    }
    auto cap = s.members.find("txt");
    if (cap == s.members.end() || cap->second.empty()) {
      d.bad = cap == s.members.end() ? "no caption member (.txt)" : "empty caption (.txt)";
      return d;
    }
    for (const char* t : {"txt", "summary.txt", "tags.txt"}) {
      auto it = s.members.find(t);
      if (it != s.members.end() && !valid_utf8(it->second)) {
        d.bad = std::string("undecodable text (.") + t + " is not UTF-8)";
        return d;
      }
    }
    Image img;
    try {
      img = decode_image(img_bytes->data(), img_bytes->size(), ext, decode_min_side);
    } catch (const CorruptData& e) {
      d.bad = std::string("corrupt .") + ext + ": " + e.what();
      return d;
    }
    Rng aug(mix_seed({opt.seed, 0xA06ULL, static_cast<uint64_t>(in.epoch), data_internal::fnv1a(s.key)}));
    const CropBox g = sample_resized_crop(img.height, img.width, opt.global_crop, aug);
    const CropBox l = sample_resized_crop(img.height, img.width, opt.local_crop, aug);
    const size_t numel = 3 * static_cast<size_t>(opt.image_size) * opt.image_size;
    d.global.resize(numel);
    d.local.resize(numel);
    resized_crop_normalized(img, g, opt.image_size, d.global.data());
    resized_crop_normalized(img, l, opt.image_size, d.local.data());
    d.text = tokens(cap->second);
    if (auto it = s.members.find("summary.txt"); it != s.members.end() && !it->second.empty())
      d.summary = tokens(it->second);
    if (auto it = s.members.find("tags.txt"); it != s.members.end() && !it->second.empty())
      d.tags = tokens(it->second);
    if (auto it = s.members.find("roi.npy"); it != s.members.end()) {
      d.has_roi = true;  // the dataset has ROIs: a corrupt one masks this row rather than dropping the batch's
      try {
        NpyArray a = parse_npy(it->second.data(), it->second.size());
        if (a.shape.size() != 2 || a.cols() != opt.roi_dim)
          throw CorruptData("shape [" + std::to_string(a.rows()) + "," + std::to_string(a.cols()) + "], expected [M," +
                            std::to_string(opt.roi_dim) + "]");
        d.roi_rows = std::min<int64_t>(a.rows(), opt.roi_count);
        a.data.resize(static_cast<size_t>(d.roi_rows * opt.roi_dim));
        d.roi = std::move(a.data);
      } catch (const CorruptData& e) {
        d.roi_dropped = e.what();
        d.roi_rows = 0;
      }
    }
    return d;
  }

  void check_bad_fraction() {
    if (stats.samples_read < 200) return;  // too few to judge a fraction
    if (stats.bad() > opt.max_bad_fraction * static_cast<double>(stats.samples_read))
      throw UserError("data: " + std::to_string(stats.bad()) + " of " + std::to_string(stats.samples_read) +
                      " samples read on rank " + std::to_string(opt.rank) + " were corrupt or incomplete (more than " +
                      "data.max-bad-fraction = " + std::to_string(opt.max_bad_fraction) +
                      "; see the warnings above): repair the shards or raise data.max-bad-fraction");
  }

  // Fills the text and ROI tensors of a batch whose images are already in place.
  void assemble(std::vector<Decoded>& items, Batch& batch) {
    const int64_t b = static_cast<int64_t>(items.size()), l = static_cast<int64_t>(context);
    auto text_tensor = [&](auto&& row_of) {
      at::Tensor t = at::empty({b, l}, at::kLong);
      int64_t* d = t.data_ptr<int64_t>();
      for (int64_t i = 0; i < b; ++i) {
        const std::vector<int32_t>& ids = row_of(items[static_cast<size_t>(i)]);
        std::copy(ids.begin(), ids.end(), d + i * l);
      }
      return t;
    };
    batch.text = text_tensor([](const Decoded& p) -> const std::vector<int32_t>& { return p.text; });
    const bool any_summary = std::any_of(items.begin(), items.end(), [](const Decoded& p) { return p.summary.has_value(); });
    const bool any_tags = std::any_of(items.begin(), items.end(), [](const Decoded& p) { return p.tags.has_value(); });
    if (any_summary)
      batch.summary = text_tensor([](const Decoded& p) -> const std::vector<int32_t>& { return p.summary ? *p.summary : p.text; });
    if (any_tags)
      batch.tags = text_tensor([](const Decoded& p) -> const std::vector<int32_t>& { return p.tags ? *p.tags : p.text; });
    if (std::any_of(items.begin(), items.end(), [](const Decoded& p) { return p.has_roi; })) {
      const int64_t m = opt.roi_count, d = opt.roi_dim;
      batch.roi = at::zeros({b, m, d}, at::kFloat);
      batch.roi_mask = at::zeros({b, m}, at::kBool);
      float* r = batch.roi.data_ptr<float>();
      bool* mask = batch.roi_mask.data_ptr<bool>();
      for (int64_t i = 0; i < b; ++i) {
        const Decoded& p = items[static_cast<size_t>(i)];
        std::copy(p.roi.begin(), p.roi.end(), r + i * m * d);
        std::fill(mask + i * m, mask + i * m + p.roi_rows, true);
      }
    }
    for (auto& it : items) {
      batch.keys.push_back(std::move(it.key));
      batch.epochs.push_back(it.epoch);
    }
  }
};

TrainLoader::TrainLoader(TrainLoaderOptions opt, TokenizeFn tokenize) : impl_(std::make_unique<Impl>()) {
  require(opt.image_size > 0, "data: image size must be positive (got " + std::to_string(opt.image_size) + ")");
  require(opt.batch_size > 0, "data: batch size per rank must be positive (got " + std::to_string(opt.batch_size) + ")");
  require(opt.world_size > 0 && opt.rank >= 0 && opt.rank < opt.world_size,
          "data: rank " + std::to_string(opt.rank) + " is outside world size " + std::to_string(opt.world_size));
  require(opt.roi_count > 0, "data.roi-count must be positive (got " + std::to_string(opt.roi_count) + ")");
  require(opt.roi_dim > 0, "data: ROI dimension must be positive");
  for (const auto& [name, r] : {std::pair<const char*, CropRange>{"global", opt.global_crop}, {"local", opt.local_crop}})
    require(r.min > 0 && r.min <= r.max && r.max <= 1,
            std::string("data: the ") + name + " crop area range [" + std::to_string(r.min) + ", " +
                std::to_string(r.max) + "] must satisfy 0 < min <= max <= 1");
  require(opt.max_bad_fraction >= 0 && opt.max_bad_fraction <= 1,
          "data.max-bad-fraction must be in [0, 1] (got " + std::to_string(opt.max_bad_fraction) + ")");
  require(opt.streams > 0, "data.streams must be positive (got " + std::to_string(opt.streams) + ")");
  require(opt.streams % opt.world_size == 0,
          "data.streams = " + std::to_string(opt.streams) + " is not a multiple of the " +
              std::to_string(opt.world_size) + " ranks: set data.streams to a multiple of every rank count the run " +
              "will use (e.g. 64 for 1-64 ranks in powers of two, 96 or 192 for multiples of 3)");
  require(opt.shuffle_block > 0, "data.shuffle-block must be positive (got " + std::to_string(opt.shuffle_block) + ")");
  require(opt.workers >= 0 && opt.workers <= 256, "data.workers must be in [0, 256] (got " + std::to_string(opt.workers) + ")");
  require(opt.prefetch > 0, "data.prefetch must be positive (got " + std::to_string(opt.prefetch) + ")");
  if (!tokenize) throw std::invalid_argument("TrainLoader: tokenize callback is empty");
  Impl& s = *impl_;
  s.opt = std::move(opt);
  s.tokenize = std::move(tokenize);
  s.shards = list_shards(s.opt.shards);
  s.layout.emplace(shard_sample_counts(s.shards), s.opt.streams, s.opt.seed);
  // Decode just large enough that the smallest crop keeps full resolution at image_size.
  const double min_area = std::min(s.opt.global_crop.min, s.opt.local_crop.min);
  s.decode_min_side = static_cast<int>(std::ceil(s.opt.image_size / std::sqrt(min_area)));
}

TrainLoader::~TrainLoader() { impl_->shutdown(); }

void TrainLoader::restore(const LoaderState& st) {
  Impl& s = *impl_;
  if (s.started) throw std::logic_error("TrainLoader::restore after next()");
  const std::string fix = ": resume with the data settings of the saved run, or start a new run";
  require(st.complete(), "data: the saved loader state misses some streams (a rank's part was lost)" + fix);
  require(st.seed == s.opt.seed, "data: the saved loader state has seed " + std::to_string(st.seed) + ", not " +
                                     std::to_string(s.opt.seed) + fix);
  require(st.streams == s.opt.streams, "data: the saved loader state has " + std::to_string(st.streams) +
                                           " streams, data.streams is " + std::to_string(s.opt.streams) + fix);
  require(st.block == s.opt.shuffle_block, "data: the saved loader state has data.shuffle-block " +
                                               std::to_string(st.block) + ", not " +
                                               std::to_string(s.opt.shuffle_block) + fix);
  require(st.num_shards == static_cast<int64_t>(s.shards.size()) && st.shards_hash == shard_list_hash(s.shards) &&
              st.epoch_samples == s.layout->epoch_samples(),
          "data: the saved loader state was made on a different shard list (" + std::to_string(st.num_shards) +
              " shards of " + std::to_string(st.epoch_samples) + " samples per epoch, now " +
              std::to_string(s.shards.size()) + " of " + std::to_string(s.layout->epoch_samples()) + ")" + fix);
  require(st.position % s.opt.world_size == 0,
          "data: the saved position " + std::to_string(st.position) + " is not a multiple of the " +
              std::to_string(s.opt.world_size) + " ranks: resume with a rank count that divides the global batch");
  s.start_position = st.position;
  s.start_cursors = st.cursors;
}

Batch TrainLoader::next() {
  Impl& s = *impl_;
  if (!s.started) s.start();
  const int64_t bsz = s.opt.batch_size, size = s.opt.image_size, image_numel = 3 * size * size;
  Batch batch;
  batch.global_images = at::empty({bsz, 3, size, size}, at::kFloat);
  batch.local_images = at::empty({bsz, 3, size, size}, at::kFloat);
  float* global = batch.global_images.data_ptr<float>();
  float* local = batch.local_images.data_ptr<float>();
  std::vector<Decoded> items;
  items.reserve(static_cast<size_t>(bsz));
  while (static_cast<int64_t>(items.size()) < bsz) {
    const size_t li = s.local_of(s.served + static_cast<int64_t>(items.size()));
    Decoded d = s.take(li);
    ++s.stats.samples_read;
    s.cursors[li] = d.after;
    if (!d.bad.empty()) {
      ++s.stats.samples_skipped;
      warn_bad(s.shards[static_cast<size_t>(d.shard)], d.key, "skipped: " + d.bad);
      s.check_bad_fraction();
      continue;  // the stream's next sample takes this position
    }
    if (!d.roi_dropped.empty()) {
      ++s.stats.members_dropped;
      warn_bad(s.shards[static_cast<size_t>(d.shard)], d.key,
               "dropped a corrupt .roi.npy (sample kept, ROIs masked): " + d.roi_dropped);
    }
    s.check_bad_fraction();
    const int64_t slot = static_cast<int64_t>(items.size());
    std::copy(d.global.begin(), d.global.end(), global + slot * image_numel);
    std::copy(d.local.begin(), d.local.end(), local + slot * image_numel);
    d.global = {};
    d.local = {};
    s.last_epoch = d.epoch;
    items.push_back(std::move(d));
  }
  s.served += bsz;
  s.assemble(items, batch);
  return batch;
}

LoaderState TrainLoader::state() const {
  const Impl& s = *impl_;
  LoaderState st;
  st.seed = s.opt.seed;
  st.streams = s.opt.streams;
  st.block = s.opt.shuffle_block;
  st.num_shards = static_cast<int64_t>(s.shards.size());
  st.shards_hash = shard_list_hash(s.shards);
  st.epoch_samples = s.layout->epoch_samples();
  st.position = s.start_position + s.served * s.opt.world_size;
  st.cursors.assign(static_cast<size_t>(s.opt.streams), StreamCursor{});
  st.held.assign(static_cast<size_t>(s.opt.streams), 0);
  for (int64_t sid = s.opt.rank, i = 0; sid < s.opt.streams; sid += s.opt.world_size, ++i) {
    st.held[static_cast<size_t>(sid)] = 1;
    st.cursors[static_cast<size_t>(sid)] =
        s.started ? s.cursors[static_cast<size_t>(i)]
                  : (s.start_cursors.empty() ? StreamCursor{} : s.start_cursors[static_cast<size_t>(sid)]);
  }
  return st;
}

int64_t TrainLoader::epoch() const { return impl_->last_epoch; }
int64_t TrainLoader::epoch_samples() const { return impl_->layout->epoch_samples(); }
int64_t TrainLoader::samples_seen() const { return impl_->served; }
DataStats TrainLoader::stats() const {
  DataStats d = impl_->stats;
  d.shards_damaged = impl_->shards_damaged.load();
  return d;
}
const std::vector<std::string>& TrainLoader::shards() const { return impl_->shards; }

}  // namespace pc
