#!/usr/bin/python3
"""Decode + augment throughput of the usual Python pipeline (PIL + torchvision), the reference
half of bench/run_decode_augment.sh (issue #3).

Does per sample what bench_decode_augment does in C++, on the same shards: PIL.Image.open +
convert("RGB") (with --draft, PIL's reduced-DCT mode img.draft("RGB", (min_side, min_side)) first,
min_side = ceil(size / sqrt(0.5)) as the C++ loader uses), then torchvision RandomResizedCrop
(global view scale 0.9..1, local view 0.5..1, ratio 3/4..4/3, bilinear, antialiased) + ToTensor +
Normalize(CLIP mean/std) for both views.

Workers are processes (as open_clip's DataLoader workers are), each with
torch.set_num_threads(1), forked after the shards were read into memory (disk I/O is not timed).
Worker t takes samples t, t+T, ... round and round until --seconds are up; all start together
after a warm-up. Prints samples/s in total and per worker, and the mean time per sample of the
decode and of the two views.

Needs Debian's python3-pil and python3-torchvision (run it with /usr/bin/python3).
"""
import argparse
import io
import json
import math
import multiprocessing as mp
import os
import tarfile
import time

import torch
import torchvision.transforms as T
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
GLOBAL_SCALE, LOCAL_SCALE = (0.9, 1.0), (0.5, 1.0)

SAMPLES = []  # (key, jpeg bytes), filled before the workers fork


def load_samples(shard_dir):
    """Every sample with a .jpg and a .txt, WebDataset-style (key = path up to the first '.')."""
    out = []
    for name in sorted(os.listdir(shard_dir)):
        if not name.endswith(".tar"):
            continue
        groups = {}
        with tarfile.open(os.path.join(shard_dir, name)) as tar:
            for m in tar:
                if not m.isfile():
                    continue
                base = os.path.basename(m.name)
                if "." not in base:
                    continue
                key = os.path.join(os.path.dirname(m.name), base.split(".", 1)[0])
                ext = base.split(".", 1)[1].lower()
                groups.setdefault(key, {})[ext] = tar.extractfile(m).read()
        for key, members in groups.items():
            if "jpg" in members and "txt" in members:
                out.append((key, members["jpg"]))
    return out


def worker(t, workers, seconds, size, draft, barrier, results):
    torch.set_num_threads(1)
    torch.manual_seed(1000 + t)
    min_side = math.ceil(size / math.sqrt(min(GLOBAL_SCALE[0], LOCAL_SCALE[0])))
    bilinear = T.InterpolationMode.BILINEAR
    global_crop = T.RandomResizedCrop(size, scale=GLOBAL_SCALE, ratio=(3 / 4, 4 / 3), interpolation=bilinear,
                                      antialias=True)
    local_crop = T.RandomResizedCrop(size, scale=LOCAL_SCALE, ratio=(3 / 4, 4 / 3), interpolation=bilinear,
                                     antialias=True)
    tail = T.Compose([T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])
    clock = time.perf_counter

    def one(i, stats):
        t0 = clock()
        img = Image.open(io.BytesIO(SAMPLES[i][1]))
        if draft:
            img.draft("RGB", (min_side, min_side))
        img = img.convert("RGB")
        t1 = clock()
        g = tail(global_crop(img))
        l = tail(local_crop(img))
        t2 = clock()
        if stats is not None:
            stats[0] += 1
            stats[1] += t1 - t0
            stats[2] += t2 - t1
        return g, l

    for i in range(t, min(len(SAMPLES), t + 8 * workers), workers):  # warm-up
        one(i, None)
    barrier.wait()
    start, cpu0 = clock(), time.process_time()
    deadline = start + seconds
    stats = [0, 0.0, 0.0]
    i = t
    while True:
        one(i, stats)
        if clock() >= deadline:
            break
        i += workers
        if i >= len(SAMPLES):
            i = t
    results.put((t, stats[0], stats[1], stats[2], clock() - start, time.process_time() - cpu0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shards", required=True, help="directory of .tar shards (bench_decode_augment --write-shards)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--draft", action="store_true", help="PIL's reduced-DCT decode (img.draft) before convert")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()

    SAMPLES.extend(load_samples(args.shards))
    if not SAMPLES:
        raise SystemExit(f"no .jpg+.txt samples in {args.shards}")
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(args.workers), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(t, args.workers, args.seconds, args.size, args.draft, barrier, results))
             for t in range(args.workers)]
    for p in procs:
        p.start()
    rows = [results.get() for _ in procs]
    for p in procs:
        p.join()
    processed = sum(r[1] for r in rows)
    elapsed = max(r[4] for r in rows)
    total = processed / elapsed
    impl = "pil-draft" if args.draft else "pil"
    res = {
        "impl": impl, "threads": args.workers, "size": args.size,
        "min_side": math.ceil(args.size / math.sqrt(LOCAL_SCALE[0])) if args.draft else 0,
        "dataset_samples": len(SAMPLES), "processed": processed, "elapsed_s": elapsed,
        "samples_per_s": total, "samples_per_s_per_thread": total / args.workers,
        "cpu_s": sum(r[5] for r in rows), "samples_per_cpu_s": processed / sum(r[5] for r in rows),
        "decode_ms_per_sample": 1e3 * sum(r[2] for r in rows) / processed,
        "crops_ms_per_sample": 1e3 * sum(r[3] for r in rows) / processed,
    }
    print(f"{impl} workers={args.workers} size={args.size} samples={len(SAMPLES)} processed={processed} "
          f"elapsed={elapsed:.2f}s: {total:.1f} samples/s, {total / args.workers:.1f} per worker, "
          f"{res['samples_per_cpu_s']:.1f} per CPU second "
          f"(decode {res['decode_ms_per_sample']:.3f} ms + 2 views {res['crops_ms_per_sample']:.3f} ms per sample)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f)
            f.write("\n")


if __name__ == "__main__":
    main()
