// pyramidclip data pack: a caption table (CSV/TSV/JSONL) or an ImageFolder tree -> WebDataset shards.
#include <cstdio>

#include "commands.h"
#include "options.h"
#include "pyramidclip/data/pack.h"
#include "pyramidclip/util/errors.h"

namespace pc::cli {

int cmd_data_pack(int argc, char** argv) {
  PackOptions d;
  po::options_description opts("Pack options");
  opts.add_options()
      ("input", po::value<std::string>()->required(),
       "a .csv (RFC 4180, header row), .tsv (header row, no quoting) or .jsonl file with one sample per row, "
       "or an ImageFolder directory DIR/<class>/<image>")
      ("output", po::value<std::string>()->required(), "output directory for the shards, shards.txt (and classes.txt)")
      ("samples-per-shard", po::value<int64_t>()->default_value(d.samples_per_shard), "samples per tar shard")
      ("prefix", po::value<std::string>()->default_value(""), "shard name prefix: <prefix>00000.tar, ...")
      ("format", po::value<std::string>()->default_value("auto"),
       "auto (directory: imagefolder, else the file extension), csv, tsv, jsonl or imagefolder")
      ("columns", po::value<std::string>()->default_value(""),
       "column (JSONL: key) names when they differ from image, caption, summary, tags, roi: "
       "e.g. image=filepath,caption=text")
      ("base-dir", po::value<std::string>()->default_value(""),
       "directory that relative image/roi paths start from (default: the input file's directory)")
      ("jobs", po::value<int>()->default_value(d.jobs), "threads that read and validate images (output does not depend on it)")
      ("roi-dim", po::value<int64_t>()->default_value(d.roi_dim), "required second dimension of the [M, D] .npy ROI files")
      ("overwrite", po::bool_switch(), "replace shards already in --output (else refuse)");
  po::variables_map vm;
  if (!parse("data pack",
             "Packs images and captions into WebDataset shards (DESIGN §3): K.jpg|K.png (bytes unchanged), K.txt, "
             "optional K.summary.txt, K.tags.txt, K.roi.npy (float16/float32 [M,2052]) and K.json. Every image is "
             "decoded to validate it; missing or corrupt images, empty captions and bad .npy files are skipped with "
             "a warning. An ImageFolder gets captions \"a photo of a <class>.\", K.cls labels and classes.txt. "
             "The same input gives byte-identical shards.",
             opts, argc, argv, vm))
    return 0;
  PackOptions o;
  o.input = get<std::string>(vm, "input");
  o.out_dir = get<std::string>(vm, "output");
  o.samples_per_shard = get<int64_t>(vm, "samples-per-shard");
  o.prefix = get<std::string>(vm, "prefix");
  o.format = get<std::string>(vm, "format");
  o.columns = parse_pack_columns(get<std::string>(vm, "columns"));
  o.base_dir = get<std::string>(vm, "base-dir");
  o.jobs = get<int>(vm, "jobs");
  o.roi_dim = get<int64_t>(vm, "roi-dim");
  o.overwrite = get<bool>(vm, "overwrite");
  const PackReport r = pack_dataset(o);
  std::printf("%s\n", pack_summary(r, o.out_dir).c_str());
  return 0;
}

}  // namespace pc::cli
