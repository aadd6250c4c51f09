#pragma once
// Internals of the synthetic dataset generator (synth_scene.cpp, synth_text.cpp, synth.cpp).
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "pyramidclip/data/image.h"
#include "pyramidclip/data/rng.h"

namespace pc::synth {

constexpr int kShapes = 6;    // circle square triangle star cross ring
constexpr int kColours = 8;   // object palette
constexpr int kSizes = 3;     // small medium large
constexpr int kBgColours = 8; // background palette
constexpr int kRoiAppearance = 2048, kRoiDim = 2052;

extern const char* const kShapeNames[kShapes];
extern const char* const kColourNames[kColours];
extern const std::array<uint8_t, 3> kColourRgb[kColours];
extern const char* const kSizeNames[kSizes];
extern const char* const kBgColourNames[kBgColours];
extern const std::array<uint8_t, 3> kBgColourRgb[kBgColours];

enum class BgKind { kSolid, kGradient, kNoise, kStripes };

struct Background {
  BgKind kind = BgKind::kSolid;
  int colour_a = 0, colour_b = 0;  // background palette indices
  int direction = 0;               // gradient / stripes: 0 horizontal, 1 vertical, 2 diagonal
  int stripe_period = 12;
  uint64_t noise_seed = 0;
};

struct Object {
  int shape = 0, colour = 0, size = 0;
  float cx = 0, cy = 0, r = 0;     // centre and half extent in pixels
  float angle = 0;                 // rotation in radians (not mentioned in text)
  float brightness = 1;            // colour jitter
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // bounding box in pixels
  int covered_by = -1;             // index of a later object that overlaps this one, or -1
};

struct Scene {
  Background bg;
  std::vector<Object> objects;  // drawing order: later objects are on top
};

// 1..max objects at varied positions; later objects may partly cover earlier ones, never hide one.
Scene sample_scene(Rng& rng, int image_size, int min_objects, int max_objects);
// One object of the given class, random size, position and background (held-out split).
Scene single_object_scene(Rng& rng, int image_size, int shape, int colour);
Image render_scene(const Scene& scene, int image_size);

// Texts: a long caption, a short summary, object-attribute tags.
std::string scene_caption(const Scene& scene, int image_size, Rng& rng);
std::string scene_summary(const Scene& scene);
std::string scene_tags(const Scene& scene);
std::string background_phrase(const Background& bg);
std::string position_phrase(const Object& o, int image_size);

// [M, 2052] row-major: attribute codebook sum + noise, then the normalized (jittered) box.
std::vector<float> roi_features(const Scene& scene, int image_size, Rng& rng);

}  // namespace pc::synth
