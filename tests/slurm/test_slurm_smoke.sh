#!/usr/bin/env bash
# test_slurm_smoke.sh [SOURCE_DIR] -- slurm/train.sbatch on a real single-node Slurm, with a
# fake trainer (a bash script standing in for build/pyramidclip) that keeps the trainer's
# contract: on USR1/TERM it runs `scontrol requeue $SLURM_JOB_ID` and exits 75, and once
# SLURM_RESTART_COUNT reaches FAKE_FINISH_AT it finishes with 0.
#   1. requeue: USR1 twice (scancel --signal=USR1 --batch) -> 3 runs in one appended log,
#      SLURM_RESTART_COUNT 0,1,2, final state COMPLETED.
#   2. preemption: a job in partition "urgent" preempts a job in "batch" (launched with mpirun
#      when available): the fake trainer gets USR1 at the start of the grace time, the job is
#      requeued and completes after the urgent job.
# Exit 77 (ctest SKIP) when not root or when Slurm cannot be installed or started. Starts
# Slurm with tests/slurm/start.sh and stops it at the end only if this test started it.
set -euo pipefail

SRC=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)
BUDGET_S=${SLURM_TEST_BUDGET_S:-170}  # hard limit for the whole test (ctest TIMEOUT is 400)
READY_S=45      # submit/requeue -> job RUNNING and the fake trainer ready (requeue delay ~12 s)
DONE_S=60       # last signal -> job completed
PREEMPT_S=20    # urgent job submitted -> victim's trainer got the signal
FINISH_AFTER=3  # seconds the fake trainer's last run takes
URGENT_RUN=3    # seconds the urgent job runs
POLL=0.5        # seconds between polls

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; dump; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (installs and starts a local Slurm)"
[ -r "$SRC/slurm/train.sbatch" ] || { echo "FAIL: $SRC is not the source tree (no slurm/train.sbatch)"; exit 1; }

