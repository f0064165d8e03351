#!/usr/bin/env python3
"""scripts/idx-to-npy.py OUT_DIR [SRC_DIR] — Fashion-MNIST (or MNIST) from IDX files to .npy.

Reads SRC_DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (default: Debian's
dataset-fashion-mnist, /usr/share/datasets/fashion-mnist) and writes one directory of .npy
files per split, named after the inputs of examples/cnn.lathe and examples/mlp.lathe:

  OUT_DIR/train/x.npy      f32 [60000, 28, 28], pixels / 255 in [0, 1]
  OUT_DIR/train/label.npy  i32 [60000], class ids 0..9
  OUT_DIR/test/x.npy       f32 [10000, 28, 28]
  OUT_DIR/test/label.npy   i32 [10000]

The pixels are scaled exactly as `--data fashion-mnist` scales them (an f32 division by 255),
so `lathe train MODEL --data OUT_DIR/train --val OUT_DIR/test` trains on the same numbers as
`lathe train MODEL --data fashion-mnist`. NumPy only. Each file is written to a temp file,
fsynced and renamed, so it only ever appears complete; bad input is an error naming the file
and what was expected, exit status 1.
"""
import gzip
import os
import sys

import numpy as np

DEFAULT_SRC = "/usr/share/datasets/fashion-mnist"
SPLITS = (("train", "train"), ("t10k", "test"))  # IDX prefix, output directory


class IdxError(Exception):
    pass


def read_idx(path):
    """An IDX file of unsigned bytes (type 0x08) as a uint8 array of its dims."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip raises both for a cut or corrupt stream
        raise IdxError(f"{path}: cannot read: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IdxError(f"{path}: not an IDX file (expected the magic 00 00 <type> <rank>)")
    if data[2] != 0x08:
        raise IdxError(f"{path}: IDX element type 0x{data[2]:02x}, expected 0x08 (u8)")
    rank = data[3]
    head = 4 + 4 * rank
    if rank == 0 or len(data) < head:
        raise IdxError(f"{path}: truncated IDX header (rank {rank})")
    dims = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(rank))
    want = head + int(np.prod(dims, dtype=np.int64))
    if len(data) != want:
        raise IdxError(f"{path}: {len(data)} bytes, expected {want} for dims {list(dims)}")
    return np.frombuffer(data, np.uint8, offset=head).reshape(dims)


def find(src, base):
    for path in (f"{src}/{base}", f"{src}/{base}.gz"):
        if os.path.exists(path):
            return path
    raise IdxError(f"{src}/{base} (or .gz) not found; install Debian's dataset-fashion-mnist")


def save_atomic(path, array):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def convert(src, out):
    arrays = []
    for prefix, name in SPLITS:  # read and check everything before writing anything
        ipath = find(src, f"{prefix}-images-idx3-ubyte")
        lpath = find(src, f"{prefix}-labels-idx1-ubyte")
        img, lab = read_idx(ipath), read_idx(lpath)
        if img.ndim != 3 or lab.ndim != 1:
            raise IdxError(f"{ipath}: expected images [n, rows, cols] and labels [n]")
        if img.shape[0] != lab.shape[0]:
            raise IdxError(f"{ipath} has {img.shape[0]} images but {lpath} has {lab.shape[0]}")
        x = img.astype(np.float32) / np.float32(255)  # as runtime/dataset.c: (float)px / 255.0f
        arrays.append((name, x, lab.astype(np.int32)))
    for name, x, label in arrays:
        os.makedirs(f"{out}/{name}", exist_ok=True)
        save_atomic(f"{out}/{name}/x.npy", x)
        save_atomic(f"{out}/{name}/label.npy", label)
        print(f"{out}/{name}: x f32{list(x.shape)}, label i32{list(label.shape)}")


def main(argv):
    if len(argv) not in (2, 3) or argv[1].startswith("-"):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    try:
        convert(argv[2] if len(argv) == 3 else DEFAULT_SRC, argv[1])
    except (IdxError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
