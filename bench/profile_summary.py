#!/usr/bin/python3
"""Self time per operator of one or two Chrome-trace operator profiles, per training phase.

    python3 bench/profile_summary.py RUN/profile/rank-0.json                       # one trace
    python3 bench/profile_summary.py cpp.json python.json --names "C++,Python"      # side by side

Traces come from `pyramidclip train --train.profile-step N --train.profile-steps K` or
bench/reference_train.py --profile-step N --profile-steps K (the same LibTorch profiler; the
phases are their record_function scopes pc::data / pc::forward / pc::backward / pc::optimizer).
Self time = an event's duration minus its children's on the same thread; each event belongs to the
phase scope that encloses it. Times are per profiled step (--steps K divides them).
"""
import argparse
import collections
import json

PHASES = ("pc::data", "pc::forward", "pc::backward", "pc::optimizer")


def self_times(path, steps):
    with open(path) as f:
        events = [e for e in json.load(f) if e.get("ph") == "X"]
    by_thread = collections.defaultdict(list)
    for e in events:
        by_thread[e.get("tid")].append(e)
    table = collections.defaultdict(lambda: [0, 0.0])  # (phase, name) -> [calls, self us]
    phase_total = collections.Counter()
    for evs in by_thread.values():
        # parents first: earlier start, then the longer of two that start together
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [end, event, child time]
        for e in evs:
            while stack and e["ts"] >= stack[-1][0] - 1e-3:
                close(stack.pop(), stack, table, phase_total)
            stack.append([e["ts"] + e["dur"], e, 0.0])
        while stack:
            close(stack.pop(), stack, table, phase_total)
    scale = 1e-3 / steps  # us -> ms per step
    return ({k: (c / steps, t * scale) for k, (c, t) in table.items()},
            {p: t * scale for p, t in phase_total.items()})


def close(entry, stack, table, phase_total):
    _, e, child = entry
    if stack:
        stack[-1][2] += e["dur"]
    name = e["name"]
    if name in PHASES:
        phase_total[name] += e["dur"]
        return
    phase = next((s[1]["name"] for s in reversed(stack) if s[1]["name"] in PHASES), "other")
    row = table[(phase, name)]
    row[0] += 1
    row[1] += max(0.0, e["dur"] - child)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("traces", nargs="+", help="one or two Chrome-trace JSON files")
    ap.add_argument("--names", help="comma-separated column names (default: the file names)")
    ap.add_argument("--steps", type=int, default=1, help="profiled steps in each trace (times are per step)")
    ap.add_argument("--top", type=int, default=25, help="rows per phase")
    a = ap.parse_args()
    if len(a.traces) > 2:
        ap.error("give one or two traces")
    names = a.names.split(",") if a.names else a.traces
    results = [self_times(t, a.steps) for t in a.traces]
    print("phase totals, ms per step: " + "; ".join(
        f"{n}: " + ", ".join(f"{p.split('::')[1]} {r[1].get(p, 0):.1f}" for p in PHASES) for n, r in zip(names, results)))
    keys = set().union(*(r[0] for r in results))
    for phase in PHASES + ("other",):
        rows = [k for k in keys if k[0] == phase]
        if not rows:
            continue
        def cost(k):
            ts = [r[0].get(k, (0, 0.0))[1] for r in results]
            return abs(ts[0] - ts[1]) if len(ts) == 2 else ts[0]
        rows.sort(key=cost, reverse=True)
        head = "".join(f" {n[:18]:>18} calls" for n in names) + ("   diff ms" if len(results) == 2 else "")
        print(f"\n{phase}: self ms per step{head}")
        for k in rows[:a.top]:
            cells = "".join(f" {r[0].get(k, (0, 0.0))[1]:18.2f} {r[0].get(k, (0, 0.0))[0]:5.0f}" for r in results)
            diff = f" {results[0][0].get(k, (0, 0.0))[1] - results[1][0].get(k, (0, 0.0))[1]:+9.2f}" if len(results) == 2 else ""
            print(f"  {k[1][:60]:60}{cells}{diff}")


if __name__ == "__main__":
    main()
