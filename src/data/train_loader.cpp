// TrainLoader: shard assignment, a shuffle buffer, per-sample decode + augment, batch assembly.
#include "pyramidclip/data/train_loader.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "loader_internal.h"
#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/npy.h"
#include "pyramidclip/data/shard_list.h"
#include "pyramidclip/data/tar.h"
#include "pyramidclip/util/errors.h"

namespace pc {

using data_internal::warn_bad;

namespace {

// A sample checked out of a shard, not yet decoded.
struct Pending {
  RawSample raw;
  int64_t epoch = 0;
  size_t shard = 0;
};

struct Processed {
  std::string key;
  int64_t epoch = 0;
  std::vector<int32_t> text;
  std::optional<std::vector<int32_t>> summary, tags;
  std::vector<float> roi;    // rows x roi_dim
  int64_t roi_rows = 0;
  bool has_roi = false;
};

}  // namespace

struct TrainLoader::Impl {
  TrainLoaderOptions opt;
  TokenizeFn tokenize;
  std::vector<std::string> shards;
  bool striding = false;
  int decode_min_side = 0;
  size_t context = 0;  // token ids per text, from the first tokenize() call

  // stream position
  int64_t stream_epoch = -1;
  std::vector<size_t> epoch_shards;  // this rank's shards of stream_epoch, in reading order
  size_t next_shard = 0;
  std::unique_ptr<SampleReader> reader;
  size_t reader_shard = 0;
  int64_t index_in_shard = 0;
  bool epoch_exhausted = true;
  int64_t good_in_epoch = 0;

  std::vector<Pending> buffer;
  Rng buffer_rng{0};

  DataStats stats;
  int64_t last_epoch = 0, seen = 0;

  void start_epoch(int64_t e) {
    if (stream_epoch >= 0) check_bad_fraction(true);
    if (stream_epoch >= 0 && good_in_epoch == 0)
      throw UserError("rank " + std::to_string(opt.rank) + " found no usable sample in epoch " +
                      std::to_string(stream_epoch) + " of '" + opt.shards + "' (" + std::to_string(stats.bad()) +
                      " bad so far): check the shards hold .jpg/.png images with .txt captions");
    stream_epoch = e;
    const std::vector<size_t> order = epoch_shard_order(shards.size(), opt.seed, e);
    epoch_shards.clear();
    if (striding) {
      epoch_shards = order;
    } else {
      for (size_t i = static_cast<size_t>(opt.rank); i < order.size(); i += static_cast<size_t>(opt.world_size))
        epoch_shards.push_back(order[i]);
    }
    next_shard = 0;
    reader.reset();
    epoch_exhausted = false;
    good_in_epoch = 0;
    buffer_rng = Rng(mix_seed({opt.seed, 0xB0FFE4ULL, static_cast<uint64_t>(e), static_cast<uint64_t>(opt.rank)}));
  }

  // Next raw sample of this rank in the current epoch; false when the epoch's shards are done.
  bool read_raw(Pending& p) {
    for (;;) {
      if (!reader) {
        if (next_shard >= epoch_shards.size()) return false;
        reader_shard = epoch_shards[next_shard++];
        index_in_shard = 0;
        try {
          reader = std::make_unique<SampleReader>(shards[reader_shard]);
        } catch (const CorruptData& e) {
          ++stats.shards_damaged;
          warn_bad(shards[reader_shard], "", std::string("shard skipped: ") + e.what());
          continue;
        }
      }
      if (!reader->next(p.raw)) {
        if (reader->damaged()) {
          ++stats.shards_damaged;
          ++stats.samples_skipped;  // the sample cut by the damage; the rest of the shard is lost
          ++stats.samples_read;
          warn_bad(shards[reader_shard], "", "damaged, rest of the shard skipped: " + reader->error());
        }
        reader.reset();
        continue;
      }
      const int64_t idx = index_in_shard++;
      if (striding && idx % opt.world_size != opt.rank) continue;
      p.epoch = stream_epoch;
      p.shard = reader_shard;
      return true;
    }
  }

  // Next sample through the shuffle buffer; false at the end of the epoch (buffer drained).
  bool next_pending(Pending& out) {
    const size_t cap = static_cast<size_t>(std::max(1, opt.shuffle_buffer));
    while (!epoch_exhausted && buffer.size() < cap) {
      Pending p;
      if (!read_raw(p)) {
        epoch_exhausted = true;
        break;
      }
      buffer.push_back(std::move(p));
    }
    if (buffer.empty()) return false;
    const size_t j = cap > 1 ? static_cast<size_t>(buffer_rng.below(buffer.size())) : 0;
    std::swap(buffer[j], buffer.back());
    out = std::move(buffer.back());
    buffer.pop_back();
    return true;
  }

