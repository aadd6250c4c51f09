#!/usr/bin/python3
"""Summarizes bench/run_scaling.sh runs: one directory per run (<mode>-n<ranks>/metrics.jsonl from
`pyramidclip train`) plus <mode>-n<ranks>.json (the harness's run description).

For each run it drops the first --warmup steps and takes medians over the rest: step time,
samples/s (global batch / median step time), samples/s per rank, and the per-step breakdown
(data wait, forward, backward, exposed comm, optimizer, checkpoint stall; "other" = the rest of
the step: input agreement, metrics reduction, the step-boundary decision). Efficiency =
samples/s per rank at n ranks / samples/s at the smallest rank count of the same mode (strong:
fixed global batch; weak: fixed per-rank batch). Writes the JSON, prints a Markdown table and
draws an SVG beside the JSON (samples/s vs ranks with the ideal line; stacked step breakdown).
Standard library only.
"""
import argparse
import glob
import json
import os
import statistics
import subprocess
import time

PARTS = ["data_wait_s", "forward_s", "backward_s", "comm_exposed_s", "optimizer_s", "checkpoint_stall_s"]
LABELS = {"data_wait_s": "data wait", "forward_s": "forward", "backward_s": "backward",
          "comm_exposed_s": "exposed comm", "optimizer_s": "optimizer", "checkpoint_stall_s": "ckpt stall",
          "other_s": "other"}
COLORS = {"data_wait_s": "#9e9e9e", "forward_s": "#4e79a7", "backward_s": "#f28e2b", "comm_exposed_s": "#e15759",
          "optimizer_s": "#59a14f", "checkpoint_stall_s": "#b07aa1", "other_s": "#d3d3d3"}


def summarize_run(run_dir, desc, warmup):
    recs = [json.loads(l) for l in open(os.path.join(run_dir, "metrics.jsonl")) if l.strip()]
    kept = [r for r in recs if r["step"] > warmup]
    if not kept:
        raise SystemExit(f"{run_dir}: {len(recs)} steps, none after the {warmup} warm-up steps")
    med = {k: statistics.median(r.get(k, 0.0) for r in kept) for k in PARTS + ["step_time_s"]}
    med["other_s"] = max(0.0, med["step_time_s"] - sum(med[k] for k in PARTS))
    out = dict(desc)
    out.update({
        "steps": len(recs), "steps_measured": len(kept),
        "median_step_time_s": med["step_time_s"],
        "samples_per_second": desc["global_batch"] / med["step_time_s"],
        "samples_per_second_per_rank": desc["global_batch"] / med["step_time_s"] / desc["ranks"],
        "breakdown_median_s": {k: med[k] for k in PARTS + ["other_s"]},
        "step_time_quartiles_s": statistics.quantiles([r["step_time_s"] for r in kept], n=4)
        if len(kept) >= 2 else [med["step_time_s"]] * 3,
    })
    return out


