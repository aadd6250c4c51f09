// Texts of a synthetic scene: the long caption (varied templates: every object's colour, size,
// shape and position, the background, occlusions, one spatial relation), the short summary
// ("a red circle and a blue square") and the object-attribute tags ("small red circle, ...").
#include <cmath>
#include <string>
#include <vector>

#include "synth_internal.h"

namespace pc::synth {
namespace {

const char* const kNumberWords[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight"};

std::string number_word(size_t n) { return n < 9 ? kNumberWords[n] : std::to_string(n); }

std::string capitalize(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

template <size_t N>
const char* pick(Rng& rng, const char* const (&options)[N]) {
  return options[rng.below(N)];
}

std::string subst(std::string t, const std::string& key, const std::string& value) {
  for (size_t p = t.find(key); p != std::string::npos; p = t.find(key, p + value.size())) t.replace(p, key.size(), value);
  return t;
}

std::string object_name(const Object& o) { return std::string(kColourNames[o.colour]) + " " + kShapeNames[o.shape]; }

// "a red circle, a blue square and a green star"
std::string join_list(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) s += i + 1 == items.size() ? " and " : ", ";
    s += items[i];
  }
  return s;
}

// "a orange circle" -> "an orange circle" (templates put the article before any word).
std::string fix_articles(std::string s) {
  auto vowel = [](char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; };
  for (size_t p = 0; p + 2 < s.size(); ++p) {
    const bool word_start = p == 0 || s[p - 1] == ' ';
    if (word_start && (s[p] == 'a' || s[p] == 'A') && s[p + 1] == ' ' && vowel(s[p + 2])) s.insert(p + 1, "n");
  }
  return s;
}

}  // namespace

std::string background_phrase(const Background& bg) {
  const std::string a = kBgColourNames[bg.colour_a], b = kBgColourNames[bg.colour_b];
  static const char* const kDir[] = {"from left to right", "from top to bottom", "diagonally"};
  switch (bg.kind) {
    case BgKind::kSolid:
      return "a plain " + a + " background";
    case BgKind::kGradient:
      return "a background that fades from " + a + " to " + b + " " + kDir[bg.direction];
    case BgKind::kNoise:
      return "a noisy " + a + " texture";
    case BgKind::kStripes:
      return std::string("a background of ") + a + " and " + b + (bg.direction == 0 ? " vertical" : bg.direction == 1 ? " horizontal" : " diagonal") + " stripes";
  }
  return "a background";
}

std::string position_phrase(const Object& o, int image_size) {
  const float s = static_cast<float>(image_size);
  const int col = o.cx < s / 3 ? 0 : o.cx < 2 * s / 3 ? 1 : 2;
  const int row = o.cy < s / 3 ? 0 : o.cy < 2 * s / 3 ? 1 : 2;
  static const char* const kPos[3][3] = {
      {"in the top left corner", "at the top", "in the top right corner"},
      {"on the left", "in the center", "on the right"},
      {"in the bottom left corner", "at the bottom", "in the bottom right corner"}};
  return kPos[row][col];
}

std::string scene_summary(const Scene& scene) {
  std::vector<std::string> items;
  for (const Object& o : scene.objects) items.push_back("a " + object_name(o));
  return fix_articles(join_list(items));
}

std::string scene_tags(const Scene& scene) {
  std::string s;
  for (const Object& o : scene.objects) {
    if (!s.empty()) s += ", ";
    s += std::string(kSizeNames[o.size]) + " " + object_name(o);
  }
  return s;
}

std::string scene_caption(const Scene& scene, int image_size, Rng& rng) {
  const size_t n = scene.objects.size();
  const std::string bg = background_phrase(scene.bg);
  std::string text;
  if (n == 1) {
    static const char* const kSingle[] = {
        "A single {size} {obj} {pos} on {bg}.", "This image shows one {size} {obj} {pos}, drawn on {bg}.",
        "A picture of a {size} {obj} sitting {pos} against {bg}.", "There is only one shape here: a {size} {obj} {pos} on {bg}."};
    const Object& o = scene.objects[0];
    text = subst(subst(subst(subst(pick(rng, kSingle), "{size}", kSizeNames[o.size]), "{obj}", object_name(o)), "{pos}",
                     position_phrase(o, image_size)),
                "{bg}", bg);
    return fix_articles(text);
  }
  static const char* const kIntro[] = {
      "A picture of {n} shapes on {bg}.", "This image shows {n} simple shapes drawn on {bg}.",
      "An image with {n} geometric objects against {bg}.", "Here we see {n} shapes arranged on {bg}."};
  text = subst(subst(pick(rng, kIntro), "{n}", number_word(n)), "{bg}", bg);
  static const char* const kObject[] = {
      "There is a {size} {obj} {pos}.", "A {obj} of {size} size sits {pos}.", "{Pos}, you can see a {size} {obj}.",
      "The {shape} {pos} is {colour} and {size}.", "A {size} {colour} {shape} appears {pos}."};
  for (const Object& o : scene.objects) {
    const std::string pos = position_phrase(o, image_size);
    std::string t = pick(rng, kObject);
    t = subst(t, "{Pos}", capitalize(pos));
    t = subst(t, "{pos}", pos);
    t = subst(t, "{size}", kSizeNames[o.size]);
    t = subst(t, "{obj}", object_name(o));
    t = subst(t, "{shape}", kShapeNames[o.shape]);
    t = subst(t, "{colour}", kColourNames[o.colour]);
    text += " " + t;
  }
  for (const Object& o : scene.objects) {
    if (o.covered_by < 0) continue;
    static const char* const kCover[] = {"The {top} partly covers the {under}.", "The {under} is partly hidden behind the {top}.",
                                         "The {top} overlaps the {under}."};
    text += " " + subst(subst(pick(rng, kCover), "{top}", object_name(scene.objects[o.covered_by])), "{under}", object_name(o));
  }
  // One spatial relation between the first two objects, when they are clearly apart.
  const Object &a = scene.objects[0], &b = scene.objects[1];
  const float dx = b.cx - a.cx, dy = b.cy - a.cy, gap = 0.15f * image_size;
  if (std::fabs(dx) > gap && std::fabs(dx) >= std::fabs(dy)) {
    text += " The " + object_name(a) + " is to the " + (dx > 0 ? "left" : "right") + " of the " + object_name(b) + ".";
  } else if (std::fabs(dy) > gap) {
    text += " The " + object_name(a) + " is " + (dy > 0 ? "above" : "below") + " the " + object_name(b) + ".";
  }
  return fix_articles(text);
}

}  // namespace pc::synth