  std::vector<int32_t> tokens(const std::string& text) {
    std::vector<int32_t> ids = tokenize(text);
    if (context == 0) {
      if (ids.empty()) throw std::runtime_error("TrainLoader: the tokenize callback returned no ids");
      context = ids.size();
    }
    if (ids.size() != context)
      throw std::runtime_error("TrainLoader: the tokenize callback returned " + std::to_string(ids.size()) +
                               " ids after " + std::to_string(context) + " (it must pad to a fixed length)");
    return ids;
  }

  bool skip(const Pending& p, const std::string& why) {
    ++stats.samples_skipped;
    warn_bad(shards[p.shard], p.raw.key, "skipped: " + why);
    return false;
  }

  // Decodes one sample; its two views go straight into global_dst / local_dst ([3,S,S] each).
  bool process(Pending& p, Processed& out, float* global_dst, float* local_dst) {
    ++stats.samples_read;
    const RawSample& s = p.raw;
    std::string ext;
    const std::string* img_bytes = data_internal::find_image_member(s, ext);
    if (!img_bytes) return skip(p, "no image member (.jpg/.jpeg/.png)");
    auto cap = s.members.find("txt");
    if (cap == s.members.end()) return skip(p, "no caption member (.txt)");
    Image img;
    try {
      img = decode_image(img_bytes->data(), img_bytes->size(), ext, decode_min_side);
    } catch (const CorruptData& e) {
      return skip(p, std::string("corrupt .") + ext + ": " + e.what());
    }
    out.key = s.key;
    out.epoch = p.epoch;
    Rng aug(mix_seed({opt.seed, 0xA06ULL, static_cast<uint64_t>(p.epoch), data_internal::fnv1a(s.key)}));
    const CropBox g = sample_resized_crop(img.height, img.width, opt.global_crop, aug);
    const CropBox l = sample_resized_crop(img.height, img.width, opt.local_crop, aug);
    resized_crop_normalized(img, g, opt.image_size, global_dst);
    resized_crop_normalized(img, l, opt.image_size, local_dst);
    out.text = tokens(cap->second);
    out.summary.reset();
    out.tags.reset();
    if (auto it = s.members.find("summary.txt"); it != s.members.end()) out.summary = tokens(it->second);
    if (auto it = s.members.find("tags.txt"); it != s.members.end()) out.tags = tokens(it->second);
    out.has_roi = false;
    out.roi.clear();
    out.roi_rows = 0;
    if (auto it = s.members.find("roi.npy"); it != s.members.end()) {
      try {
        NpyArray a = parse_npy(it->second.data(), it->second.size());
        if (a.shape.size() != 2 || a.cols() != opt.roi_dim)
          throw CorruptData("shape [" + std::to_string(a.rows()) + "," + std::to_string(a.cols()) + "], expected [M," +
                            std::to_string(opt.roi_dim) + "]");
        out.roi_rows = std::min<int64_t>(a.rows(), opt.roi_count);
        a.data.resize(static_cast<size_t>(out.roi_rows * opt.roi_dim));
        out.roi = std::move(a.data);
        out.has_roi = true;
      } catch (const CorruptData& e) {
        ++stats.members_dropped;
        warn_bad(shards[p.shard], s.key, std::string("dropped a corrupt .roi.npy (sample kept, ROIs masked): ") + e.what());
        out.has_roi = true;  // the dataset has ROIs: this row is all-masked rather than the batch losing them
      }
    }
    ++good_in_epoch;
    return true;
  }

  void check_bad_fraction(bool epoch_end) {
    if (!epoch_end && stats.samples_read < 200) return;  // too few to judge a fraction
    if (stats.bad() > opt.max_bad_fraction * static_cast<double>(stats.samples_read) && stats.bad() > 0)
      throw UserError("data: " + std::to_string(stats.bad()) + " of " + std::to_string(stats.samples_read) +
                      " samples read on rank " + std::to_string(opt.rank) + " were corrupt or incomplete (more than " +
                      "data.max-bad-fraction = " + std::to_string(opt.max_bad_fraction) +
                      "; see the warnings above): repair the shards or raise data.max-bad-fraction");
  }