def svg(results, path):
    modes = sorted({r["mode"] for r in results}, key=lambda m: ["strong", "weak"].index(m))
    W, H, pad = 460, 300, 50
    panels = []
    for i, mode in enumerate(modes):
        rs = sorted((r for r in results if r["mode"] == mode), key=lambda r: r["ranks"])
        base = rs[0]
        ideal = [(r["ranks"], base["samples_per_second_per_rank"] * r["ranks"]) for r in rs]
        ymax = max([r["samples_per_second"] for r in rs] + [y for _, y in ideal]) * 1.1
        xmax = max(r["ranks"] for r in rs)
        xmin = min(r["ranks"] for r in rs)
        def X(n):
            return pad + (W - 2 * pad) * ((n - xmin) / (xmax - xmin) if xmax > xmin else 0.5)
        def Y(v):
            return H - pad - (H - 2 * pad) * v / ymax
        ox = i * W
        g = [f'<g transform="translate({ox},0)">',
             f'<text x="{W/2}" y="20" text-anchor="middle" font-weight="bold">{mode} scaling: samples/s</text>',
             f'<line x1="{pad}" y1="{H-pad}" x2="{W-pad}" y2="{H-pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{H-pad}" stroke="black"/>']
        for k in range(5):
            v = ymax * k / 4
            g.append(f'<text x="{pad-5}" y="{Y(v)+4:.1f}" text-anchor="end" font-size="10">{v:.0f}</text>')
        for r in rs:
            g.append(f'<text x="{X(r["ranks"]):.1f}" y="{H-pad+15}" text-anchor="middle" font-size="10">{r["ranks"]}</text>')
        g.append(f'<text x="{W/2}" y="{H-12}" text-anchor="middle" font-size="11">ranks</text>')
        pts = " ".join(f"{X(n):.1f},{Y(v):.1f}" for n, v in ideal)
        g.append(f'<polyline points="{pts}" fill="none" stroke="#999" stroke-dasharray="4,3"/>')
        pts = " ".join(f'{X(r["ranks"]):.1f},{Y(r["samples_per_second"]):.1f}' for r in rs)
        g.append(f'<polyline points="{pts}" fill="none" stroke="#4e79a7" stroke-width="2"/>')
        for r in rs:
            g.append(f'<circle cx="{X(r["ranks"]):.1f}" cy="{Y(r["samples_per_second"]):.1f}" r="3" fill="#4e79a7"/>')
            g.append(f'<text x="{X(r["ranks"])+5:.1f}" y="{Y(r["samples_per_second"])-6:.1f}" font-size="10">'
                     f'{r["samples_per_second"]:.1f} ({100*r["efficiency"]:.0f}%)</text>')
        g.append(f'<text x="{W-pad}" y="{pad-8}" text-anchor="end" font-size="10" fill="#999">dashed: ideal</text>')
        g.append("</g>")
        panels.append("\n".join(g))
    # stacked breakdown bars, one per run
    bh, top = 16, H + 30
    keys = PARTS + ["other_s"]
    runs = sorted(results, key=lambda r: (r["mode"], r["ranks"]))
    tmax = max(r["median_step_time_s"] for r in runs) * 1.05
    bw = 2 * W - 200
    bars = [f'<text x="{W}" y="{top-10}" text-anchor="middle" font-weight="bold">median step time breakdown (s)</text>']
    for j, r in enumerate(runs):
        y = top + j * (bh + 6)
        bars.append(f'<text x="150" y="{y+12}" text-anchor="end" font-size="11">{r["mode"]} n={r["ranks"]} '
                    f'({r["global_batch"]}/step)</text>')
        x = 160.0
        for k in keys:
            w = bw * r["breakdown_median_s"][k] / tmax
            if w > 0:
                bars.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bh}" fill="{COLORS[k]}">'
                            f'<title>{LABELS[k]} {r["breakdown_median_s"][k]:.3f} s</title></rect>')
            x += w
        bars.append(f'<text x="{x+4:.1f}" y="{y+12}" font-size="10">{r["median_step_time_s"]:.3f} s</text>')
    ly = top + len(runs) * (bh + 6) + 10
    lx = 160
    for k in keys:
        bars.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{COLORS[k]}"/>'
                    f'<text x="{lx+14}" y="{ly+9}" font-size="10">{LABELS[k]}</text>')
        lx += 95
    height = ly + 30
    doc = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W*max(2, len(modes))}" height="{height}" '
           f'font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n'
           + "\n".join(panels) + "\n" + "\n".join(bars) + "\n</svg>\n")
    with open(path, "w") as f:
        f.write(doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="directory with <mode>-n<N>/ runs and <mode>-n<N>.json")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", default="bench/results/scaling.json")
    ap.add_argument("--command", default="", help="the command that produced the runs (recorded)")
    a = ap.parse_args()
    results = []
    for desc_path in sorted(glob.glob(os.path.join(a.runs, "*-n*.json"))):
        desc = json.load(open(desc_path))
        results.append(summarize_run(desc_path[:-5], desc, a.warmup))
    if not results:
        raise SystemExit(f"no runs in {a.runs}")
    for mode in {r["mode"] for r in results}:
        rs = [r for r in results if r["mode"] == mode]
        base = min(rs, key=lambda r: r["ranks"])
        for r in rs:
            r["efficiency"] = r["samples_per_second_per_rank"] / base["samples_per_second_per_rank"]
            r["speedup"] = r["samples_per_second"] / base["samples_per_second"]
    results.sort(key=lambda r: (r["mode"], r["ranks"]))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
    doc = {"date": time.strftime("%Y-%m-%d %H:%M"), "commit": commit, "machine": {"cpu": cpu, "cores": os.cpu_count()},
           "command": a.command, "warmup_steps": a.warmup, "runs": results}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    svg_path = os.path.splitext(a.out)[0] + ".svg"
    svg(results, svg_path)
    print("\n| mode | ranks x threads | global batch | samples/s | per rank | efficiency | step (s) | "
          + " | ".join(LABELS[k] for k in PARTS + ["other_s"]) + " |")
    print("|---" * (7 + len(PARTS) + 1) + "|")
    for r in results:
        b = r["breakdown_median_s"]
        print(f'| {r["mode"]} | {r["ranks"]} x {r["threads"]} | {r["global_batch"]} | {r["samples_per_second"]:.1f} | '
              f'{r["samples_per_second_per_rank"]:.1f} | {100*r["efficiency"]:.0f} % | {r["median_step_time_s"]:.3f} | '
              + " | ".join(f"{b[k]:.3f}" for k in PARTS + ["other_s"]) + " |")
    print(f"wrote {a.out} and {svg_path}")


if __name__ == "__main__":
    main()
