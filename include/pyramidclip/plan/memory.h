#pragma once
// Model-state memory per GPU under ZeRO (Rajbhandari et al. 2020, §5), Ψ = parameters, N = GPUs.
//  mixed precision (bf16 weights and gradients, fp32 master weights + Adam moments, K = 12):
//    stage 0: 2Ψ + 2Ψ + 12Ψ = 16Ψ;  stage 1: 4Ψ + 12Ψ/N;  stage 2: 2Ψ + 14Ψ/N
//  fp32 (the weights are the master copy, K = 8):
//    stage 0: 4Ψ + 4Ψ + 8Ψ = 16Ψ;   stage 1: 8Ψ + 8Ψ/N;   stage 2: 4Ψ + 12Ψ/N
//  this trainer as implemented (fp32 parameters also under bf16 autocast; one flat fp32 gradient
//  buffer at every stage; stages 1/2 keep an fp32 master slice, stage 2 also its gradient slice):
//    stage 0: 16Ψ;  stage 1: 8Ψ + 12Ψ/N;  stage 2: 8Ψ + 16Ψ/N  (N = 1: the weights are the master,
//    stage 1: 16Ψ, stage 2: 20Ψ)
#include <cstdint>
#include <string>

namespace pc::plan {

enum class StateAccounting { kMixedPrecision, kFp32, kTrainer };

struct StateBytes {
  double weights = 0, gradients = 0, optimizer = 0;
  double total() const { return weights + gradients + optimizer; }
};

// psi_total counts every parameter (the weights), psi_trainable those with gradients/optimizer state.
StateBytes zero_state_bytes(double psi_total, double psi_trainable, int gpus, int stage, StateAccounting accounting);

// Checkpoint on disk (DESIGN §3): model.h5 (fp32 weights, 4Ψ) + the optimizer slices of all ranks
// (fp32 master + exp_avg + exp_avg_sq = 12Ψ_trainable) + state.h5 and the manifest (~1 MB).
double checkpoint_bytes(double psi_total, double psi_trainable);

}  // namespace pc::plan
