"""Checks that `pyramidclip ckpt export` wrote what Python's torch.load reads as the original state dict.

usage: check_export.py ORIGINAL.pt EXPORTED.pt   (exit 0: same keys, dtypes, shapes and bytes; 1: not)
"""
import sys

import torch


def main():
    original = torch.load(sys.argv[1], map_location="cpu")
    exported = torch.load(sys.argv[2], map_location="cpu")
    problems = []
    if set(original) != set(exported):
        problems.append(f"keys differ: only in original {sorted(set(original) - set(exported))[:5]}, "
                        f"only in exported {sorted(set(exported) - set(original))[:5]}")
    for k in sorted(set(original) & set(exported)):
        a, b = original[k], exported[k]
        if a.dtype != b.dtype or a.shape != b.shape:
            problems.append(f"{k}: {a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}")
        elif a.contiguous().numpy().tobytes() != b.contiguous().numpy().tobytes():
            problems.append(f"{k}: bytes differ")
    if problems:
        print("; ".join(problems[:5]))
        return 1
    print(f"OK: {len(exported)} tensors equal bitwise")
    return 0


if __name__ == "__main__":
    sys.exit(main())
