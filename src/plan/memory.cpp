// ZeRO model-state memory and checkpoint size (memory.h).
#include "pyramidclip/plan/memory.h"

#include "pyramidclip/util/errors.h"

namespace pc::plan {

StateBytes zero_state_bytes(double psi_total, double psi, int gpus, int stage, StateAccounting accounting) {
  require(stage >= 0 && stage <= 2, "ZeRO stage must be 0, 1 or 2, not " + std::to_string(stage));
  require(gpus >= 1, "the GPU count must be >= 1");
  const double n = gpus;
  StateBytes b;
  switch (accounting) {
    case StateAccounting::kMixedPrecision:
      b.weights = 2 * psi_total;
      b.gradients = stage == 2 ? 2 * psi / n : 2 * psi;
      b.optimizer = stage == 0 ? 12 * psi : 12 * psi / n;
      break;
    case StateAccounting::kFp32:
      b.weights = 4 * psi_total;
      b.gradients = stage == 2 ? 4 * psi / n : 4 * psi;
      b.optimizer = stage == 0 ? 8 * psi : 8 * psi / n;
      break;
    case StateAccounting::kTrainer:
      b.weights = 4 * psi_total;
      b.gradients = 4 * psi + (stage == 2 ? 4 * psi / n : 0);
      b.optimizer = stage == 0 || n == 1 ? 8 * psi : 12 * psi / n;  // one rank: the weights are the master
      break;
  }
  return b;
}

double checkpoint_bytes(double psi_total, double psi_trainable) { return 4 * psi_total + 12 * psi_trainable + 1e6; }

}  // namespace pc::plan
