#!/usr/bin/python3
"""Export Fashion-MNIST (Debian package dataset-fashion-mnist) as an ImageFolder tree for zero-shot eval.

    /usr/bin/python3 scripts/fashion_mnist_imagefolder.py --out data/fashion-mnist [--split test] [--per-class 100]
    build/pyramidclip eval --config RUN/config.cfg --weights RUN/model.h5 \
        --images data/fashion-mnist --classes data/fashion-mnist/classes.txt

Writes OUT/<class name>/<index>.png (28x28 grayscale) and OUT/classes.txt. The folder names are the readable
class names used in the prompts ("a photo of a sneaker."); sorted, they give the labels 0..9 exactly as
torchvision's ImageFolder and our eval loader number them. Standard library only (gzip, zlib, struct).
"""
import argparse
import gzip
import os
import struct
import sys
import zlib

SOURCE = "/usr/share/datasets/fashion-mnist"
# Fashion-MNIST label index -> readable name (the dataset's README); "t-shirt/top" has a slash, not a folder name.
NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def fail(msg):
    print(f"fashion_mnist_imagefolder: {msg}", file=sys.stderr)
    sys.exit(2)


def read_idx(path, magic, dims):
    """The idx format: big-endian magic, `dims` sizes, then uint8 data."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"cannot read {path} ({e}): install it with 'apt-get install dataset-fashion-mnist' or pass --source")
    header = struct.unpack(">" + "I" * (1 + dims), data[: 4 * (1 + dims)])
    if header[0] != magic:
        fail(f"{path} is not an idx file with magic {magic:#x} (got {header[0]:#x}): re-download the dataset")
    shape = header[1:]
    body = data[4 * (1 + dims):]
    expected = 1
    for s in shape:
        expected *= s
    if len(body) != expected:
        fail(f"{path} holds {len(body)} bytes of data, its header says {expected}: the file is truncated")
    return shape, body


def png_gray(width, height, pixels):
    """An 8-bit grayscale PNG: signature, IHDR, one IDAT (filter byte 0 per row), IEND."""
    def chunk(tag, payload):
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))
    rows = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output ImageFolder root")
    ap.add_argument("--split", choices=["test", "train"], default="test", help="test = t10k (10,000 images)")
    ap.add_argument("--per-class", type=int, default=0, help="first N images of each class (0 = all)")
    ap.add_argument("--source", default=SOURCE, help="directory with the *-idx?-ubyte.gz files")
    args = ap.parse_args()
    if args.per_class < 0:
        fail("--per-class must be >= 0")

    prefix = "t10k" if args.split == "test" else "train"
    (count, rows, cols), images = read_idx(os.path.join(args.source, f"{prefix}-images-idx3-ubyte.gz"), 0x803, 3)
    (label_count,), labels = read_idx(os.path.join(args.source, f"{prefix}-labels-idx1-ubyte.gz"), 0x801, 1)
    if label_count != count:
        fail(f"{count} images but {label_count} labels in {args.source}: the files do not belong together")

    for name in NAMES:
        os.makedirs(os.path.join(args.out, name), exist_ok=True)
    written = [0] * len(NAMES)
    size = rows * cols
    for i in range(count):
        label = labels[i]
        if label >= len(NAMES):
            fail(f"label {label} of image {i} is not a Fashion-MNIST class (0..9): the label file is damaged")
        if args.per_class and written[label] >= args.per_class:
            continue
        path = os.path.join(args.out, NAMES[label], f"{i:05d}.png")
        with open(path + ".tmp", "wb") as f:
            f.write(png_gray(cols, rows, images[i * size:(i + 1) * size]))
        os.replace(path + ".tmp", path)
        written[label] += 1
    with open(os.path.join(args.out, "classes.txt"), "w") as f:
        f.write("\n".join(sorted(NAMES)) + "\n")
    print(f"fashion_mnist_imagefolder: wrote {sum(written)} images of {len(NAMES)} classes ({args.split} split) "
          f"to {args.out}; class names in {os.path.join(args.out, 'classes.txt')}")


if __name__ == "__main__":
    main()
