#pragma once
// Errors that every rank must leave a collective phase with together (set-up, resume, checkpoint
// saves): one rank's failure becomes the same SetupError on all ranks, so no rank is left waiting
// in a collective the others never enter.
#include <string>

#include "pyramidclip/util/errors.h"

namespace pc {

class Comm;

// A bad-input error every rank knows about (they agreed on it collectively): each rank can return
// normally, and only rank 0 needs to print it.
struct SetupError : UserError {
  using UserError::UserError;
};

// Collective: throws SetupError on every rank when any rank's `my_error` is non-empty. A failing
// rank throws its own message; the others throw `elsewhere`.
void raise_if_any_rank_failed(Comm& comm, const std::string& my_error, const std::string& elsewhere);

// Collective: the same for a step only rank 0 performed (its error is broadcast as a flag).
void raise_if_rank0_failed(Comm& comm, const std::string& rank0_error, const std::string& elsewhere);

}  // namespace pc
