#!/usr/bin/env bash
# Capacity planner (issue #7): reproduces bench/results/plan.json and the tables of
# bench/RESULTS.md, "Capacity planner".
#   1. CPU check (skipped when $WORK/measure.json exists; PLAN_REMEASURE=1 redoes it): a fp32
#      matmul microbenchmark (one thread = one rank's core) and memory bandwidth, then
#      `pyramidclip train` for configs/tiny.cfg and configs/tiny-clip.cfg at 1 and 2 ranks on a
#      small synthetic set, global batch 32 (12 steps, the first 2 dropped; the tiny runs 3 times,
#      medians). Small on purpose: the 2-core machine is shared.
#   2. Calibration: the MFU that reproduces OpenCLIP's published A100 throughputs (ViT-B/32 780,
#      ViT-B/16 335 samples/s per GPU) and the B/16 prediction from the B/32 fit; NeMo's 96 %
#      weak-scaling efficiency at 16 nodes x 8 A100-80GB (ViT-B/32, batch 500 per GPU).
#   3. Tables: 64/256/512 GPUs x vit-b32/vit-b16 x official/standard x A100-80GB/H100-80GB.
#   4. The planner on the CPU "GPU" (measured peak, MPI bandwidth from bench/results/comm.json),
#      MFU fitted on one configuration, predicting the others; errors vs the measurements.
# Usage: bash bench/run_plan.sh   (BIN=path/to/pyramidclip, WORK=scratch dir)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi_env.sh
BIN=${BIN:-build/pyramidclip}
WORK=${WORK:-build-plan/plan-work}
PY=/usr/bin/python3   # Debian's python3 (python3-torch), not a pyenv one
GLOBAL_BATCH=32
STEPS=12
mkdir -p "$WORK"

micro() {
  "$PY" - "$WORK/micro.json" <<'PYEOF'
import json, sys, time, torch
torch.set_num_threads(1)
def best(fn, reps):
    # CPU time of this process, not wall time: the machine is shared, and the peak is what one
    # core does while it runs this rank (the training runs see the same sharing in their MFU)
    t = []
    for _ in range(reps):
        s = time.process_time(); fn(); t.append(time.process_time() - s)
    return min(t)
n = 1024
a, b = torch.randn(n, n), torch.randn(n, n)
torch.mm(a, b)
gemm = 2 * n**3 / best(lambda: torch.mm(a, b), 20)
x = torch.empty(32 * 2**20); y = torch.empty_like(x); y.copy_(x)
copy = 2 * 4 * x.numel() / best(lambda: y.copy_(x), 10)   # read + write
json.dump({"peak_fp32_flops_per_core": gemm, "memory_bw": copy}, open(sys.argv[1], "w"))
print(f"matmul {gemm/1e9:.1f} GFLOP/s per core, copy {copy/1e9:.1f} GB/s")
PYEOF
}

measure() {
  local data="$WORK/synth"
  if [ ! -f "$data/meta.json" ]; then
    "$BIN" data synth --out "$data" --train-samples 3840 --shard-size 60 --heldout-per-class 1 --threads 1 >/dev/null
  fi
  for rep in 1 2 3; do
    for cfg in tiny tiny-clip; do
      [ "$cfg" = tiny-clip ] && [ "$rep" -gt 1 ] && continue
      for np in 1 2; do
        local run="$WORK/runs/$cfg-np$np-rep$rep"
        rm -rf "$run"
        echo "train $cfg, $np rank(s), repetition $rep ($(cut -d' ' -f1-3 /proc/loadavg))"
        mpirun -np "$np" --oversubscribe --bind-to none "$BIN" train --config "configs/$cfg.cfg" \
          --train.run "$run" --data.train-shards "$data/train" --data.vocab "$data/bpe_vocab.txt.gz" \
          --train.global-batch $GLOBAL_BATCH --train.epochs "$("$PY" -c "print($STEPS * $GLOBAL_BATCH / 3840)")" \
          --train.threads 1 --data.workers 1 --train.log-every 1000 \
          --ckpt.every-minutes 0 >"$WORK/train-$cfg-np$np-rep$rep.log" 2>&1
        echo "$(cut -d' ' -f1-3 /proc/loadavg)" >"$run/loadavg_after"
      done
    done
  done
  "$PY" - "$WORK" <<'PYEOF'
import glob, json, os, statistics, sys
work = sys.argv[1]
out = {"runs": {}}
keys = ["step_time_s", "data_wait_s", "forward_s", "backward_s", "comm_exposed_s", "optimizer_s", "samples_per_second"]
for run in sorted(glob.glob(f"{work}/runs/*")):
    rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")][2:]   # drop warm-up steps
    cfg, np_, rep = os.path.basename(run).rsplit("-", 2)
    rec = {k: statistics.median(r[k] for r in rows) for k in keys}
    rec["steps"] = len(rows)
    rec["loadavg_after"] = open(f"{run}/loadavg_after").read().strip()
    out["runs"].setdefault(f"{cfg}-{np_}", []).append(rec)
json.dump(out, open(f"{work}/measure.json", "w"), indent=1)
PYEOF
}

