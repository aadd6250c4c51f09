#pragma once
// One training batch as the model consumes it (DESIGN §2). Tensors that a dataset does not
// provide are left undefined; the loss then trains only the pairs it has.
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace pc {

struct Batch {
  at::Tensor global_images;  // [B,3,H,W] float32, CLIP-normalized; global view (90-100% area crop)
  at::Tensor local_images;   // [B,3,H,W] float32; local view (50-100% area crop)
  at::Tensor roi;            // [B,M,2052] float32 (2048 appearance + 4 normalized box) or undefined
  at::Tensor roi_mask;       // [B,M] bool, true where a region is real; undefined with roi
  at::Tensor text;           // [B,77] int64 original caption T
  at::Tensor summary;        // [B,77] int64 summary T_S or undefined
  at::Tensor tags;           // [B,77] int64 object-attribute text T_OA or undefined
  std::vector<std::string> keys;  // sample keys, for logs and exactly-once checks
  std::vector<int64_t> epochs;    // the epoch each sample was read in
  int64_t size() const { return global_images.defined() ? global_images.size(0) : 0; }
};

}  // namespace pc
