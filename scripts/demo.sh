#!/usr/bin/env bash
# README command (a), the main job on the built-in synthetic dataset: install what is missing,
# build, generate data, train the tiny PyramidCLIP with `mpirun -np 2`, save the weights,
# print zero-shot top-1 on held-out synthetic images and sweep the kept checkpoints (eval curve).
# Checkpoints go to $RUN/checkpoints every 2 minutes: an interrupted demo (Ctrl-C) continues where
# it stopped when run again; a finished one is not retrained (set RUN to a new directory for a fresh run).
# Environment: NP (ranks, default 2), EPOCHS (override train.epochs), RUN (run directory).
set -euo pipefail
cd "$(dirname "$0")/.."
NP="${NP:-2}"
RUN="${RUN:-checkpoints/tiny}"
bash scripts/setup.sh
bash scripts/build.sh --target pyramidclip
source scripts/mpi_env.sh
BIN=build/pyramidclip

start=$(date +%s)
if [ ! -f data/synth/meta.json ]; then
  $BIN data synth --out data/synth
fi
extra=()
[ -n "${EPOCHS:-}" ] && extra+=(--train.epochs "$EPOCHS")
rc=0
mpirun -np "$NP" --oversubscribe --bind-to none $BIN train --config configs/tiny.cfg --train.run "$RUN" \
  --ckpt.every-minutes 2 "${extra[@]}" || rc=$?
if [ "$rc" -eq 75 ]; then
  echo "demo: stopped early with a checkpoint; run scripts/demo.sh again to continue"
  exit 75
fi
[ "$rc" -eq 0 ] || exit "$rc"
$BIN ckpt verify "$RUN"
$BIN eval --config "$RUN/config.cfg" --weights "$RUN/model.h5" --images data/synth/heldout \
  --classes data/synth/classes.txt --templates data/synth/templates.txt --output "$RUN/zero_shot.json"
# the eval curve over the kept checkpoints: $RUN/eval/results.csv and plot-<metric>.svg
$BIN sweep "$RUN/checkpoints" --threads 2 \
  --zeroshot heldout=data/synth/heldout,classes=data/synth/classes.txt,templates=data/synth/templates.txt
echo "demo: data + training + evaluation took $(( $(date +%s) - start ))s"
