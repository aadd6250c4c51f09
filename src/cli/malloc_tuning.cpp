#include "malloc_tuning.h"

#include <malloc.h>

#include <cstdlib>

namespace pc::cli {

void tune_malloc_for_training() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_") || std::getenv("MALLOC_TOP_PAD_"))
    return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest; also turns off its dynamic threshold
  mallopt(M_TRIM_THRESHOLD, 1 << 30);   // keep up to 1 GiB of free heap top instead of returning it
  mallopt(M_TOP_PAD, 64 << 20);         // grow the heap in 64 MiB steps (untouched pages cost nothing)
#endif
}

}  // namespace pc::cli
