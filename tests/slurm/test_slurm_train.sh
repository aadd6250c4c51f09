#!/usr/bin/env bash
# test_slurm_train.sh PYRAMIDCLIP [SOURCE_DIR] -- the real trainer under slurm/train.sbatch on
# a real single-node Slurm (tests/slurm/start.sh), launched with mpirun on 2 ranks:
#   1. reference: the same training (100 steps) uninterrupted, with plain mpirun (in the
#      background, while the Slurm job runs);
#   2. one Slurm job of the same training, stopped three times while it trains: twice by
#      `scancel --signal=USR1 --batch` (batch shell -> trap -> USR1 to mpirun -> ranks) and
#      once by preemption (a job in partition "urgent"; USR1 at the start of the grace time).
#      Each time all ranks checkpoint, rank 0 requeues the job, all exit 75 and the job runs
#      again later, resuming from the checkpoint; the fourth run finishes by itself.
#   3. checks: JobState=COMPLETED, Restarts=3, SLURM_RESTART_COUNT=0..3 and three requeue
#      lines in the appended job output, three "resume:" and three "slurm: requeued" lines in
#      the run's logs/rank-0.log, and model.h5 byte-identical to the reference's (same rank
#      count: the resumed weights are bitwise equal; the HDF5 writer is deterministic).
# Exit 77 (ctest SKIP) when not root or when Slurm cannot be installed or started. Starts
# Slurm with tests/slurm/start.sh and stops it at the end only if this test started it.
# ~1.5-3 minutes (2 CPUs); serial because it may start/stop the cluster and uses both CPUs.
set -euo pipefail

BIN=${1:-}
SRC=$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
# Timeouts are generous: on a busy 2-core machine the steps run 2-3x slower than alone.
BUDGET_S=${SLURM_TEST_BUDGET_S:-480}  # hard limit for the whole test (ctest TIMEOUT is 600)
READY_S=90      # submit/requeue -> job RUNNING and the trainer past MIN_STEPS steps (requeue delay ~12 s)
STOP_S=45       # signal / urgent job -> the run checkpointed, requeued the job and ended
DONE_S=240      # last run started -> job COMPLETED (~90 steps at ~5 steps/s alone, plus start-up)
MIN_STEPS=3     # steps a run makes before it is signalled (its signal handlers are installed by then)
POLL=0.5        # seconds between polls

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; dump; exit 1; }
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then echo "FAIL: usage: $0 PYRAMIDCLIP [SOURCE_DIR] (no executable '$BIN')"; exit 1; fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[ -r "$SRC/slurm/train.sbatch" ] || { echo "FAIL: $SRC is not the source tree (no slurm/train.sbatch)"; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (installs and starts a local Slurm)"
command -v mpirun >/dev/null || skip "no mpirun"
# sbatch --export splits its value at commas
case "$BIN$SRC" in *,*) skip "a path holds a comma, which sbatch --export cannot pass: $BIN $SRC" ;; esac

W=$(mktemp -d /tmp/pc-slurm-train.XXXXXX)
started=0
jobs=()
out=
ref_pid=
cleanup() {
  local rc=$?
  if [ -n "$ref_pid" ]; then kill "$ref_pid" 2>/dev/null || true; fi
  # SIGKILL first: a trainer that gets scancel's SIGTERM checkpoints and requeues its job
  if [ "${#jobs[@]}" -gt 0 ]; then
    scancel --full --signal=KILL "${jobs[@]}" 2>/dev/null || true
    scancel "${jobs[@]}" 2>/dev/null || true
  fi
  if [ "$started" = 1 ]; then bash "$SRC/tests/slurm/stop.sh" >/dev/null || true; fi
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then rm -rf "$W"; else echo "outputs kept in $W"; fi
}
trap cleanup EXIT
trap 'echo "FAIL: command failed at line $LINENO"' ERR

# ---- Slurm -------------------------------------------------------------------------
if ! { command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q 'is UP'; }; then
  started=1
fi
t_start=$SECONDS
SLURM_CPUS=${SLURM_CPUS:-4} bash "$SRC/tests/slurm/start.sh" >"$W/start.log" 2>&1 ||
  { cat "$W/start.log"; skip "Slurm could not be installed or started (see above)"; }
echo "slurm up in $((SECONDS - t_start)) s (started by this test: $started)"