if [ ! -f "$WORK/micro.json" ] || [ "${PLAN_REMEASURE:-0}" = 1 ]; then
  micro
fi
if [ ! -f "$WORK/measure.json" ] || [ "${PLAN_REMEASURE:-0}" = 1 ]; then
  measure
fi
[ "${PLAN_MEASURE_ONLY:-0}" = 1 ] && exit 0

# Mean over batches of the longest caption in tokens: the standard (EOT-pooled) text tower runs only
# that many positions (pyramid_clip.cpp), the official one all 77.
if [ ! -f "$WORK/text_len.txt" ]; then
  "$PY" - "$WORK/synth/train" >"$WORK/captions.txt" <<'PYEOF'
import glob, sys, tarfile
for shard in sorted(glob.glob(sys.argv[1] + "/*.tar"))[:8]:
    with tarfile.open(shard) as t:
        for m in t.getmembers():
            if m.name.endswith(".txt") and m.name.count(".") == 1:
                print(t.extractfile(m).read().decode().replace("\n", " "))
PYEOF
  "$BIN" tokenize --vocab "$WORK/synth/bpe_vocab.txt.gz" <"$WORK/captions.txt" | "$PY" -c "
import sys
lens = []
for line in sys.stdin:
    ids = [int(x) for x in line.replace(',', ' ').split()]
    lens.append(ids.index(max(ids)) + 1)
