#pragma once
// NumPy .npy files (format 1.0/2.0/3.0, little-endian float16 / float32, C order), the format
// of the `K.roi.npy` ROI sidecars. Read into float32; written as float16 or float32.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pc {

enum class NpyDtype { kFloat16, kFloat32 };

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major, product(shape) values
  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
};

// Parses .npy bytes. Accepts '<f2', '<f4' ('|f2'... too), fortran_order False, 1-D or 2-D.
// Throws CorruptData naming what is wrong.
NpyArray parse_npy(const void* data, size_t size);

// Serializes a rows x cols float32 matrix as a version 1.0 .npy file.
std::string encode_npy(const float* values, int64_t rows, int64_t cols, NpyDtype dtype = NpyDtype::kFloat16);

// IEEE half <-> float, round to nearest even (numpy's rule).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

}  // namespace pc