# ---- helpers -------------------------------------------------------------------------
state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true; }
restarts() { scontrol show job "$1" 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2 || true; }
# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds; fail after SECONDS or past the budget
wait_until() {
  local limit=$((SECONDS + $1)) what="$2 (${1}s)"; shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$limit" ] || fail "timed out: $what"
    [ "$SECONDS" -lt "$BUDGET_S" ] || fail "test budget of ${BUDGET_S}s spent: $what"
    sleep "$POLL"
  done
}
count() { grep -cE -- "$1" "$2" 2>/dev/null || true; }
# train.sbatch's line for a run that ended in a requeue: the trainer's exit 75 (srun), or with
# mpirun (which Slurm's SIGTERM at the requeue makes exit 1) the job's Restarts= gone up
REQUEUED_RE='requeued job [0-9]+ \(exit 75\)|job [0-9]+ was requeued \(Restarts='

# steps_in_run N: trainer progress lines in the job output after the "SLURM_RESTART_COUNT=N " line
steps_in_run() {
  awk -v mark="SLURM_RESTART_COUNT=$1 " 'index($0, mark) { seen = 1; c = 0; next }
    seen && /step +[0-9]+\/[0-9]+ \|/ { c++ } END { print c + 0 }' "$out" 2>/dev/null || echo 0
}
# training JOB N: run N of JOB is RUNNING and its trainer has made MIN_STEPS steps
training() { [ "$(state "$1")" = RUNNING ] && [ "$(steps_in_run "$2")" -ge "$MIN_STEPS" ]; }
# requeued N: train.sbatch reported N runs that ended with the trainer's exit 75
requeued() { [ "$(count "$REQUEUED_RE" "$out")" -ge "$1" ]; }
gone() { case "$(state "$1")" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|"") return 0 ;; esac; return 1; }
dump() {
  local f j
  for f in "$W"/ref.out "$W"/train-*.out "$W"/urgent-*.out "$W"/slurm/logs/rank-*.log; do [ -e "$f" ] && { echo "---- $f"; cat "$f"; }; done
  for j in "${jobs[@]}"; do scontrol show job "$j" 2>/dev/null | head -n 8; done
  echo "---- slurmctld.log (tail)"; tail -n 30 /var/log/slurm/slurmctld.log 2>/dev/null || true
}

# ---- 1. data and the uninterrupted reference (in the background, during the Slurm job:
#      mostly while that waits to be rerun) ------------------------------------------------
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$BIN" data synth --out "$W/data" --train-samples 400 --shard-size 100 --heldout-per-class 1 \
  --vocab-merges 300 >"$W/synth.log" 2>&1 || { cat "$W/synth.log"; fail "data synth failed"; }
# 400 samples x 2 epochs / global batch 8 = 100 steps
args=(--data.train-shards "$W/data/train" --data.vocab "$W/data/bpe_vocab.txt.gz"
      --train.global-batch 8 --train.epochs 2 --train.warmup-samples 80 --train.threads 1
      --data.streams 8 --data.shuffle-block 16 --data.workers 1 --train.log-every 1)
echo "data made at +$((SECONDS - t_start)) s"
t_ref=$SECONDS
mpirun -np 2 --oversubscribe --bind-to none "$BIN" train --config "$SRC/configs/tiny.cfg" \
  --train.run "$W/ref" "${args[@]}" </dev/null >"$W/ref.out" 2>&1 &
ref_pid=$!

# ---- 2. the Slurm job: USR1 twice, then preemption --------------------------------------
t0=$SECONDS
j=$(sbatch --parsable --chdir="$W" --job-name=train -p batch -N 1 --ntasks-per-node=2 -c 1 --time=10 \
      -o "$W/train-%j.out" \
      --export="ALL,PYRAMIDCLIP=$BIN,LAUNCHER=mpirun,CONFIG=$SRC/configs/tiny.cfg,RUN_DIR=$W/slurm" \
      "$SRC/slurm/train.sbatch" "${args[@]}" --max-restarts 5)
jobs+=("$j")
out=$W/train-$j.out
echo "slurm job $j"
for n in 0 1; do
  wait_until "$READY_S" "job $j run $n training" training "$j" "$n"
  echo "  run $n training at +$((SECONDS - t0)) s ($(steps_in_run "$n") steps); scancel --signal=USR1 --batch $j"
  scancel --signal=USR1 --batch "$j"
  wait_until "$STOP_S" "job $j run $n checkpointed and requeued (exit 75)" requeued $((n + 1))
  echo "  run $n requeued at +$((SECONDS - t0)) s"
