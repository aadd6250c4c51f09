#!/usr/bin/env bash
# Checkpoint write (issue #5): one rank's checkpoint save vs a raw write() + fsync of the same bytes
# on the same disk, and the training stall of an asynchronous save vs a synchronous save.
#
#   bash bench/run_ckpt_write.sh
#   CKPT_BENCH_DIR=/scratch/me bash bench/run_ckpt_write.sh    # measure another disk
#
# Builds bench_ckpt_write (BUILD_DIR, default build; JOBS build parallelism, default 2), then runs
# it once, directly (1-rank MPI by singleton init, no mpirun): ViT-B/16 (official) weights + a
# 1-rank ZeRO optimizer slice, REPS (5) interleaved repetitions of checkpoint / raw write +
# fsync (two sources) / async save / sync save / host copies, in a fresh directory under
# CKPT_BENCH_DIR (default /tmp) that it removes afterwards (see bench/bench_ckpt_write.cpp).
# Prints the medians and writes bench/results/ckpt_write.json. Environment: MODEL (vit-b16),
# OFFICIAL (1), REPS (5), THREADS (1). Extra arguments go to bench_ckpt_write. Needs ~3 GB of free
# disk and ~10 GB of memory; ~3 minutes on a 2-core machine after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
echo "== building bench_ckpt_write in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" --target bench_ckpt_write >/dev/null

source scripts/mpi_env.sh  # lets the MPI singleton run as root; OPENBLAS_CORETYPE
DIR=${CKPT_BENCH_DIR:-/tmp}
echo "== disk: $(df -hT "$DIR" | awk 'NR==2 {print $1", "$2", "$5" free of "$3}') ($DIR)"
mkdir -p bench/results
"$BUILD_DIR/bench/bench_ckpt_write" --dir "$DIR" --model "${MODEL:-vit-b16}" --official "${OFFICIAL:-1}" \
  --reps "${REPS:-5}" --threads "${THREADS:-1}" --json bench/results/ckpt_write.json "$@"
echo "== wrote bench/results/ckpt_write.json"
