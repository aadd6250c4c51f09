// pyramidclip data synth: the built-in synthetic dataset, plus a BPE vocabulary trained on its
// texts (so the demo downloads nothing) and prompt templates in the captions' own phrasing.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>

#include "commands.h"
#include "options.h"
#include "pyramidclip/data/synth.h"
#include "pyramidclip/text/tokenizer.h"
#include "pyramidclip/util/errors.h"

namespace pc::cli {

int cmd_data_synth(int argc, char** argv) {
  SynthOptions d;
  po::options_description opts("Synth options");
  opts.add_options()
      ("out", po::value<std::string>()->required(), "output directory")
      ("train-samples", po::value<int64_t>()->default_value(d.train_samples), "training samples")
      ("shard-size", po::value<int>()->default_value(d.samples_per_shard), "samples per tar shard")
      ("image-size", po::value<int>()->default_value(d.image_size), "image side in pixels")
      ("heldout-per-class", po::value<int>()->default_value(d.heldout_per_class), "held-out images per class")
      ("seed", po::value<uint64_t>()->default_value(d.seed), "generator seed (same seed, same bytes)")
      ("threads", po::value<int>()->default_value(2), "writer threads (output does not depend on it)")
      ("vocab-merges", po::value<int>()->default_value(4000), "BPE merges to train on the texts (0: skip)");
  po::variables_map vm;
  if (!parse("data synth", "Writes WebDataset shards of synthetic scenes (DESIGN §3), a held-out split, class names, "
             "prompt templates and a BPE vocabulary.", opts, argc, argv, vm))
    return 0;
  SynthOptions o;
  o.out_dir = get<std::string>(vm, "out");
  o.train_samples = get<int64_t>(vm, "train-samples");
  o.samples_per_shard = get<int>(vm, "shard-size");
  o.image_size = get<int>(vm, "image-size");
  o.heldout_per_class = get<int>(vm, "heldout-per-class");
  o.seed = get<uint64_t>(vm, "seed");
  o.threads = get<int>(vm, "threads");
  const int merges = get<int>(vm, "vocab-merges");
  require(o.train_samples > 0, "--train-samples must be positive");
  require(o.samples_per_shard > 0, "--shard-size must be positive");
  require(o.image_size >= 16, "--image-size must be at least 16");
  require(o.heldout_per_class > 0, "--heldout-per-class must be positive");
  require(o.threads > 0, "--threads must be positive");
  require(merges >= 0 && merges <= Tokenizer::kMaxMerges, "--vocab-merges must be in [0, 48894]");

  SynthResult r = synth_dataset(o);
  {
    // Prompts phrased like the generated captions; the 80 ImageNet templates stay the default of eval.
    std::ofstream t(o.out_dir + "/templates.txt");
    for (const char* s : {"a {}.", "a picture of a {}.", "a single {}.", "this image shows one {}.",
                          "there is only one shape here: a {}."})
      t << s << '\n';
    require(t.good(), "cannot write " + o.out_dir + "/templates.txt");
  }
  if (merges > 0) {
    Tokenizer tok = Tokenizer::train(r.texts, merges);
    tok.save(o.out_dir + "/bpe_vocab.txt.gz");
    std::printf("data synth: trained a %d-token BPE vocabulary -> %s/bpe_vocab.txt.gz\n", tok.vocab_size(),
                o.out_dir.c_str());
  }
  return 0;
}

}  // namespace pc::cli