done
wait_until "$READY_S" "job $j run 2 training" training "$j" 2
u=$(sbatch --parsable --chdir="$W" -p urgent --exclusive --job-name=urgent -o "$W/urgent-%j.out" \
      --wrap 'echo urgent ran; sleep 3')
jobs+=("$u")
echo "  run 2 training at +$((SECONDS - t0)) s ($(steps_in_run 2) steps); urgent job $u submitted"
wait_until "$STOP_S" "job $j run 2 preempted: checkpointed and requeued (exit 75)" requeued 3
echo "  run 2 requeued at +$((SECONDS - t0)) s"
wait_until "$READY_S" "urgent job $u finishes" gone "$u"
wait_until "$READY_S" "job $j run 3 starts" grep -q 'SLURM_RESTART_COUNT=3 ' "$out"
echo "  run 3 started at +$((SECONDS - t0)) s"
wait_until "$DONE_S" "job $j finishes" gone "$j"
echo "  job $j ended $(state "$j") at +$((SECONDS - t0)) s"
ref_done() { ! kill -0 "$ref_pid" 2>/dev/null; }
wait_until "$DONE_S" "the reference run finishes" ref_done
ref_rc=0
wait "$ref_pid" || ref_rc=$?
ref_pid=
grep 'train: done' "$W/ref.out" | sed "s/^/  reference: /" || true
[ "$ref_rc" = 0 ] || { tail -n 30 "$W/ref.out"; fail "the reference run failed (mpirun exit $ref_rc)"; }
[ -s "$W/ref/model.h5" ] || fail "the reference run wrote no model.h5"
echo "  reference finished by +$((SECONDS - t_ref)) s after it started"

# ---- 3. checks -------------------------------------------------------------------------
[ "$(state "$j")" = COMPLETED ] || fail "job $j ended $(state "$j"), not COMPLETED"
[ "$(restarts "$j")" = 3 ] || fail "job $j: Restarts=$(restarts "$j"), not 3"
[ "$(state "$u")" = COMPLETED ] || fail "urgent job $u ended $(state "$u"), not COMPLETED"
grep -q '^urgent ran' "$W/urgent-$u.out" || fail "the urgent job did not run"
for n in 0 1 2 3; do
  [ "$(count "SLURM_RESTART_COUNT=$n " "$out")" = 1 ] || fail "no (single) SLURM_RESTART_COUNT=$n line in $out"
done
[ "$(count 'SLURM_RESTART_COUNT=' "$out")" = 4 ] || fail "expected 4 runs (SLURM_RESTART_COUNT lines) in $out"
[ "$(count "$REQUEUED_RE" "$out")" = 3 ] || fail "train.sbatch did not report 3 requeues"
exits=$(grep -o 'trainer exited with [0-9]*' "$out" | tr '\n' ';' || true)
[ "$exits" = "trainer exited with 0;" ] || fail "expected one 'trainer exited' line, of the last run, with 0: $exits"
log0=$W/slurm/logs/rank-0.log
[ "$(count '\] resume: ' "$log0")" = 3 ] || fail "expected 3 'resume:' lines in $log0"
[ "$(count "slurm: requeued job $j " "$log0")" = 3 ] || fail "expected 3 'slurm: requeued job' lines in $log0"
[ "$(count 'train: stopping at step [0-9]+ \(SIGUSR1\)' "$log0")" = 3 ] || fail "expected 3 stops by SIGUSR1 in $log0"
[ -s "$W/slurm/model.h5" ] || fail "the Slurm run wrote no model.h5"
# byte comparison: the model.h5 writer is deterministic (no timestamps), so equal weights
# written after the same number of steps give identical files
cmp "$W/ref/model.h5" "$W/slurm/model.h5" || fail "model.h5 of the interrupted run differs from the reference's"
echo "  train.sbatch's lines in $out:"
grep -E '^train\.sbatch: |^slurmstepd' "$out" | sed 's/^/    /'
echo "  resumed at: $(grep -o 'resume: .* (step [0-9]*' "$log0" | sed 's/.*(step /step /' | tr '\n' ' ')"
echo "PASS: 3 interruptions (2x USR1, 1x preemption), job COMPLETED with Restarts=3, model.h5 identical to the reference"
echo "all passed in $SECONDS s"