  // Fills the text and ROI tensors of a batch whose images are already in place.
  void assemble(std::vector<Processed>& items, Batch& batch) {
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
    batch.text = text_tensor([](const Processed& p) -> const std::vector<int32_t>& { return p.text; });
    const bool any_summary = std::any_of(items.begin(), items.end(), [](const Processed& p) { return p.summary.has_value(); });
    const bool any_tags = std::any_of(items.begin(), items.end(), [](const Processed& p) { return p.tags.has_value(); });
    if (any_summary)
      batch.summary = text_tensor([](const Processed& p) -> const std::vector<int32_t>& { return p.summary ? *p.summary : p.text; });
    if (any_tags)
      batch.tags = text_tensor([](const Processed& p) -> const std::vector<int32_t>& { return p.tags ? *p.tags : p.text; });

    if (std::any_of(items.begin(), items.end(), [](const Processed& p) { return p.has_roi; })) {
      const int64_t m = opt.roi_count, d = opt.roi_dim;
      batch.roi = at::zeros({b, m, d}, at::kFloat);
      batch.roi_mask = at::zeros({b, m}, at::kBool);
      float* r = batch.roi.data_ptr<float>();
      bool* mask = batch.roi_mask.data_ptr<bool>();
      for (int64_t i = 0; i < b; ++i) {
        const Processed& p = items[static_cast<size_t>(i)];
        std::copy(p.roi.begin(), p.roi.end(), r + i * m * d);
        std::fill(mask + i * m, mask + i * m + p.roi_rows, true);
      }
    }
    for (auto& it : items) batch.keys.push_back(std::move(it.key));
  }
};

std::vector<size_t> TrainLoader::epoch_shard_order(size_t num_shards, uint64_t seed, int64_t epoch) {
  std::vector<size_t> order(num_shards);
  for (size_t i = 0; i < num_shards; ++i) order[i] = i;
  Rng rng(mix_seed({seed, 0x5AADULL, static_cast<uint64_t>(epoch)}));
  rng.shuffle(order);
  return order;
}

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
  if (!tokenize) throw std::invalid_argument("TrainLoader: tokenize callback is empty");
  Impl& s = *impl_;
  s.opt = std::move(opt);
  s.tokenize = std::move(tokenize);
  s.shards = list_shards(s.opt.shards);
  s.striding = s.shards.size() < static_cast<size_t>(s.opt.world_size);
  // Decode just large enough that the smallest crop keeps full resolution at image_size.
  const double min_area = std::min(s.opt.global_crop.min, s.opt.local_crop.min);
  s.decode_min_side = static_cast<int>(std::ceil(s.opt.image_size / std::sqrt(min_area)));
  if (s.striding && s.opt.rank == 0)
    spdlog::warn("data: {} shards for {} ranks: every rank reads every shard and keeps every {}th sample; "
                 "write at least one shard per rank for efficient reading",
                 s.shards.size(), s.opt.world_size, s.opt.world_size);
}

TrainLoader::~TrainLoader() = default;

Batch TrainLoader::next() {
  Impl& s = *impl_;
  const int64_t bsz = s.opt.batch_size, size = s.opt.image_size, image_numel = 3 * size * size;
  Batch batch;
  batch.global_images = at::empty({bsz, 3, size, size}, at::kFloat);
  batch.local_images = at::empty({bsz, 3, size, size}, at::kFloat);
  float* global = batch.global_images.data_ptr<float>();
  float* local = batch.local_images.data_ptr<float>();
  std::vector<Processed> items;
  items.reserve(static_cast<size_t>(bsz));
  Pending p;
  Processed out;
  while (static_cast<int64_t>(items.size()) < bsz) {
    if (s.stream_epoch < 0) s.start_epoch(0);
    if (!s.next_pending(p)) {
      s.start_epoch(s.stream_epoch + 1);
      continue;
    }
    const int64_t slot = static_cast<int64_t>(items.size());
    const bool ok = s.process(p, out, global + slot * image_numel, local + slot * image_numel);
    s.check_bad_fraction(false);
    if (!ok) continue;  // the slot is overwritten by the next sample
    s.last_epoch = out.epoch;
    items.push_back(std::move(out));
  }
  s.seen += static_cast<int64_t>(items.size());
  s.assemble(items, batch);
  return batch;
}

int64_t TrainLoader::epoch() const { return impl_->last_epoch; }
int64_t TrainLoader::samples_seen() const { return impl_->seen; }
DataStats TrainLoader::stats() const { return impl_->stats; }
const std::vector<std::string>& TrainLoader::shards() const { return impl_->shards; }
bool TrainLoader::sample_striding() const { return impl_->striding; }

}  // namespace pc
