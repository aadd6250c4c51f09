#pragma once
// Corrupt bytes in a dataset (an image that does not decode, a bad .npy, a truncated tar
// member). Not a UserError: the loaders catch it, skip the item, count it and log it; a run
// stops only past data.max-bad-fraction (DESIGN §3).
#include <stdexcept>
#include <string>

namespace pc {

struct CorruptData : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace pc