W=$(mktemp -d /tmp/pc-slurm-test.XXXXXX)
started=0
jobs=()
cleanup() {
  local rc=$?
  [ "${#jobs[@]}" -eq 0 ] || scancel "${jobs[@]}" 2>/dev/null || true
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
# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds; fail after SECONDS or past the budget
wait_until() {
  local limit=$((SECONDS + $1)) what="$2 (${1}s)"; shift 2
  until "$@"; do
    [ "$SECONDS" -lt "$limit" ] || fail "timed out: $what"
    [ "$SECONDS" -lt "$BUDGET_S" ] || fail "test budget of ${BUDGET_S}s spent: $what"
    sleep "$POLL"
  done
}
# ready JOB N: run N (SLURM_RESTART_COUNT=N) is RUNNING and the fake trainer set its traps
ready() { [ "$(state "$1")" = RUNNING ] && grep -q "^run $2 ready" "$W/fake-$1.log" 2>/dev/null; }
gone() { case "$(state "$1")" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|"") return 0 ;; esac; return 1; }
dump() {
  local f
  for f in "$W"/*.out "$W"/*.log; do [ -e "$f" ] && { echo "---- $f"; cat "$f"; }; done
  for j in "${jobs[@]}"; do scontrol show job "$j" 2>/dev/null | head -n 8; done
  echo "---- slurmctld.log (tail)"; tail -n 30 /var/log/slurm/slurmctld.log 2>/dev/null || true
}
count() { grep -c "$1" "$2" 2>/dev/null || true; }

# The fake trainer. Every rank logs to fake-$SLURM_JOB_ID.log.
cat >"$W/fake-trainer.sh" <<EOF
#!/bin/bash
n=\${SLURM_RESTART_COUNT:-0}
log=$W/fake-\$SLURM_JOB_ID.log
echo "run \$n start: \$*" >>"\$log"
if [ "\$n" -ge "\${FAKE_FINISH_AT:-2}" ]; then
  sleep $FINISH_AFTER; echo "run \$n finished" >>"\$log"; exit 0
fi
sig=
trap 'sig=USR1' USR1
trap 'sig=TERM' TERM
echo "run \$n ready" >>"\$log"
while [ -z "\$sig" ]; do sleep 0.2 & wait \$! || true; done
echo "run \$n got \$sig" >>"\$log"
scontrol requeue "\$SLURM_JOB_ID" >>"\$log" 2>&1
exit 75
EOF
chmod +x "$W/fake-trainer.sh"

# submit NAME FINISH_AT LAUNCHER [sbatch options]: slurm/train.sbatch on 1 task with the fake trainer
submit() {
  local name=$1 finish=$2 launcher=$3; shift 3
  sbatch --parsable --chdir="$W" --job-name="$name" -N 1 -n 1 -c 1 --time=10 -o "$W/$name-%j.out" \
    --export="ALL,PYRAMIDCLIP=$W/fake-trainer.sh,FAKE_FINISH_AT=$finish,LAUNCHER=$launcher,EXTRA_ARGS=--max-restarts 5" \
    "$@" "$SRC/slurm/train.sbatch" --train.epochs 1
}

# ---- 1. requeue twice by signal ------------------------------------------------------
t0=$SECONDS
j=$(submit requeue 2 srun); jobs+=("$j")
echo "requeue test: job $j"
for n in 0 1; do
  wait_until "$READY_S" "job $j run $n running with the trainer ready" ready "$j" "$n"
  echo "  run $n ready at +$((SECONDS - t0)) s; scancel --signal=USR1 --batch $j"
  scancel --signal=USR1 --batch "$j"
done
wait_until "$DONE_S" "job $j finishes" gone "$j"
out=$W/requeue-$j.out log=$W/fake-$j.log
for n in 0 1 2; do
  [ "$(count "SLURM_RESTART_COUNT=$n " "$out")" = 1 ] || fail "no (single) SLURM_RESTART_COUNT=$n line in $out"
done
[ "$(count SLURM_RESTART_COUNT= "$out")" = 3 ] || fail "expected 3 SLURM_RESTART_COUNT lines in $out"
[ "$(count '^run [0-9]* start' "$log")" = 3 ] || fail "the fake trainer did not run 3 times"
[ "$(count 'got USR1' "$log")" = 2 ] || fail "the fake trainer did not get USR1 twice"
# "exit 75", or "was requeued (Restarts=N)" when Slurm's SIGTERM at the requeue ended srun
# (exit 143) before it could pass on the trainer's 75
[ "$(count 'requeued job .* (exit 75)\|job [0-9]* was requeued (Restarts=' "$out")" = 2 ] ||
  fail "train.sbatch did not report 2 requeues"
# EXTRA_ARGS first, then the arguments after the script name
grep -q -- 'train --config configs/tiny.cfg --train.run checkpoints/requeue-'"$j"' --max-restarts 5 --train.epochs 1' "$log" ||
  fail "unexpected trainer command line: $(head -n 1 "$log")"
[ "$(state "$j")" = COMPLETED ] || fail "job $j ended $(state "$j"), not COMPLETED"
scontrol show job "$j" | grep -q 'Restarts=2 ' || fail "job $j: Restarts is not 2"
echo "PASS requeue: 3 runs, COMPLETED after $((SECONDS - t0)) s"

# ---- 2. preemption by a job in partition "urgent" --------------------------------------
t0=$SECONDS
launcher=srun
command -v mpirun >/dev/null && launcher=mpirun
v=$(submit victim 1 "$launcher" --partition=batch); jobs+=("$v")
echo "preemption test: victim job $v ($launcher)"
wait_until "$READY_S" "victim $v running with the trainer ready" ready "$v" 0
u=$(sbatch --parsable --chdir="$W" --partition=urgent --exclusive -o "$W/urgent-%j.out" \
      --wrap "echo urgent start \$(date +%s); sleep $URGENT_RUN"); jobs+=("$u")
echo "  urgent job $u submitted at +$((SECONDS - t0)) s"
wait_until "$PREEMPT_S" "victim's trainer got USR1/TERM" grep -qE '^run 0 got (USR1|TERM)' "$W/fake-$v.log"
echo "  victim's trainer: $(grep -E '^run 0 got' "$W/fake-$v.log") at +$((SECONDS - t0)) s"
wait_until "$DONE_S" "victim $v finishes" gone "$v"
wait_until "$DONE_S" "urgent $u finishes" gone "$u"
out=$W/victim-$v.out log=$W/fake-$v.log
[ "$(count SLURM_RESTART_COUNT= "$out")" = 2 ] || fail "victim: expected 2 runs in $out"
grep -q '^run 1 finished' "$log" || fail "victim's second run did not finish"
[ "$(state "$v")" = COMPLETED ] || fail "victim $v ended $(state "$v"), not COMPLETED"
[ "$(state "$u")" = COMPLETED ] || fail "urgent $u ended $(state "$u"), not COMPLETED"
grep -q 'urgent start' "$W/urgent-$u.out" || fail "urgent job did not run"
echo "  victim's first run: $(grep -E 'requeued job|trainer exited' "$out" | head -n 1)"
echo "PASS preemption: victim requeued and COMPLETED after $((SECONDS - t0)) s"
echo "all passed in $SECONDS s"
