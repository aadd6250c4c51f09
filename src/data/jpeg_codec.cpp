// JPEG encode/decode through libturbojpeg's TurboJPEG 2.x API (tjDecompress2 / tjCompress2;
// Debian 12 ships 2.1, which has no tj3* functions). Handles are per thread: creating one
// costs more than decoding a 96 px image. A handle that saw a corrupt image is thrown away:
// in 2.1 its state survives the error, and the next valid JPEG then fails ("Bogus Huffman
// table definition") -- one bad image would poison every later decode on that thread.
#include <turbojpeg.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/image.h"

namespace pc {
namespace {

struct TjHandle {
  tjhandle h = nullptr;
  ~TjHandle() { reset(); }
  void reset() {
    if (h) tjDestroy(h);
    h = nullptr;
  }
};

thread_local TjHandle tl_decompressor, tl_compressor;

tjhandle decompressor() {
  if (!tl_decompressor.h) tl_decompressor.h = tjInitDecompress();
  if (!tl_decompressor.h) throw std::runtime_error("tjInitDecompress failed: " + std::string(tjGetErrorStr2(nullptr)));
  return tl_decompressor.h;
}

tjhandle compressor() {
  if (!tl_compressor.h) tl_compressor.h = tjInitCompress();
  if (!tl_compressor.h) throw std::runtime_error("tjInitCompress failed: " + std::string(tjGetErrorStr2(nullptr)));
  return tl_compressor.h;
}

// Throws CorruptData with the handle's message and retires the handle (see the file comment).
[[noreturn]] void fail_decode(tjhandle h, const std::string& what) {
  const std::string msg = what + tjGetErrorStr2(h);
  tl_decompressor.reset();
  throw CorruptData(msg);
}

// libjpeg reports a truncated stream only as a warning and fills the rest with grey; PIL refuses
// such files by default, and so do we. Other warnings (extraneous bytes before a marker, ...)
// are harmless and the image is kept.
bool fatal_decode_error(tjhandle h) {
  if (tjGetErrorCode(h) != TJERR_WARNING) return true;
  const char* msg = tjGetErrorStr2(h);
  return msg && std::strstr(msg, "Premature end") != nullptr;
}

// After tjDecompress2: a fatal error throws; a harmless warning keeps the pixels but still
// retires the handle.
void check_decode(tjhandle h, int rc, const char* what) {
  if (rc == 0) return;
  if (fatal_decode_error(h)) fail_decode(h, what);
  tl_decompressor.reset();
}

// The smallest of 1/1, 1/2, 1/4, 1/8 that keeps the shorter side >= min_side. libjpeg-turbo 2.1
// also offers 15/16..3/8, but those IDCTs and upsamplers have no SIMD: on x86-64 a 7/8, 3/4 or 5/8
// decode takes 1.1-2.7x as long as the full-size one (bench/RESULTS.md, decode + augment).
tjscalingfactor pick_scale(int width, int height, int min_side) {
  tjscalingfactor best{1, 1};
  if (min_side <= 0) return best;
  int n = 0;
  tjscalingfactor* factors = tjGetScalingFactors(&n);
  const int short_side = std::min(width, height);
  for (int i = 0; i < n; ++i) {
    const tjscalingfactor f = factors[i];
    if (f.num != 1) continue;  // only ever downscale, and only by the SIMD-accelerated 1/2, 1/4, 1/8
    if (TJSCALED(short_side, f) < min_side) continue;
    if (static_cast<int64_t>(f.num) * best.denom < static_cast<int64_t>(best.num) * f.denom) best = f;
  }
  return best;
}

std::string compress(const uint8_t* pixels, int width, int height, int pixel_format, int subsamp, int quality) {
  if (width <= 0 || height <= 0) throw std::invalid_argument("encode_jpeg: empty image");
  tjhandle h = compressor();
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  if (tjCompress2(h, pixels, width, 0, height, pixel_format, &out, &out_size, subsamp, std::clamp(quality, 1, 100),
                  TJFLAG_ACCURATEDCT) != 0) {
    if (out) tjFree(out);
    const std::string msg = std::string("tjCompress2 failed: ") + tjGetErrorStr2(h);
    tl_compressor.reset();
    throw std::runtime_error(msg);
  }
  std::string result(reinterpret_cast<const char*>(out), out_size);
  tjFree(out);
  return result;
}

}  // namespace

Image decode_jpeg(const void* data, size_t size, int min_side) {
  if (size < 4 || size > (1ULL << 31)) throw CorruptData("not a JPEG (" + std::to_string(size) + " bytes)");
  tjhandle h = decompressor();
  const auto* buf = static_cast<const unsigned char*>(data);
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(h, buf, static_cast<unsigned long>(size), &width, &height, &subsamp, &colorspace) != 0)
    fail_decode(h, "JPEG header: ");
  if (width <= 0 || height <= 0 || static_cast<int64_t>(width) * height > kMaxImagePixels)
    throw CorruptData("JPEG has implausible size " + std::to_string(width) + "x" + std::to_string(height));

  const tjscalingfactor f = pick_scale(width, height, min_side);
  Image img;
  img.width = TJSCALED(width, f);
  img.height = TJSCALED(height, f);
  const int flags = TJFLAG_ACCURATEDCT;
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
    // libjpeg cannot convert CMYK to RGB itself. CMYK JPEGs in the wild are Adobe-style
    // (inverted: 255 = no ink), so R = C*K/255 etc. on the stored values.
    std::vector<uint8_t> cmyk(static_cast<size_t>(img.width) * img.height * 4);
    check_decode(h, tjDecompress2(h, buf, static_cast<unsigned long>(size), cmyk.data(), img.width, 0, img.height,
                                  TJPF_CMYK, flags),
                 "JPEG (CMYK): ");
    img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
    for (size_t i = 0, n = static_cast<size_t>(img.width) * img.height; i < n; ++i) {
      const unsigned k = cmyk[4 * i + 3];
      for (int c = 0; c < 3; ++c) img.rgb[3 * i + c] = static_cast<uint8_t>((cmyk[4 * i + c] * k + 127) / 255);
    }
    return img;
  }
  // Grayscale and YCbCr convert to RGB inside libjpeg.
  img.rgb.resize(static_cast<size_t>(img.width) * img.height * 3);
  check_decode(
      h, tjDecompress2(h, buf, static_cast<unsigned long>(size), img.rgb.data(), img.width, 0, img.height, TJPF_RGB, flags),
      "JPEG: ");
  return img;
}

std::string encode_jpeg(const Image& img, int quality) {
  if (img.rgb.size() != static_cast<size_t>(img.width) * img.height * 3)
    throw std::invalid_argument("encode_jpeg: pixel buffer does not match width x height x 3");
  return compress(img.rgb.data(), img.width, img.height, TJPF_RGB, TJSAMP_420, quality);
}

std::string encode_jpeg_cmyk(const std::vector<uint8_t>& cmyk, int width, int height, int quality) {
  if (cmyk.size() != static_cast<size_t>(width) * height * 4)
    throw std::invalid_argument("encode_jpeg_cmyk: pixel buffer does not match width x height x 4");
  return compress(cmyk.data(), width, height, TJPF_CMYK, TJSAMP_444, quality);
}

std::string encode_jpeg_gray(const std::vector<uint8_t>& gray, int width, int height, int quality) {
  if (gray.size() != static_cast<size_t>(width) * height)
    throw std::invalid_argument("encode_jpeg_gray: pixel buffer does not match width x height");
  return compress(gray.data(), width, height, TJPF_GRAY, TJSAMP_GRAY, quality);
}

}  // namespace pc
