// Picks the decoder for a WebDataset image member: by magic bytes first (a .jpg that is really
// a PNG still decodes), by extension otherwise.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"

namespace pc {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

bool is_image_extension(const std::string& ext) {
  const std::string e = lower(ext);
  return e == "jpg" || e == "jpeg" || e == "png";
}

Image decode_image(const void* data, size_t size, const std::string& ext, int min_side) {
  const auto* b = static_cast<const unsigned char*>(data);
  if (size == 0) throw CorruptData("empty image file");
  if (size >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return decode_jpeg(data, size, min_side);
  static const unsigned char kPngMagic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size >= 8 && std::memcmp(b, kPngMagic, 8) == 0) return decode_png(data, size);
  const std::string e = lower(ext);
  if (e == "jpg" || e == "jpeg") return decode_jpeg(data, size, min_side);  // reports what is wrong
  if (e == "png") return decode_png(data, size);
  throw CorruptData("unsupported image format '" + ext + "' (expected jpg, jpeg or png)");
}

}  // namespace pc
