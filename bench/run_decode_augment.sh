#!/usr/bin/env bash
# Decode + augment throughput, C++ (bench_decode_augment) side by side with Python PIL +
# torchvision (bench/decode_augment_pil.py, plain and with PIL's draft() reduced-DCT decode), on
# the same WebDataset shards of photo-like 256..640 px JPEGs (issue #3).
#
#   bash bench/run_decode_augment.sh
#
# Installs python3-pil / python3-torchvision when missing (root), builds the bench target
# (scripts/build.sh, or BUILD_DIR=... for another build directory), writes SAMPLES shards into a
# temporary directory, then runs every implementation at 1 and 2 workers, REPS times, interleaved
# (the order rotates each repetition) so machine noise hits all of them. Prints the medians and
# writes bench/results/decode_augment.json. Environment: SAMPLES (2000), REPS (5), RUN_SECONDS (4),
# THREADS ("1 2"), SIZE (224), BUILD_DIR (build), JOBS (build parallelism, default nproc).
# ~3.5 minutes on a 2-core machine after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

SAMPLES=${SAMPLES:-2000}
REPS=${REPS:-5}
SECONDS_PER_RUN=${RUN_SECONDS:-4}
THREADS=${THREADS:-"1 2"}
SIZE=${SIZE:-224}
BUILD_DIR=${BUILD_DIR:-build}
PY=/usr/bin/python3  # Debian's interpreter: python3-pil / python3-torchvision live there

if ! "$PY" -c "import PIL, torchvision" 2>/dev/null; then
  echo "== installing python3-pil python3-torchvision"
  if [ "$(id -u)" -ne 0 ]; then echo "run as root (apt-get install python3-pil python3-torchvision)" >&2; exit 1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 python3-pil python3-torchvision
fi

echo "== building bench_decode_augment in $BUILD_DIR"
if [ "$BUILD_DIR" = build ] && [ -z "${JOBS:-}" ]; then
  bash scripts/build.sh --target bench_decode_augment >/dev/null
else
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target bench_decode_augment >/dev/null
fi
BIN=$BUILD_DIR/bench/bench_decode_augment

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pc_decode_augment.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/runs" bench/results
"$BIN" --write-shards "$TMP/shards" --samples "$SAMPLES"
"$BIN" --decode-scales "$TMP/shards"

IMPLS=(cpp pil pil-draft)
run_one() {  # impl threads rep
  local out="$TMP/runs/$1-t$2-r$3.json"
  case "$1" in
    cpp) "$BIN" --run "$TMP/shards" --threads "$2" --seconds "$SECONDS_PER_RUN" --size "$SIZE" --json "$out" ;;
    pil) "$PY" bench/decode_augment_pil.py --shards "$TMP/shards" --workers "$2" --seconds "$SECONDS_PER_RUN" \
           --size "$SIZE" --json "$out" ;;
    pil-draft) "$PY" bench/decode_augment_pil.py --shards "$TMP/shards" --workers "$2" --seconds "$SECONDS_PER_RUN" \
                 --size "$SIZE" --draft --json "$out" ;;
  esac
  echo "load $(cut -d' ' -f1 /proc/loadavg)" >"$out.load"
}

for ((rep = 1; rep <= REPS; ++rep)); do
  for t in $THREADS; do
    for ((k = 0; k < ${#IMPLS[@]}; ++k)); do
      run_one "${IMPLS[$(((k + rep - 1) % ${#IMPLS[@]}))]}" "$t" "$rep"
    done
  done
done

"$PY" - "$TMP/runs" bench/results/decode_augment.json "$SAMPLES" "$SECONDS_PER_RUN" "$REPS" <<'EOF'
import glob, json, os, platform, statistics, subprocess, sys, time
import PIL, torch, torchvision
runs_dir, out_path, samples, seconds, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
runs = []
for p in sorted(glob.glob(os.path.join(runs_dir, "*.json"))):
    r = json.load(open(p))
    r["rep"] = int(p.rsplit("-r", 1)[1].split(".")[0])
    r["loadavg_1m_after"] = float(open(p + ".load").read().split()[1])
    runs.append(r)
impls = ["cpp", "pil", "pil-draft"]
threads = sorted({r["threads"] for r in runs})
med = {}
for i in impls:
    for t in threads:
        rs = [r for r in runs if r["impl"] == i and r["threads"] == t]
        med[f"{i}/t{t}"] = {k: statistics.median(r[k] for r in rs) for k in
                            ("samples_per_s", "samples_per_s_per_thread", "samples_per_cpu_s",
                                      "decode_ms_per_sample", "crops_ms_per_sample")}
        med[f"{i}/t{t}"]["runs"] = len(rs)
ratios = {f"t{t}": {"cpp_over_pil": med[f"cpp/t{t}"]["samples_per_s_per_thread"] / med[f"pil/t{t}"]["samples_per_s_per_thread"],
                    "cpp_over_pil_draft": med[f"cpp/t{t}"]["samples_per_s_per_thread"] / med[f"pil-draft/t{t}"]["samples_per_s_per_thread"],
                    "cpp_over_pil_per_cpu_s": med[f"cpp/t{t}"]["samples_per_cpu_s"] / med[f"pil/t{t}"]["samples_per_cpu_s"],
                    "cpp_over_pil_draft_per_cpu_s": med[f"cpp/t{t}"]["samples_per_cpu_s"] / med[f"pil-draft/t{t}"]["samples_per_cpu_s"]}
          for t in threads}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = ""
doc = {"benchmark": "decode + two augmented views (global 0.9-1, local 0.5-1 RandomResizedCrop, 224 px, CLIP normalize)",
       "date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit, "machine": {"cpu": cpu, "cores": os.cpu_count()},
       "versions": {"python": platform.python_version(), "pillow": PIL.__version__, "torch": torch.__version__,
                    "torchvision": torchvision.__version__},
       "samples": samples, "seconds_per_run": seconds, "repetitions": reps,
       "medians": med, "ratios_per_thread": ratios, "runs": runs}
with open(out_path, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
print(f"\nmedians of {reps} runs x {seconds:g} s, {samples} samples. Per thread: wall-clock samples/s per thread (C++) or "
      "worker process (Python); per CPU s: samples per CPU second of the workers (unaffected by other load)")
print("| threads | C++ | PIL | PIL + draft | C++ / PIL | C++ / PIL+draft | per CPU s: C++ / PIL / PIL+draft | ratios per CPU s "
      "| C++ decode + crops ms | PIL decode + views ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
for t in threads:
    c, p, d = med[f"cpp/t{t}"], med[f"pil/t{t}"], med[f"pil-draft/t{t}"]
    print(f"| {t} | {c['samples_per_s_per_thread']:.0f} | {p['samples_per_s_per_thread']:.0f} | "
          f"{d['samples_per_s_per_thread']:.0f} | {ratios[f't{t}']['cpp_over_pil']:.2f}x | "
          f"{ratios[f't{t}']['cpp_over_pil_draft']:.2f}x | "
          f"{c['samples_per_cpu_s']:.0f} / {p['samples_per_cpu_s']:.0f} / {d['samples_per_cpu_s']:.0f} | "
          f"{ratios[f't{t}']['cpp_over_pil_per_cpu_s']:.2f}x / {ratios[f't{t}']['cpp_over_pil_draft_per_cpu_s']:.2f}x | "
          f"{c['decode_ms_per_sample']:.2f} + {c['crops_ms_per_sample']:.2f} | "
          f"{p['decode_ms_per_sample']:.2f} + {p['crops_ms_per_sample']:.2f} |")
print(f"wrote {out_path}")
EOF
