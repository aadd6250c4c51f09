// .npy reader/writer: the header is a Python dict literal, e.g.
//   {'descr': '<f2', 'fortran_order': False, 'shape': (3, 2052), }
// padded with spaces to a multiple of 64 bytes and ended by '\n'.
#include <cctype>
#include <cstring>
#include <string>

#include "pyramidclip/data/data_error.h"
#include "pyramidclip/data/npy.h"

namespace pc {
namespace {

// Value text of `'key': <value>` in the header dict (up to the next ',' at depth 0 or '}').
bool dict_value(const std::string& header, const std::string& key, std::string& value) {
  const std::string k1 = "'" + key + "'", k2 = "\"" + key + "\"";
  size_t p = header.find(k1);
  if (p == std::string::npos) p = header.find(k2);
  if (p == std::string::npos) return false;
  p = header.find(':', p);
  if (p == std::string::npos) return false;
  ++p;
  int depth = 0;
  size_t e = p;
  for (; e < header.size(); ++e) {
    const char c = header[e];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
    if (depth < 0) return false;
  }
  if (depth != 0) return false;
  value = header.substr(p, e - p);
  const auto first = value.find_first_not_of(" \t");
  const auto last = value.find_last_not_of(" \t");
  value = first == std::string::npos ? "" : value.substr(first, last - first + 1);
  return true;
}

std::vector<int64_t> parse_shape(const std::string& v) {
  if (v.size() < 2 || v.front() != '(' || v.back() != ')') throw CorruptData(".npy: bad shape " + v);
  std::vector<int64_t> shape;
  const std::string inner = v.substr(1, v.size() - 2);
  size_t i = 0;
  while (i < inner.size()) {
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) ++i;
    if (i >= inner.size()) break;
    if (!std::isdigit(static_cast<unsigned char>(inner[i]))) throw CorruptData(".npy: bad shape " + v);
    int64_t n = 0;
    while (i < inner.size() && std::isdigit(static_cast<unsigned char>(inner[i]))) {
      n = n * 10 + (inner[i] - '0');
      if (n > (int64_t{1} << 40)) throw CorruptData(".npy: absurd shape " + v);
      ++i;
    }
    shape.push_back(n);
  }
  return shape;
}

}  // namespace

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return static_cast<uint16_t>(sign | (abs > 0x7F800000u ? 0x7E00u : 0x7C00u));  // nan / inf
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // rounds past 65504: inf
  if (abs < 0x38800000u) {  // subnormal half (or zero): value = m * 2^-24
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half of the smallest subnormal
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    const int shift = 126 - static_cast<int>(exp);  // 14..24 + 1
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((abs >> 13) - (112u << 10));  // rebias exponent 127 -> 15
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
  return static_cast<uint16_t>(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, x;
  if (exp == 0x1F) {
    x = sign | 0x7F800000u | (mant << 13);
  } else if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // normalize the subnormal
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400u));
      x = sign | ((112u - e) << 23) | ((mant & 0x3FFu) << 13);
    }
  } else {
    x = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

NpyArray parse_npy(const void* data, size_t size) {
  const auto* b = static_cast<const unsigned char*>(data);
  if (size < 10 || std::memcmp(b, "\x93NUMPY", 6) != 0) throw CorruptData(".npy: missing \\x93NUMPY magic");
  const int major = b[6];
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = b[8] | (static_cast<size_t>(b[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) throw CorruptData(".npy: truncated header");
    header_len = b[8] | (static_cast<size_t>(b[9]) << 8) | (static_cast<size_t>(b[10]) << 16) |
                 (static_cast<size_t>(b[11]) << 24);
    offset = 12;
  } else {
    throw CorruptData(".npy: unsupported format version " + std::to_string(major));
  }
  if (offset + header_len > size) throw CorruptData(".npy: truncated header");
  const std::string header(reinterpret_cast<const char*>(b + offset), header_len);
  std::string descr, fortran, shape_text;
  if (!dict_value(header, "descr", descr) || !dict_value(header, "fortran_order", fortran) ||
      !dict_value(header, "shape", shape_text))
    throw CorruptData(".npy: header lacks descr/fortran_order/shape");
  if (fortran != "False") throw CorruptData(".npy: fortran_order arrays are not supported");
  int bytes = 0;
  if (descr == "'<f2'" || descr == "'|f2'" || descr == "\"<f2\"") bytes = 2;
  else if (descr == "'<f4'" || descr == "\"<f4\"") bytes = 4;
  else throw CorruptData(".npy: dtype " + descr + " is not float16/float32 (little-endian)");

  NpyArray arr;
  arr.shape = parse_shape(shape_text);
  if (arr.shape.empty() || arr.shape.size() > 2) throw CorruptData(".npy: expected a 1-D or 2-D array, got " + shape_text);
  int64_t n = 1;
  for (int64_t d : arr.shape) {
    n *= d;
    if (n > (int64_t{1} << 32)) throw CorruptData(".npy: absurd shape " + shape_text);
  }
  const size_t body = offset + header_len;
  if (size - body != static_cast<size_t>(n) * bytes)
    throw CorruptData(".npy: " + std::to_string(size - body) + " data bytes for shape " + shape_text + " (expected " +
                      std::to_string(n * bytes) + ")");
  arr.data.resize(static_cast<size_t>(n));
  const unsigned char* p = b + body;
  if (bytes == 4) {
    std::memcpy(arr.data.data(), p, static_cast<size_t>(n) * 4);  // x86/ARM are little-endian
  } else {
    for (int64_t i = 0; i < n; ++i) arr.data[i] = half_to_float(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
  }
  return arr;
}

std::string encode_npy(const float* values, int64_t rows, int64_t cols, NpyDtype dtype) {
  const bool half = dtype == NpyDtype::kFloat16;
  std::string header = std::string("{'descr': '") + (half ? "<f2" : "<f4") + "', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out = "\x93NUMPY";
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  const size_t n = static_cast<size_t>(rows * cols);
  const size_t start = out.size();
  if (half) {
    out.resize(start + 2 * n);
    for (size_t i = 0; i < n; ++i) {
      const uint16_t h = float_to_half(values[i]);
      out[start + 2 * i] = static_cast<char>(h & 0xFF);
      out[start + 2 * i + 1] = static_cast<char>(h >> 8);
    }
  } else {
    out.resize(start + 4 * n);
    std::memcpy(&out[start], values, 4 * n);
  }
  return out;
}

}  // namespace pc
