#!/usr/bin/env bash
# Scaling harness (issue #7): trains `pyramidclip train` on synthetic data at 1..N ranks, strong
# scaling (fixed global batch) and weak scaling (fixed per-rank batch), reads each run's
# metrics.jsonl, skips the warm-up steps and reports medians: samples/s, samples/s per rank,
# efficiency, and the per-step breakdown (data wait, forward, backward, exposed comm, optimizer,
# checkpoint stall). Writes bench/results/scaling.json and bench/results/scaling.svg.
#
#   bash bench/run_scaling.sh                       # 1 and 2 ranks, tiny-clip, 40 steps (~6 min on 2 cores)
#   bash bench/run_scaling.sh --ranks "1 2 4 8" --steps 300 --launcher srun   # a cluster
#   bash bench/run_scaling.sh --mode strong --config configs/clip-vit-b32.cfg --global-batch 256 --per-rank-batch 32
#
# Options (each also as an environment variable in capitals, e.g. RANKS="1 2"):
#   --ranks LIST         rank counts (default "1 2")
#   --mode M             strong, weak or both (default both)
#   --steps S            steps per run (default 40; a few hundred on real hardware)
#   --warmup W           leading steps left out of the medians (default 10)
#   --config FILE        trainer config (default configs/tiny-clip.cfg); its [data] is replaced
#   --global-batch G     strong scaling's global batch (default 128)
#   --per-rank-batch B   weak scaling's per-rank batch (default 64)
#   --threads T          intra-op threads per rank (default 1)
#   --workers W          decode threads per rank (data.workers, default 2)
#   --bind B             mpirun binding: "core" (default: each rank bound to its own T cores,
#                        --map-by slot:PE=T), "none" (--bind-to none) or "default" (plain mpirun: Open
#                        MPI binds each rank to ONE core when np <= 2, whatever train.threads says)
#   --launcher L         mpirun (default) or srun (inside an allocation; srun -n N --cpus-per-task T)
#   --samples K          synthetic training samples (default 20000); data cached in --data DIR
#   --data DIR           synthetic dataset directory (default /tmp/pc_scaling_synth; made if missing)
#   --out FILE           JSON (default bench/results/scaling.json; the SVG goes beside it)
#   --bin PATH           pyramidclip binary (default $BUILD_DIR/pyramidclip, built if missing)
#   -- ARGS              extra `pyramidclip train` options for every run
set -euo pipefail
cd "$(dirname "$0")/.."

RANKS=${RANKS:-"1 2"}
MODE=${MODE:-both}
STEPS=${STEPS:-40}
WARMUP=${WARMUP:-10}
CONFIG=${CONFIG:-configs/tiny-clip.cfg}
GLOBAL_BATCH=${GLOBAL_BATCH:-128}
PER_RANK_BATCH=${PER_RANK_BATCH:-64}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-2}
BIND=${BIND:-core}
LAUNCHER=${LAUNCHER:-mpirun}
SAMPLES=${SAMPLES:-20000}
DATA=${DATA:-/tmp/pc_scaling_synth}
OUT=${OUT:-bench/results/scaling.json}
BUILD_DIR=${BUILD_DIR:-build}
BIN=${BIN:-$BUILD_DIR/pyramidclip}
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) RANKS=$2; shift 2 ;;
    --mode) MODE=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --config) CONFIG=$2; shift 2 ;;
    --global-batch) GLOBAL_BATCH=$2; shift 2 ;;
    --per-rank-batch) PER_RANK_BATCH=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --bind) BIND=$2; shift 2 ;;
    --launcher) LAUNCHER=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "run_scaling.sh: unknown option $1 (see the header of bench/run_scaling.sh)" >&2; exit 2 ;;
  esac
done
case "$MODE" in strong) MODES="strong" ;; weak) MODES="weak" ;; both) MODES="strong weak" ;;
  *) echo "run_scaling.sh: --mode must be strong, weak or both" >&2; exit 2 ;; esac
[ "$WARMUP" -lt "$STEPS" ] || { echo "run_scaling.sh: --warmup must be below --steps" >&2; exit 2; }

if [ ! -x "$BIN" ]; then
  echo "== building pyramidclip in $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target pyramidclip >/dev/null
fi
source scripts/mpi_env.sh
export OMP_NUM_THREADS=$THREADS  # the OpenMP (and OpenBLAS-openmp) pool of every thread of a rank

if [ ! -f "$DATA/meta.json" ] || ! grep -q "\"train_samples\": $SAMPLES\b" "$DATA/meta.json"; then
  echo "== pyramidclip data synth --out $DATA --train-samples $SAMPLES"
  rm -rf "$DATA"
  "$BIN" data synth --out "$DATA" --train-samples "$SAMPLES" >/dev/null
fi

RUNS=$(mktemp -d "${TMPDIR:-/tmp}/pc_scaling.XXXXXX")
trap 'rm -rf "$RUNS"' EXIT
launch() {  # ranks, then the pyramidclip command line
  local n=$1; shift
  if [ "$LAUNCHER" = srun ]; then
    srun -n "$n" --cpus-per-task "$THREADS" "$@"
  elif [ "$BIND" = none ]; then
    mpirun -np "$n" --bind-to none "$@"
  elif [ "$BIND" = default ]; then
    mpirun -np "$n" "$@"
  else
    mpirun -np "$n" --map-by "slot:PE=$THREADS" --bind-to core "$@"
  fi
}

for mode in $MODES; do
  for n in $RANKS; do
    if [ "$mode" = strong ]; then gb=$GLOBAL_BATCH; else gb=$((PER_RANK_BATCH * n)); fi
    if [ $((gb % n)) -ne 0 ]; then echo "== skip $mode n=$n: global batch $gb does not divide by $n"; continue; fi
    run="$RUNS/$mode-n$n"
    # enough epochs for STEPS steps; --stop-after ends the run after exactly STEPS (exit 75, with a checkpoint)
    epochs=$(/usr/bin/python3 -c "print(($STEPS + 2) * $gb / ($SAMPLES * 0.9))")
    echo "== $mode: $n rank(s) x $THREADS thread(s), global batch $gb ($((gb / n))/rank), $STEPS steps"
    start=$(date +%s.%N)
    rc=0
    launch "$n" "$BIN" train --config "$CONFIG" --data.train-shards "$DATA/train" --data.vocab "$DATA/bpe_vocab.txt.gz" \
      --train.run "$run" --train.global-batch "$gb" --train.threads "$THREADS" --data.workers "$WORKERS" \
      --train.epochs "$epochs" --stop-after "$STEPS" --resume none --ckpt.every-minutes 0 --train.log-every 1000 \
      "${EXTRA[@]}" >"$run.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 75 ]; then
      echo "run failed (exit $rc):" >&2; tail -20 "$run.log" >&2; exit 1
    fi
    echo "{\"mode\": \"$mode\", \"ranks\": $n, \"threads\": $THREADS, \"workers\": $WORKERS, \"global_batch\": $gb," \
         "\"wall_s\": $(awk "BEGIN{print $(date +%s.%N) - $start}"), \"loadavg\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >"$run.json"
  done
done

/usr/bin/python3 bench/scaling_summary.py --runs "$RUNS" --warmup "$WARMUP" --out "$OUT" \
  --command "bash bench/run_scaling.sh --ranks \"$RANKS\" --mode $MODE --steps $STEPS --warmup $WARMUP --config $CONFIG --global-batch $GLOBAL_BATCH --per-rank-batch $PER_RANK_BATCH --threads $THREADS --workers $WORKERS --bind $BIND --launcher $LAUNCHER"
