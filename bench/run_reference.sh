#!/usr/bin/env bash
# C++ trainer vs a Python PyTorch loop, side by side (issue #7): the same model configuration
# (python/pyramidclip_torch.py models our standard variant), batch, threads and steps, one
# process each, on Debian's LibTorch 1.13 underneath both (libtorch for `pyramidclip`,
# python3-torch for bench/reference_train.py). Prints our step time / Python's; target <= 0.85.
#
#   bash bench/run_reference.sh                 # tiny-clip (batch 128) + clip-vit-b32 (batch 8): ~15 min on 2 cores
#   CONFIGS=tiny REPS=5 bash bench/run_reference.sh
#
# Fairness: both sides run 1 process with THREADS intra-op threads (torch.set_num_threads /
# train.threads, OMP_NUM_THREADS), the same OpenBLAS kernels (OPENBLAS_CORETYPE from
# scripts/mpi_env.sh; the C++ binary would set it anyway), the same input shapes. Data loading is
# excluded on both sides: Python trains on in-memory tensors; the C++ trainer decodes in its
# training thread (data.workers 0, so no decode thread competes for the cores) and its
# data_wait_s is subtracted from each step. Each run's first WARMUP steps are dropped, the rest's
# median is the run's step time; runs alternate C++ / Python with the order rotating, REPS times,
# and the ratio is of the medians over repetitions (plus the median of the per-repetition ratios).
# Environment: CONFIGS ("tiny b32"), REPS (3), THREADS (1), BUILD_DIR (build), BIN, DATA
# (synthetic set, /tmp/pc_scaling_synth, made if missing), OUT (bench/results/reference.json),
# TINY_BATCH/TINY_STEPS/TINY_WARMUP (128/25/5), B32_BATCH/B32_STEPS/B32_WARMUP (8/8/3), PY_MALLOC (1: also
# run Python with the glibc malloc settings `pyramidclip` gives itself, a second ratio that leaves out the
# allocator's share of the gain; 0: skip).
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIGS=${CONFIGS:-"tiny b32"}
REPS=${REPS:-3}
THREADS=${THREADS:-1}
BUILD_DIR=${BUILD_DIR:-build}
BIN=${BIN:-$BUILD_DIR/pyramidclip}
DATA=${DATA:-/tmp/pc_scaling_synth}
OUT=${OUT:-bench/results/reference.json}
PY_MALLOC=${PY_MALLOC:-1}
PY=/usr/bin/python3  # Debian's interpreter: python3-torch lives there

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "== installing python3-torch"
  if [ "$(id -u)" -ne 0 ]; then echo "run as root (apt-get install python3-torch)" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-torch
fi
if [ ! -x "$BIN" ]; then
  echo "== building pyramidclip in $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target pyramidclip >/dev/null
fi
source scripts/mpi_env.sh
export OMP_NUM_THREADS=$THREADS
if [ ! -f "$DATA/meta.json" ]; then
  echo "== pyramidclip data synth --out $DATA"
  "$BIN" data synth --out "$DATA" >/dev/null
fi
SAMPLES=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['options']['train_samples'])" "$DATA/meta.json")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pc_reference.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

cfg_of() { case "$1" in tiny) echo configs/tiny-clip.cfg ;; b32) echo configs/clip-vit-b32.cfg ;;
  *) echo "unknown config $1 (tiny, b32)" >&2; exit 2 ;; esac; }
run_cpp() {  # name batch steps rep
  local cfg run epochs rc=0
  cfg=$(cfg_of "$1"); run="$TMP/cpp-$1-r$4"
  epochs=$("$PY" -c "print(($3 + 2) * $2 / ($SAMPLES * 0.9))")
  "$BIN" train --config "$cfg" --data.train-shards "$DATA/train" --data.vocab "$DATA/bpe_vocab.txt.gz" \
    --train.run "$run" --train.global-batch "$2" --train.threads "$THREADS" --data.workers 0 \
    --train.epochs "$epochs" --stop-after "$3" --resume none --ckpt.every-minutes 0 --train.log-every 1000 \
    >"$run.log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 75 ]; then echo "pyramidclip train failed ($rc):" >&2; tail -20 "$run.log" >&2; exit 1; fi
  cp "$run/metrics.jsonl" "$TMP/cpp-$1-r$4.jsonl"
  rm -rf "$run"  # checkpoints (2.4 GB for B/32)
  echo "load $(cut -d' ' -f1-3 /proc/loadavg)" >"$TMP/cpp-$1-r$4.load"
}
run_py() {  # name batch steps rep warmup
  local args=(bench/reference_train.py --config "$(cfg_of "$1")" --batch "$2" --steps "$3" --warmup "$5"
    --threads "$THREADS")
  "$PY" "${args[@]}" --json "$TMP/py-$1-r$4.json"
  echo "load $(cut -d' ' -f1-3 /proc/loadavg)" >"$TMP/py-$1-r$4.load"
  if [ "$PY_MALLOC" = 1 ]; then  # the same glibc malloc settings as pyramidclip makes (src/cli/malloc_tuning.h)
    MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864 \
      "$PY" "${args[@]}" --json "$TMP/pym-$1-r$4.json"
  fi
}

