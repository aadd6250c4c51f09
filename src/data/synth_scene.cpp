// Scene sampling and rasterization for the synthetic dataset. Shapes are drawn from signed
// distance functions with a one-pixel antialiased edge (coverage = clamp(0.5 - d, 0, 1)),
// restricted to each object's bounding box: ~50 us per 96 px image.
#include <algorithm>
#include <cmath>

#include "synth_internal.h"

namespace pc::synth {

const char* const kShapeNames[kShapes] = {"circle", "square", "triangle", "star", "cross", "ring"};
const char* const kColourNames[kColours] = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "white"};
const std::array<uint8_t, 3> kColourRgb[kColours] = {{220, 35, 35},  {245, 140, 25}, {240, 215, 35}, {45, 170, 60},
                                                     {35, 80, 225},  {135, 55, 190}, {245, 125, 185}, {245, 245, 245}};
const char* const kSizeNames[kSizes] = {"small", "medium", "large"};
const char* const kBgColourNames[kBgColours] = {"black", "dark gray", "light gray", "beige",
                                                "navy",  "brown",     "teal",       "olive"};
const std::array<uint8_t, 3> kBgColourRgb[kBgColours] = {{15, 15, 18},   {70, 70, 72},  {175, 175, 178}, {225, 210, 180},
                                                         {20, 30, 85},   {105, 65, 35}, {25, 115, 115},  {105, 105, 40}};

namespace {

constexpr float kPi = 3.14159265358979f;
constexpr float kSizeFraction[kSizes] = {0.09f, 0.14f, 0.20f};  // half extent / image size

struct Vec2 {
  float x, y;
};

// Inigo Quilez's exact signed distance to a simple polygon (negative inside).
float polygon_sdf(Vec2 p, const Vec2* v, int n) {
  float d = (p.x - v[0].x) * (p.x - v[0].x) + (p.y - v[0].y) * (p.y - v[0].y);
  float s = 1.0f;
  for (int i = 0, j = n - 1; i < n; j = i, ++i) {
    const Vec2 e{v[j].x - v[i].x, v[j].y - v[i].y};
    const Vec2 w{p.x - v[i].x, p.y - v[i].y};
    const float t = std::clamp((w.x * e.x + w.y * e.y) / (e.x * e.x + e.y * e.y), 0.0f, 1.0f);
    const Vec2 b{w.x - e.x * t, w.y - e.y * t};
    d = std::min(d, b.x * b.x + b.y * b.y);
    const bool c1 = p.y >= v[i].y, c2 = p.y < v[j].y, c3 = e.x * w.y > e.y * w.x;
    if ((c1 && c2 && c3) || (!c1 && !c2 && !c3)) s = -s;
  }
  return s * std::sqrt(d);
}

std::vector<Vec2> regular_star(int points, float inner) {
  std::vector<Vec2> v;
  for (int i = 0; i < 2 * points; ++i) {
    const float a = -kPi / 2 + i * kPi / points;
    const float rad = i % 2 == 0 ? 1.0f : inner;
    v.push_back({rad * std::cos(a), rad * std::sin(a)});
  }
  return v;
}

std::vector<Vec2> triangle() {
  std::vector<Vec2> v;
  for (int i = 0; i < 3; ++i) {  // pointing up, centred on its bounding circle
    const float a = -kPi / 2 + i * 2 * kPi / 3;
    v.push_back({std::cos(a), std::sin(a) + 0.15f});
  }
  return v;
}

// Polygon vertices of a shape with unit half extent, before rotation and scaling (empty for
// circle and ring, which have their own distance functions).
const std::vector<Vec2>& unit_polygon(int shape) {
  constexpr float a = 0.32f, b = 0.95f, q = 0.85f;
  static const std::vector<Vec2> kPolygons[kShapes] = {
      {},
      {{-q, -q}, {q, -q}, {q, q}, {-q, q}},
      triangle(),
      regular_star(5, 0.45f),
      {{-a, -b}, {a, -b}, {a, -a}, {b, -a}, {b, a}, {a, a}, {a, b}, {-a, b}, {-a, a}, {-b, a}, {-b, -a}, {-a, -a}},
      {}};
  return kPolygons[shape];
}

void fill_background(Image& img, const Background& bg) {
  const int s = img.width;
  const auto& a = kBgColourRgb[bg.colour_a];
  const auto& b = kBgColourRgb[bg.colour_b];
  // Noise texture: value noise on an 8x8 lattice, bilinearly interpolated, plus fine grain.
  float lattice[9][9];
  Rng noise(bg.noise_seed);
  if (bg.kind == BgKind::kNoise)
    for (auto& row : lattice)
      for (float& v : row) v = static_cast<float>(noise.uniform(-40.0, 40.0));
  for (int y = 0; y < s; ++y) {
    for (int x = 0; x < s; ++x) {
      float t = 0.0f, delta = 0.0f;
      switch (bg.kind) {
        case BgKind::kSolid:
          break;
        case BgKind::kGradient:
          t = bg.direction == 0 ? x / float(s - 1) : bg.direction == 1 ? y / float(s - 1) : (x + y) / float(2 * s - 2);
          break;
        case BgKind::kStripes: {
          const int coord = bg.direction == 0 ? x : bg.direction == 1 ? y : x + y;
          t = (coord / bg.stripe_period) % 2 == 0 ? 0.0f : 1.0f;
          break;
        }
        case BgKind::kNoise: {
          const float gx = x * 8.0f / s, gy = y * 8.0f / s;
          const int ix = static_cast<int>(gx), iy = static_cast<int>(gy);
          const float fx = gx - ix, fy = gy - iy;
          delta = lattice[iy][ix] * (1 - fx) * (1 - fy) + lattice[iy][ix + 1] * fx * (1 - fy) +
                  lattice[iy + 1][ix] * (1 - fx) * fy + lattice[iy + 1][ix + 1] * fx * fy;
          delta += static_cast<float>(static_cast<int>(noise.below(21)) - 10);
          break;
        }
      }
      uint8_t* p = img.pixel(x, y);
      for (int c = 0; c < 3; ++c) {
        const float v = a[c] * (1 - t) + b[c] * t + delta;
        p[c] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, v) + 0.5f));
      }
    }
  }
}

