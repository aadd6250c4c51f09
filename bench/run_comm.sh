#!/usr/bin/env bash
# Gradient-sync benchmark (issue #4): raw MPI_Allreduce vs. the bucketed sync on a ViT-B/16-sized
# fp32 gradient (and a smaller one), and exposed communication per step with overlap on/off.
#
#   bash bench/run_comm.sh            # ~3 minutes on the 2-core VM after the build
#
# Builds bench_comm (BUILD_DIR, default build; JOBS, default 2), runs it under
# mpirun -np NP (default 2) and writes bench/results/comm.json. Extra arguments go to bench_comm
# (e.g. --sizes small --reps 3, --layers 8 --width 2048 --batch 64, --no-overlap).
# Environment: NP, BUILD_DIR, JOBS; OMPI_MCA_* settings pass through to Open MPI.
set -euo pipefail
cd "$(dirname "$0")/.."

NP=${NP:-2}
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-2}

echo "== building bench_comm in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS" --target bench_comm >/dev/null

source scripts/mpi_env.sh
mkdir -p bench/results
echo "== mpirun -np $NP bench_comm $*"
mpirun -np "$NP" "$BUILD_DIR/bench/bench_comm" --json bench/results/comm.json "$@"
