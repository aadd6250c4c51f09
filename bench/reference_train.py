#!/usr/bin/python3
"""Python PyTorch reference training loop for the C++-vs-Python step-time comparison (issue #7;
bench/run_reference.sh runs both and prints the ratio).

Trains python/pyramidclip_torch.py's model of our *standard* variant (same architecture, key
names and arithmetic as the C++ model) the way open_clip's train loop does, on the same batch
shape, thread count and step count as `pyramidclip train --config CONFIG`:
  * inputs: in-memory tensors (CLIP-normalized-like random images [B,3,H,W], token rows with SOT,
    random ids and EOT = the largest id), fixed before the loop: no data loading is timed (the
    C++ side subtracts its data_wait_s);
  * loss: our `clip` objective, symmetric InfoNCE (CLIP / open_clip ClipLoss, alpha 0), loss.item()
    every step as a training loop logs it;
  * optimizer: torch.optim.AdamW with the trainer's lr, betas, eps and weight decay, no decay on
    norms, biases and logit_scale (open_clip's rule, src/run/param_groups.cpp), the trainer's
    warmup + cosine LR keyed to samples, logit_scale clamped to [0, log 100] after each step;
  * torch.set_num_threads(--threads); one process.
Per step it times forward (+ loss), backward and optimizer (zero_grad + step + clamp) and writes
them to --json with the medians after --warmup steps.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import pyramidclip_torch as pct  # noqa: E402


def lr_at(samples_seen, base_lr, warmup, total):
    """src/run/lr_schedule.h"""
    if samples_seen < warmup:
        return base_lr * (samples_seen + 1.0) / warmup
    span = max(1.0, total - warmup)
    progress = min(max((samples_seen - warmup) / span, 0.0), 1.0)
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * progress))


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        excluded = p.dim() < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if excluded else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="our INI config (configs/*.cfg); [model] and [train] are used")
    ap.add_argument("--batch", type=int, help="batch (default: the config's train.global-batch)")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5, help="leading steps left out of the medians")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write per-step times and medians here")
    ap.add_argument("--profile-step", type=int, default=0,
                    help="record an operator trace from this step on (the legacy CPU profiler, as "
                         "`pyramidclip train --train.profile-step`); 0: off")
    ap.add_argument("--profile-steps", type=int, default=1, help="steps in the operator trace")
    ap.add_argument("--profile-out", default="python-profile.json", help="Chrome trace file of --profile-step")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = pct.load_config(a.config)
    m, tr = cfg["model"], cfg.get("train", {})
    batch = a.batch or int(tr.get("global-batch", 128))
    lr, wd = float(tr.get("lr", 5e-4)), float(tr.get("weight-decay", 0.1))
    betas = (float(tr.get("beta1", 0.9)), float(tr.get("beta2", 0.98)))
    eps = float(tr.get("eps", 1e-8))
    warmup_samples = float(tr.get("warmup-samples", 2000))
    total_samples = float(a.steps * batch)

    model = pct.build_model(cfg)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, wd), lr=lr, betas=betas, eps=eps)

    images = torch.randn(batch, 3, m["image_size"], m["image_size"])
    ctx, vocab = m["context_length"], m["vocab_size"]
    tokens = torch.zeros(batch, ctx, dtype=torch.long)
    lengths = torch.randint(5, 20, (batch,))
    for i in range(batch):  # SOT, words, EOT (the largest id), zero padding: as the tokenizer's rows
        n = int(lengths[i])
        tokens[i, 0] = vocab - 2
        tokens[i, 1:n + 1] = torch.randint(1, vocab - 2, (n,))
        tokens[i, n + 1] = vocab - 1
    labels = torch.arange(batch)

    steps = []
    samples_seen = 0.0
    profiler = None
    scope = torch.autograd.profiler.record_function  # same scope names as the C++ trainer's trace
    for step in range(1, a.steps + 1):
        if step == a.profile_step:
            profiler = torch.autograd.profiler.profile(use_kineto=False)
            profiler.__enter__()
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(samples_seen, lr, warmup_samples, total_samples)
        with scope("pc::forward"):
            image_emb, text_emb, scale = model(images, tokens)
            logits = scale * image_emb @ text_emb.t()
            loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
        loss_value = loss.item()
        t1 = time.perf_counter()
        with scope("pc::backward"):
            loss.backward()
        t2 = time.perf_counter()
        with scope("pc::optimizer"):
            opt.step()
            opt.zero_grad()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
        t3 = time.perf_counter()
        if profiler and step == a.profile_step + a.profile_steps - 1:
            profiler.__exit__(None, None, None)
            profiler.export_chrome_trace(a.profile_out)
            print(f"python: operator trace of steps {a.profile_step}..{step} written to {a.profile_out}")
            profiler = None
        samples_seen += batch
        steps.append({"step": step, "loss": loss_value, "forward_s": t1 - t0, "backward_s": t2 - t1,
                      "optimizer_s": t3 - t2, "step_time_s": t3 - t0})
    kept = [s for s in steps if s["step"] > a.warmup]
    med = {k: statistics.median(s[k] for s in kept) for k in ("forward_s", "backward_s", "optimizer_s", "step_time_s")}
    print(f"python: {m['name']} batch {batch}, {a.threads} thread(s): median step {med['step_time_s']:.3f} s "
          f"(forward {med['forward_s']:.3f}, backward {med['backward_s']:.3f}, optimizer {med['optimizer_s']:.3f}); "
          f"loss {steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}")
    if a.json:
        doc = {"impl": "python", "config": a.config, "preset": m["name"], "batch": batch, "threads": a.threads,
               "steps": a.steps, "warmup": a.warmup, "torch": torch.__version__,
               "parameters": sum(p.numel() for p in model.parameters()), "medians": med, "per_step": steps}
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
