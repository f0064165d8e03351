#!/usr/bin/python3
"""bench/python_epoch.py — one Fashion-MNIST training epoch of examples/mlp.lathe driven from
Python against `lathe train` on the same data, as training samples per second: model.fit
(the runtime trainer lathe train runs, on the NumPy arrays wrapped zero-copy and on the
fashion-mnist spec) and a model.train_step loop over shuffled batches of 64 gathered with
NumPy. The issue's bar: model.fit within 5% of lathe train.

  /usr/bin/python3 bench/python_epoch.py [--limit N] [--data DIR] [--backend cc|jit]

Both build the model the same way (cc + dlopen, as `lathe train` does; --backend jit times
the JIT's code instead), batch 64, and time training steps only (not the compile; `lathe
train`'s figure is its progress line's samples/s, model.fit's the history's epoch
seconds). Run it on a quiet machine.
"""

import argparse
import gzip
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import lathe  # noqa: E402


def idx(path, skip):
    with gzip.open(path) as f:
        return np.frombuffer(f.read(), np.uint8, offset=skip)


def python_epoch(model_file, x, y, batch, backend):
    m = lathe.compile(model_file, backend=backend)
    order = np.random.default_rng(0).permutation(len(x))
    steps = len(x) // batch
    t0 = time.perf_counter()
    for s in range(steps):
        i = order[s * batch:(s + 1) * batch]
        loss = m.train_step(x=x[i], label=y[i])
    return steps * batch / (time.perf_counter() - t0), loss


def fit_epoch(model_file, data, batch, backend, limit):
    """model.fit for one epoch: samples/s over the epoch's training time (its history)."""
    m = lathe.compile(model_file, backend=backend)
    h = m.fit(data, epochs=1, seed=0, limit=limit, progress=False)[0]
    n = len(data["x"]) if isinstance(data, dict) else 60000  # the Fashion-MNIST train split
    n = min(n, limit) if limit else n
    return n // batch * batch / h["seconds"], h["loss"]


def cli_epoch(model_file, data, limit):
    lathe_bin = os.environ.get("LATHE_BIN") or os.path.join(ROOT, "build", "lathe")
    cmd = [lathe_bin, "train", model_file, "--data", f"fashion-mnist={data}", "--epochs", "1"]
    if limit:
        cmd += ["--limit", str(limit)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    rates = re.findall(r"([0-9.]+) samples/s", p.stdout + p.stderr)
    return float(rates[-1]) if rates else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--limit", type=int, default=0, help="use only the first N samples")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--backend", default="cc", choices=["cc", "jit"])
    a = ap.parse_args()
    x = idx(os.path.join(a.data, "train-images-idx3-ubyte.gz"), 16).reshape(-1, 784)
    y = idx(os.path.join(a.data, "train-labels-idx1-ubyte.gz"), 8).astype(np.int32)
    if a.limit:
        x, y = x[:a.limit], y[:a.limit]
    x = (x / 255).astype(np.float32)
    model_file = os.path.join(ROOT, "examples", "mlp.lathe")
    py, loss = python_epoch(model_file, x, y, 64, a.backend)
    fit_np, _ = fit_epoch(model_file, {"x": x, "label": y}, 64, a.backend, 0)
    fit_spec, _ = fit_epoch(model_file, f"fashion-mnist={a.data}", 64, a.backend, a.limit)
    cli = cli_epoch(model_file, a.data, a.limit)
    print(f"mlp.lathe, one epoch of {len(x)} samples, batch 64")
    print(f"  lathe train             {cli:10.0f} samples/s")
    for label, v in (("fit, NumPy arrays", fit_np), ("fit, fashion-mnist", fit_spec)):
        print(f"  {label + f' ({a.backend})':23} {v:10.0f} samples/s   ({v / cli:.1%} of lathe "
              "train)")
    print(f"  {f'train_step loop ({a.backend})':23} {py:10.0f} samples/s   ({py / cli:.1%} of "
          f"lathe train; last loss {loss:.4f})")


if __name__ == "__main__":
    main()
