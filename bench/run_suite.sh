#!/usr/bin/env bash
# The Google Benchmark suite (issue #7): model blocks and towers, six-pair loss, collectives
# (algbw / busbw as nccl-tests), ZeRO AdamW step, HDF5 write/read, JPEG decode + augment,
# tokenizer, synthetic data and the train loader.
#
#   bash bench/run_suite.sh                      # ~6 min on the 2-core VM after the build
#   bash bench/run_suite.sh --benchmark_filter=Loss --benchmark_repetitions=3
#
# Builds bench_suite (BUILD_DIR, default build; JOBS, default nproc), then runs it twice:
#   1. one process, everything but the collectives (one intra-op thread each);
#   2. mpirun -np NP (default 2) for the BM_Coll_* benchmarks; rank 0 reports.
# Both write Google Benchmark JSON; they are merged into bench/results/suite.json (OUT) and
# printed as one table. Extra arguments go to both runs (a --benchmark_filter: see below; run
# the binary directly for anything else). Environment: NP, BUILD_DIR, JOBS,
# OUT, MPIRUN (e.g. "srun" on a cluster), SKIP_COLL=1 (no MPI part).
set -euo pipefail
cd "$(dirname "$0")/.."

NP=${NP:-2}
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-bench/results/suite.json}
MPIRUN=${MPIRUN:-mpirun -np $NP}
PY=/usr/bin/python3

echo "== building bench_suite in $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target bench_suite >/dev/null
BIN=$BUILD_DIR/bench/bench_suite

source scripts/mpi_env.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/pc_suite.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$(dirname "$OUT")"

# A --benchmark_filter applies to the one-process part; the MPI part runs when the filter names
# collectives ("Coll"), with the same filter. Without one: everything, collectives under MPI.
FILTER=""
ARGS=()
for a in "$@"; do
  case "$a" in
    --benchmark_filter=*) FILTER=${a#--benchmark_filter=} ;;
    *) ARGS+=("$a") ;;
  esac
done
echo "== one process: $BIN ${FILTER:+--benchmark_filter=$FILTER} (BM_Coll_* skip here)"
"$BIN" --benchmark_filter="${FILTER:-.}" --benchmark_out="$TMP/one.json" --benchmark_out_format=json \
  ${ARGS[@]+"${ARGS[@]}"} 2>&1 | { grep -v "BM_Coll_" || true; }
if [ "${SKIP_COLL:-0}" != 1 ] && { [ -z "$FILTER" ] || [[ "$FILTER" == *Coll* ]]; }; then
  echo "== $MPIRUN $BIN --benchmark_filter=${FILTER:-BM_Coll_}"
  $MPIRUN "$BIN" --benchmark_filter="${FILTER:-BM_Coll_}" --benchmark_out="$TMP/coll.json" \
    --benchmark_out_format=json ${ARGS[@]+"${ARGS[@]}"}
fi

"$PY" - "$OUT" "$TMP" "$NP" <<'PYEOF'
import json, os, subprocess, sys, time
out, tmp, np_ = sys.argv[1], sys.argv[2], int(sys.argv[3])
parts = {}
for name in ("one", "coll"):
    p = os.path.join(tmp, name + ".json")
    if os.path.exists(p):
        parts[name] = json.load(open(p))
benchmarks = []
for name, doc in parts.items():
    for b in doc["benchmarks"]:
        if (name == "one") == b["name"].startswith("BM_Coll_"):
            continue  # collectives skip in one process; the MPI part keeps only them
        b["part"] = "mpirun -np %d" % np_ if name == "coll" else "one process"
        benchmarks.append(b)
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit, "machine": {"cpu": cpu, "cores": os.cpu_count()},
       "loadavg_end": open("/proc/loadavg").read().split()[:3],
       "context": {k: v.get("context") for k, v in parts.items()}, "benchmarks": benchmarks}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")

def fmt_time(b):
    return "%.3g %s" % (b.get("real_time", 0), b.get("time_unit", ""))
def extra(b):
    bits = []
    if "items_per_second" in b: bits.append("%.4g items/s" % b["items_per_second"])
    if "bytes_per_second" in b: bits.append("%.3g MB/s" % (b["bytes_per_second"] / 1e6))
    for k in ("algbw_GBps", "busbw_GBps", "params_G_per_s", "file_MB"):
        if k in b: bits.append("%s %.3g" % (k, b[k]))
    if b.get("label"): bits.append(b["label"])
    return ", ".join(bits)
print("\n| benchmark | time | throughput / counters |\n|---|---|---|")
for b in benchmarks:
    if b.get("error_occurred"):
        print("| %s | skipped | %s |" % (b["name"], b.get("error_message", "")))
    elif b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
        continue
    else:
        print("| %s | %s | %s |" % (b["name"], fmt_time(b), extra(b)))
print("wrote", out)
PYEOF
