#!/usr/bin/env bash
# Activation checkpointing on the ViT-B/16 image tower (issue #4): peak activation memory and
# forward+backward step time with and without checkpointing, side by side in one run.
#
#   bash bench/run_act_ckpt.sh
#
# Builds bench_act_ckpt (BUILD_DIR, default build; JOBS build parallelism, default 2), then runs
# it: every configuration x repetition in a fresh process, interleaved; prints the medians and
# writes bench/results/act_ckpt.json. Environment: MODEL (vit-b16), OFFICIAL (1: LeFF blocks with
# BatchNorm), BATCH (8), REPS (5), STEPS (2 measured steps per process), THREADS (1: on a shared
# 2-core machine one intra-op thread keeps the step time from jumping when a neighbour takes a
# core, and CPU time = wall time shows whether it did). ~9 minutes on a 2-core machine after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
echo "== building bench_act_ckpt in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target bench_act_ckpt >/dev/null

source scripts/mpi_env.sh  # OPENBLAS_CORETYPE (the bench sets its thread count itself)
mkdir -p bench/results
"$BUILD_DIR/bench/bench_act_ckpt" --model "${MODEL:-vit-b16}" --official "${OFFICIAL:-1}" --batch "${BATCH:-8}" \
  --reps "${REPS:-5}" --steps "${STEPS:-2}" --threads "${THREADS:-1}" --json bench/results/act_ckpt.json
echo "== wrote bench/results/act_ckpt.json"