for name in $CONFIGS; do
  case "$name" in
    tiny) batch=${TINY_BATCH:-128}; steps=${TINY_STEPS:-25}; warmup=${TINY_WARMUP:-5} ;;
    b32) batch=${B32_BATCH:-8}; steps=${B32_STEPS:-8}; warmup=${B32_WARMUP:-3} ;;
    *) cfg_of "$name" ;;
  esac
  echo "$batch $steps $warmup" >"$TMP/$name.params"
  for ((rep = 1; rep <= REPS; ++rep)); do
    echo "== $name rep $rep/$REPS (batch $batch, $steps steps, $THREADS thread(s); load $(cut -d' ' -f1 /proc/loadavg))"
    if (( rep % 2 )); then
      run_cpp "$name" "$batch" "$steps" "$rep"; run_py "$name" "$batch" "$steps" "$rep" "$warmup"
    else
      run_py "$name" "$batch" "$steps" "$rep" "$warmup"; run_cpp "$name" "$batch" "$steps" "$rep"
    fi
  done
done

"$PY" - "$TMP" "$OUT" "$THREADS" "$REPS" $CONFIGS <<'PYEOF'
import glob, json, os, platform, statistics, subprocess, sys, time
import torch
tmp, out, threads, reps, names = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
PARTS = ("forward_s", "backward_s", "optimizer_s", "comm_exposed_s", "checkpoint_stall_s", "data_wait_s")
med = statistics.median
doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": threads, "repetitions": reps,
       "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
       "machine": {"cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), ""),
                   "cores": os.cpu_count()},
       "versions": {"python": platform.python_version(), "torch": torch.__version__},
       "step_time": "C++: step_time_s - data_wait_s per step (forward + loss, backward, gradient sync, optimizer, "
                    "metrics); Python: forward + loss + backward + AdamW step + zero_grad + clamp",
       "configs": {}}
print(f"\nmedians over {reps} interleaved repetitions (each: median of the steps after warm-up), {threads} thread(s)")
print("| config | batch | C++ step (s) | fwd / bwd / opt (s) | Python step (s) | fwd / bwd / opt (s) | C++ / Python | paired |")
print("|---|---|---|---|---|---|---|---|")
for name in names:
    batch, steps, warmup = map(int, open(os.path.join(tmp, name + ".params")).read().split())
    runs = []
    for rep in range(1, reps + 1):
        recs = [json.loads(l) for l in open(os.path.join(tmp, f"cpp-{name}-r{rep}.jsonl")) if l.strip()]
        kept = [r for r in recs if r["step"] > warmup]
        cpp = {k: med(r.get(k, 0.0) for r in kept) for k in PARTS}
        cpp["step_s"] = med(r["step_time_s"] - r["data_wait_s"] for r in kept)
        py = json.load(open(os.path.join(tmp, f"py-{name}-r{rep}.json")))
        pym = dict(py["medians"]); pym["step_s"] = pym.pop("step_time_s")
        tuned_path = os.path.join(tmp, f"pym-{name}-r{rep}.json")
        if os.path.exists(tuned_path):
            tuned = json.load(open(tuned_path))
            pyt = dict(tuned["medians"]); pyt["step_s"] = pyt.pop("step_time_s")
        else:
            tuned, pyt = None, None
        runs.append({"rep": rep, "cpp": cpp, "python": pym, "ratio": cpp["step_s"] / pym["step_s"],
                     "python_same_malloc": pyt, "python_same_malloc_steps": tuned["per_step"] if tuned else None,
                     "cpp_steps": [{k: r.get(k) for k in PARTS + ("step_time_s", "loss")} for r in recs],
                     "python_steps": py["per_step"],
                     "load_after_cpp": open(os.path.join(tmp, f"cpp-{name}-r{rep}.load")).read().split()[1:],
                     "load_after_python": open(os.path.join(tmp, f"py-{name}-r{rep}.load")).read().split()[1:]})
    c = {k: med(r["cpp"][k] for r in runs) for k in runs[0]["cpp"]}
    p = {k: med(r["python"][k] for r in runs) for k in runs[0]["python"]}
    ratio, paired = c["step_s"] / p["step_s"], med(r["ratio"] for r in runs)
    pt = {k: med(r["python_same_malloc"][k] for r in runs) for k in runs[0]["python_same_malloc"]} \
        if runs[0]["python_same_malloc"] else None
    doc["configs"][name] = {"batch": batch, "steps": steps, "warmup": warmup, "preset": py["preset"],
                            "parameters": py["parameters"], "cpp": c, "python": p, "ratio": ratio,
                            "paired_ratio_median": paired, "target": 0.85, "runs": runs,
                            "python_same_malloc": pt, "ratio_vs_python_same_malloc": c["step_s"] / pt["step_s"] if pt else None}
    print(f"| {name} ({py['preset']}) | {batch} | {c['step_s']:.3f} | {c['forward_s']:.3f} / {c['backward_s']:.3f} / "
          f"{c['optimizer_s']:.3f} | {p['step_s']:.3f} | {p['forward_s']:.3f} / {p['backward_s']:.3f} / "
          f"{p['optimizer_s']:.3f} | **{ratio:.2f}x** | {paired:.2f}x |")
    if pt:
        print(f"|   Python with pyramidclip's malloc settings | | | | {pt['step_s']:.3f} | {pt['forward_s']:.3f} / "
              f"{pt['backward_s']:.3f} / {pt['optimizer_s']:.3f} | {c['step_s'] / pt['step_s']:.2f}x | |")
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print("wrote", out)
PYEOF