void draw_object(Image& img, const Object& o) {
  const int s = img.width;
  const std::vector<Vec2>& poly0 = unit_polygon(o.shape);
  std::vector<Vec2> poly(poly0.size());
  const float ca = std::cos(o.angle), sa = std::sin(o.angle);
  for (size_t i = 0; i < poly0.size(); ++i)
    poly[i] = {o.cx + o.r * (ca * poly0[i].x - sa * poly0[i].y), o.cy + o.r * (sa * poly0[i].x + ca * poly0[i].y)};
  float rgb[3];
  for (int c = 0; c < 3; ++c) rgb[c] = std::min(255.0f, kColourRgb[o.colour][c] * o.brightness);
  const int x0 = std::max(0, static_cast<int>(std::floor(o.x1)) - 1), x1 = std::min(s - 1, static_cast<int>(o.x2) + 1);
  const int y0 = std::max(0, static_cast<int>(std::floor(o.y1)) - 1), y1 = std::min(s - 1, static_cast<int>(o.y2) + 1);
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      const Vec2 p{x + 0.5f, y + 0.5f};
      float d;
      const float dist = std::hypot(p.x - o.cx, p.y - o.cy);
      if (o.shape == 0) d = dist - o.r;                                     // circle
      else if (o.shape == 5) d = std::fabs(dist - 0.72f * o.r) - 0.28f * o.r;  // ring
      else d = polygon_sdf(p, poly.data(), static_cast<int>(poly.size()));
      const float cover = std::clamp(0.5f - d, 0.0f, 1.0f);
      if (cover <= 0.0f) continue;
      uint8_t* px = img.pixel(x, y);
      for (int c = 0; c < 3; ++c) px[c] = static_cast<uint8_t>(px[c] * (1 - cover) + rgb[c] * cover + 0.5f);
    }
  }
}

// Bounding box of the drawn shape (tight for circle/ring, from the rotated polygon otherwise).
void set_bbox(Object& o, int image_size) {
  float x1 = o.cx - o.r, x2 = o.cx + o.r, y1 = o.cy - o.r, y2 = o.cy + o.r;
  const std::vector<Vec2>& poly = unit_polygon(o.shape);
  if (!poly.empty()) {
    x1 = y1 = 1e9f;
    x2 = y2 = -1e9f;
    const float ca = std::cos(o.angle), sa = std::sin(o.angle);
    for (const Vec2& v : poly) {
      const float px = o.cx + o.r * (ca * v.x - sa * v.y), py = o.cy + o.r * (sa * v.x + ca * v.y);
      x1 = std::min(x1, px), x2 = std::max(x2, px), y1 = std::min(y1, py), y2 = std::max(y2, py);
    }
  }
  const float s = static_cast<float>(image_size);
  o.x1 = std::clamp(x1, 0.0f, s), o.x2 = std::clamp(x2, 0.0f, s);
  o.y1 = std::clamp(y1, 0.0f, s), o.y2 = std::clamp(y2, 0.0f, s);
}

