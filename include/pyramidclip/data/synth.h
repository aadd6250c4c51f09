#pragma once
// A synthetic PyramidCLIP dataset that trains and evaluates in minutes on a CPU: scenes of 1-4
// coloured shapes with a long caption, a summary, object-attribute tags and detector-like ROI
// features, in the WebDataset format of DESIGN §3, plus a labelled held-out split for zero-shot.
//
// Layout under out_dir:
//   train/NNNNN.tar     K.jpg K.txt K.summary.txt K.tags.txt K.roi.npy (float16 [M,2052]) K.json
//   heldout/NNNNN.tar   K.jpg K.cls (class index, decimal)    -- single objects, a different seed
//   classes.txt         one class name per line ("red circle"), index = line number
//   meta.json           options, per-shard sample counts and sizes (count_samples reads it)
#include <cstdint>
#include <string>
#include <vector>

namespace pc {

struct SynthOptions {
  std::string out_dir;
  int64_t train_samples = 20000;
  int samples_per_shard = 1000;
  int image_size = 96;          // square images
  int jpeg_quality = 90;
  int heldout_per_class = 5;    // single-object images per (colour, shape) class
  int min_objects = 1, max_objects = 4;
  uint64_t seed = 0;
  int threads = 1;              // shards are independent; output is identical for any count
};

struct SynthResult {
  int64_t train_samples = 0, heldout_samples = 0;
  int train_shards = 0, heldout_shards = 0;
  int num_classes = 0;
  std::vector<std::string> classes;
  // Every caption, summary and tag text of the train split, in sample order (for BPE training).
  std::vector<std::string> texts;
  double seconds = 0;
};

// Writes the dataset (existing shards with the same names are replaced). Deterministic: the same
// options give byte-identical files. Throws UserError on bad options or an unwritable out_dir.
SynthResult synth_dataset(const SynthOptions& opt);

// The vocabulary of the generator, for tests and docs.
const std::vector<std::string>& synth_shape_names();
const std::vector<std::string>& synth_colour_names();
// Class names of the held-out split: "<colour> <shape>", index = shape * colours + colour.
std::vector<std::string> synth_class_names();

}  // namespace pc
