// PNG through libpng's simplified API (png_image_*), which handles palette, grayscale, 16-bit,
// tRNS and interlacing. Built only when CMake found libpng (PC_HAVE_LIBPNG); otherwise PNG
// members are reported as corrupt with a message saying why.
#include <cstring>
#include <string>
#include <vector>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"

#ifdef PC_HAVE_LIBPNG
#include <png.h>
#endif

namespace pc {

#ifdef PC_HAVE_LIBPNG

Image decode_png(const void* data, size_t size) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, data, size)) throw CorruptData(std::string("PNG: ") + png.message);
  if (png.width == 0 || png.height == 0 || static_cast<int64_t>(png.width) * png.height > kMaxImagePixels) {
    png_image_free(&png);
    throw CorruptData("PNG has implausible size " + std::to_string(png.width) + "x" + std::to_string(png.height));
  }
  // PIL's convert("RGB") drops alpha without compositing: read RGBA and keep RGB.
  const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  png.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  std::vector<uint8_t> buf(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, buf.data(), 0, nullptr)) {
    std::string msg = png.message;
    png_image_free(&png);
    throw CorruptData("PNG: " + msg);
  }
  Image img;
  img.width = static_cast<int>(png.width);
  img.height = static_cast<int>(png.height);
  if (!alpha) {
    img.rgb = std::move(buf);
  } else {
    const size_t n = static_cast<size_t>(img.width) * img.height;
    img.rgb.resize(n * 3);
    for (size_t i = 0; i < n; ++i)
      for (int c = 0; c < 3; ++c) img.rgb[3 * i + c] = buf[4 * i + c];
  }
  return img;
}

std::string encode_png(const Image& img) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(img.width);
  png.height = static_cast<png_uint_32>(img.height);
  png.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, img.rgb.data(), 0, nullptr))
    throw std::runtime_error(std::string("encode_png: ") + png.message);
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, img.rgb.data(), 0, nullptr))
    throw std::runtime_error(std::string("encode_png: ") + png.message);
  out.resize(size);
  return out;
}

#else

Image decode_png(const void*, size_t) {
  throw CorruptData("PNG support is not compiled in (libpng was not found when pyramidclip was built)");
}
std::string encode_png(const Image&) {
  throw std::runtime_error("PNG support is not compiled in (libpng was not found when pyramidclip was built)");
}

#endif

}  // namespace pc