float box_area(const Object& o) { return std::max(0.0f, o.x2 - o.x1) * std::max(0.0f, o.y2 - o.y1); }
float overlap(const Object& a, const Object& b) {
  const float w = std::min(a.x2, b.x2) - std::max(a.x1, b.x1), h = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  return w > 0 && h > 0 ? w * h : 0.0f;
}

Object place_object(Rng& rng, int image_size, int shape, int colour, int size) {
  Object o;
  o.shape = shape;
  o.colour = colour;
  o.size = size;
  o.r = kSizeFraction[size] * image_size * static_cast<float>(rng.uniform(0.9, 1.1));
  o.cx = static_cast<float>(rng.uniform(o.r, image_size - o.r));
  o.cy = static_cast<float>(rng.uniform(o.r, image_size - o.r));
  o.angle = shape == 0 || shape == 5 ? 0.0f : static_cast<float>(rng.uniform(-0.35, 0.35));
  o.brightness = static_cast<float>(rng.uniform(0.88, 1.08));
  set_bbox(o, image_size);
  return o;
}

Background sample_background(Rng& rng) {
  Background bg;
  const double u = rng.uniform();
  bg.kind = u < 0.4 ? BgKind::kSolid : u < 0.65 ? BgKind::kGradient : u < 0.85 ? BgKind::kNoise : BgKind::kStripes;
  bg.colour_a = static_cast<int>(rng.below(kBgColours));
  bg.colour_b = static_cast<int>(rng.below(kBgColours - 1));
  if (bg.colour_b >= bg.colour_a) ++bg.colour_b;  // two different colours
  bg.direction = static_cast<int>(rng.below(3));
  bg.stripe_period = static_cast<int>(rng.range(6, 14));
  bg.noise_seed = rng.next_u64();
  return bg;
}

}  // namespace

Scene sample_scene(Rng& rng, int image_size, int min_objects, int max_objects) {
  Scene scene;
  scene.bg = sample_background(rng);
  const int n = static_cast<int>(rng.range(min_objects, max_objects));
  for (int k = 0; k < n; ++k) {
    const int shape = static_cast<int>(rng.below(kShapes));
    const int colour = static_cast<int>(rng.below(kColours));
    const int size = static_cast<int>(rng.below(kSizes));
    // Up to 20 placements such that no two boxes share more than 45% of either one (so an
    // earlier object is never hidden); otherwise the last try is kept. Overlaps of more than a
    // sliver are recorded and the caption names them.
    Object best;
    for (int attempt = 0; attempt < 20; ++attempt) {
      Object o = place_object(rng, image_size, shape, colour, size);
      bool ok = true;
      for (const Object& e : scene.objects) {
        if (overlap(o, e) > 0.45f * box_area(e) || overlap(o, e) > 0.45f * box_area(o)) {
          ok = false;
          break;
        }
      }
      best = o;
      if (ok) break;
    }
    const int idx = static_cast<int>(scene.objects.size());
    for (Object& e : scene.objects)
      if (e.covered_by < 0 && overlap(best, e) > 0.08f * box_area(e)) e.covered_by = idx;
    scene.objects.push_back(best);
  }
  return scene;
}

Scene single_object_scene(Rng& rng, int image_size, int shape, int colour) {
  Scene scene;
  scene.bg = sample_background(rng);
  const int size = static_cast<int>(rng.below(kSizes));
  scene.objects.push_back(place_object(rng, image_size, shape, colour, size));
  return scene;
}

Image render_scene(const Scene& scene, int image_size) {
  Image img;
  img.width = img.height = image_size;
  img.rgb.resize(static_cast<size_t>(image_size) * image_size * 3);
  fill_background(img, scene.bg);
  for (const Object& o : scene.objects) draw_object(img, o);
  return img;
}

}  // namespace pc::synth