b = 32
print(round(sum(max(lens[i:i + b]) for i in range(0, len(lens) - b + 1, b)) / (len(lens) // b)))
" >"$WORK/text_len.txt"
fi

"$PY" - "$BIN" "$WORK" bench/results/plan.json <<'PYEOF'
import json, os, statistics, subprocess, sys
binary, work, out_path = sys.argv[1:4]

def plan(*args):
    path = os.path.join(work, "plan-tmp.json")
    r = subprocess.run([binary, "plan", *map(str, args), "--json", path], capture_output=True, text=True)
    if r.returncode:
        sys.exit("pyramidclip plan " + " ".join(map(str, args)) + ": " + r.stderr)
    j = json.load(open(path))
    j["stdout"], j["warnings"] = r.stdout, r.stderr.strip()
    return j

out = {"anchors": {}, "tables": [], "cpu": {}}
# ---- 1. calibration on OpenCLIP's published A100 throughputs (standard CLIP, batch 256, AMP) ----
a100 = ["--gpu", "a100-40gb", "--variant", "standard", "--batch-per-gpu", 256, "--zero", 0, "--gpus", 1]
published = {"vit-b32": 780.0, "vit-b16": 335.0}
cal = {}
for model, sps in published.items():
    j = plan("--model", model, *a100, "--fit-samples-per-gpu", sps)
    cal[model] = {"published_samples_per_s_per_gpu": sps, "fitted_mfu": j["fitted_mfu"],
                  "model_gflops_per_sample": j["flops_per_sample"]["model"] / 1e9}
for src, dst in (("vit-b32", "vit-b16"), ("vit-b16", "vit-b32")):
    p = plan("--model", dst, *a100, "--mfu", cal[src]["fitted_mfu"])["rows"][0]["samples_per_s_per_gpu"]
    cal[f"{dst}_from_{src}_mfu"] = {"predicted": p, "published": published[dst], "error": p / published[dst] - 1}
for model, sps in published.items():
    p = plan("--model", model, *a100)["rows"][0]["samples_per_s_per_gpu"]
    cal[f"{model}_default_mfu"] = {"predicted": p, "published": sps, "error": p / sps - 1}
out["anchors"]["openclip"] = cal
# NeMo CLIP ViT-B/32 on DGX A100 80GB (8 GPUs + 8 HDR NICs per node), batch 500 per GPU, bf16:
# 96 % weak-scaling efficiency at 16 nodes (relative to one node)
nemo = plan("--model", "vit-b32", "--variant", "standard", "--gpu", "a100-80gb", "--inter", "ib-hdr",
            "--batch-per-gpu", 500, "--zero", 0, "--gpus", "1,8,128")
r1, r8, r128 = nemo["rows"]
out["anchors"]["nemo"] = {"published_efficiency_16_nodes": 0.96,
                          "planner_vs_1_node": r128["samples_per_s_per_gpu"] / r8["samples_per_s_per_gpu"],
                          "planner_vs_1_gpu": r128["efficiency"], "rows": nemo["rows"]}

# ---- 2. tables: 64 / 256 / 512 GPUs ----
for gpu, inter in (("a100-80gb", "ib-hdr"), ("h100-80gb", "ib-ndr")):
    for model in ("vit-b32", "vit-b16"):
        for variant in ("official", "standard"):
            args = ["--model", model, "--variant", variant, "--gpu", gpu, "--inter", inter,
                    "--batch-per-gpu", 256, "--gpus", "64,256,512"]
            j = plan(*args)
            if not all(r["memory_gb"]["fits"] for r in j["rows"]):
                j = plan(*args, "--act-ckpt")   # does not fit without: plan it with checkpointing
            out["tables"].append(j)
            print(j["stdout"])

# ---- 3. the CPU "GPU": measured here ----
meas = json.load(open(f"{work}/measure.json"))
micro = json.load(open(f"{work}/micro.json"))
comm = json.load(open("bench/results/comm.json"))
small = next(b for b in comm["bandwidth"] if b["size"] == "small")
busbw = small["methods"]["comm_allreduce"]["busbw_gbps"]
peak = micro["peak_fp32_flops_per_core"]
text_len = int(open(f"{work}/text_len.txt").read())
global_batch = 32

def med(runs, key):
    return statistics.median(r[key] for r in runs)

def cpu_plan(cfg, np_, *extra):
    variant = "official" if cfg == "tiny" else "standard"
    return plan("--model", "tiny", "--variant", variant, "--gpus", np_, "--gpus-per-node", 2,
                "--precision", "fp32", "--peak-tflops", peak / 1e12, "--mem-bw-gbs", micro["memory_bw"] / 1e9,
                "--gpu-mem-gb", 8, "--reserve-gb", 0, "--intra-bw", busbw, "--intra-latency", 20,
                "--batch-per-gpu", global_batch // np_, "--zero", 1, "--overlap", 0,
                "--text-len", 77 if cfg == "tiny" else text_len, *extra)

measured = {}
for name, runs in meas["runs"].items():
    cfg, np_ = name.rsplit("-np", 1)
    np_ = int(np_)
    m = {k: med(runs, k) for k in ("step_time_s", "data_wait_s", "forward_s", "backward_s", "comm_exposed_s", "optimizer_s")}
    m["train_s"] = m["step_time_s"] - m["data_wait_s"]   # the planner assumes loading is hidden
    m["repetitions"] = len(runs)
    m["all_step_times"] = [r["step_time_s"] for r in runs]
    measured[(cfg, np_)] = m
fits = {}
for key, m in measured.items():
    fits[f"{key[0]}-np{key[1]}"] = cpu_plan(*key, "--fit-samples-per-gpu", global_batch / key[1] / m["train_s"])["fitted_mfu"]
mfu = fits["tiny-np1"]
rows = []
for (cfg, np_), m in sorted(measured.items()):
    p = cpu_plan(cfg, np_, "--mfu", mfu)["rows"][0]["time_s"]
    rows.append({"config": cfg, "ranks": np_, "measured": m,
                 "planned": {"compute_s": p["compute"], "comm_exposed_s": p["comm_exposed"], "optimizer_s": p["optimizer"],
                             "step_s": p["step"]},
                 "error_step": p["step"] / m["train_s"] - 1,
                 "error_compute": p["compute"] / (m["forward_s"] + m["backward_s"]) - 1})
out["cpu"] = {"peak_fp32_flops_per_core": peak, "memory_bw": micro["memory_bw"],
              "mpi_allreduce_busbw_gbs": busbw, "text_len_standard": text_len, "global_batch": global_batch,
              "mfu_fitted_on": "tiny-np1", "mfu": mfu, "mfu_fitted_per_run": fits, "rows": rows, "raw": meas}
json.dump(out, open(out_path, "w"), indent=1)

print("OpenCLIP calibration (standard CLIP, A100, batch 256):")
for model in published:
    c = cal[model]
    print(f"  {model}: published {c['published_samples_per_s_per_gpu']:.0f}/s -> MFU {c['fitted_mfu']:.4f} "
          f"({c['model_gflops_per_sample']:.1f} GFLOP/sample)")
e = cal["vit-b16_from_vit-b32_mfu"]
print(f"  vit-b16 predicted with vit-b32's MFU: {e['predicted']:.0f}/s vs 335 ({100 * e['error']:+.1f} %)")
for model in published:
    e = cal[f"{model}_default_mfu"]
    print(f"  {model} with the default MFU: {e['predicted']:.0f}/s vs {e['published']:.0f} ({100 * e['error']:+.1f} %)")
n = out["anchors"]["nemo"]
print(f"NeMo ViT-B/32, 16 nodes: planner {100 * n['planner_vs_1_node']:.1f} % of one node "
      f"({100 * n['planner_vs_1_gpu']:.1f} % of one GPU) vs published 96 %")
print(f"CPU check: peak {peak / 1e9:.1f} GFLOP/s per core, MPI busbw {busbw:.2f} GB/s, MFU fitted on tiny at 1 rank {mfu:.4f}")
for r in rows:
    m, p = r["measured"], r["planned"]
    print(f"  {r['config']:9s} {r['ranks']} rank(s): measured {m['train_s']:.3f} s/step (+{m['data_wait_s']:.3f} data wait; "
          f"compute {m['forward_s'] + m['backward_s']:.3f}, comm {m['comm_exposed_s']:.3f}, optim {m['optimizer_s']:.3f}) | "
          f"planned {p['step_s']:.3f} (compute {p['compute_s']:.3f}, comm {p['comm_exposed_s']:.3f}, optim {p['optimizer_s']:.3f})"
          f" | error {100 * r['error_step']:+.1f} %")
PYEOF
