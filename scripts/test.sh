#!/usr/bin/env bash
# README command (b): install what is missing, build, run the whole suite (unit + 2-rank MPI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
source scripts/mpi_env.sh
cd build && ctest --output-on-failure --timeout 900 "$@"
