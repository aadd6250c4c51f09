#pragma once
// 8-bit RGB images and their codecs: JPEG through libturbojpeg, PNG through libpng.
// Decoders throw CorruptData on bytes they cannot decode; they never crash on bad input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pc {

// Interleaved RGB, row-major, height x width x 3 bytes.
struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  bool empty() const { return width == 0 || height == 0; }
  uint8_t* pixel(int x, int y) { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* pixel(int x, int y) const { return rgb.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

// Images larger than this many pixels are refused as corrupt (a decompression bomb, not a photo).
constexpr int64_t kMaxImagePixels = 16384LL * 16384LL;

// Decodes a baseline/progressive JPEG (RGB, grayscale, CMYK/YCCK) to RGB. When min_side > 0 and
// the image is much larger, decodes at a reduced DCT scale (1/2, 1/4, 1/8): the smallest one
// whose shorter side is still >= min_side.
Image decode_jpeg(const void* data, size_t size, int min_side = 0);
// quality 1..100; 4:2:0 chroma subsampling (what cameras and img2dataset write).
std::string encode_jpeg(const Image& img, int quality = 90);
// Encodes 4-channel CMYK pixels (for tests of the CMYK path); stored Adobe-style (inverted).
std::string encode_jpeg_cmyk(const std::vector<uint8_t>& cmyk, int width, int height, int quality = 90);
// Encodes a grayscale image (one byte per pixel).
std::string encode_jpeg_gray(const std::vector<uint8_t>& gray, int width, int height, int quality = 90);

// Decodes any PNG (palette, gray, 16-bit, interlaced); alpha is dropped as PIL's convert("RGB") does.
Image decode_png(const void* data, size_t size);
std::string encode_png(const Image& img);

// Decodes by WebDataset extension ("jpg", "jpeg", "png"; case-insensitive), sniffing the magic
// bytes first so a mislabelled file still decodes. Throws CorruptData for anything else.
Image decode_image(const void* data, size_t size, const std::string& ext = "", int min_side = 0);

// True for the extensions decode_image handles.
bool is_image_extension(const std::string& ext);

}  // namespace pc
