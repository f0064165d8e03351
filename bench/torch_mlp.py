"""bench/torch_mlp.py — the PyTorch peer of examples/mlp.lathe for bench/run.sh.

The same architecture (784-256-128-10, ReLU, softmax output for inference, cross-entropy loss,
Adam lr 1e-3, Glorot-uniform weights and zero biases like lib/nn.lathe's dense) on one thread
(torch.set_num_threads(1); run.sh also sets OMP_NUM_THREADS=1 and OPENBLAS_NUM_THREADS=1).

  torch_mlp.py infer --batch N   time per call of softmax(model(x)) under no_grad
  torch_mlp.py train --batch N   time per call of one Adam step (zero_grad, forward,
                                 cross_entropy, backward, step, loss.item())
  torch_mlp.py epoch [--data DIR] one shuffled epoch of Fashion-MNIST at batch 64 (full
                                 batches only, as `lathe train` does), then test accuracy

Timing of infer/train: three warm-up calls, a calibration, then the median over --reps runs
of enough calls to last --min-time seconds each. Inputs are uniform in [0, 1), labels
uniform in 0..9. Output (stdout): `seconds <median per call>` for infer/train; for epoch
`epoch_seconds <training loop>`, `total_seconds <data load + loop + test>` and
`test_accuracy <percent>`. Timings are reported, never asserted.
"""

import argparse
import gzip
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:  # already set by an earlier parallel call; harmless
    pass


def make_model():
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    return model


def time_calls(fn, reps, min_time):
    """Median seconds per call of fn() over reps runs, each lasting about min_time.

    Warm-up: three calls (lazy allocations, optimizer state), then a calibration that doubles
    the number of calls until a batch lasts min_time / 4."""
    for _ in range(3):
        fn()
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time / 4:
            break
        calls *= 2
    calls = max(1, int(calls * min_time / elapsed))
    per_call = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        per_call.append((time.perf_counter() - t0) / calls)
    return statistics.median(per_call), calls


def random_batch(batch):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 784, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)
    return x, y


def bench_infer(args):
    model = make_model().eval()
    x, _ = random_batch(args.batch)

    def step():
        with torch.no_grad():
            return torch.softmax(model(x), dim=1)

    seconds, calls = time_calls(step, args.reps, args.min_time)
    print(f"seconds {seconds:.9g} calls {calls} reps {args.reps}")


def bench_train(args):
    model = make_model().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = random_batch(args.batch)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    seconds, calls = time_calls(step, args.reps, args.min_time)
    print(f"seconds {seconds:.9g} calls {calls} reps {args.reps}")


def read_idx(path):
    """An IDX file (gzip or plain) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, rank = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        sys.exit(f"torch_mlp: {path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load_split(data_dir, prefix):
    def path(kind):
        base = f"{data_dir}/{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
        return base if os.path.exists(base) else base + ".gz"
    x = torch.from_numpy(read_idx(path("images")).reshape(-1, 784).astype(np.float32) / 255.0)
    y = torch.from_numpy(read_idx(path("labels")).astype(np.int64))
    return x, y


def bench_epoch(args):
    t_start = time.perf_counter()
    torch.manual_seed(args.seed)
    x_train, y_train = load_split(args.data, "train")
    x_test, y_test = load_split(args.data, "t10k")
    model = make_model().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t_loop = time.perf_counter()
    order = torch.randperm(x_train.shape[0])
    steps = x_train.shape[0] // args.batch
    for s in range(steps):
        idx = order[s * args.batch:(s + 1) * args.batch]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        loss.backward()
        opt.step()
    loop_seconds = time.perf_counter() - t_loop
    model.eval()
    with torch.no_grad():
        correct = (model(x_test).argmax(dim=1) == y_test).sum().item()
    print(f"epoch_seconds {loop_seconds:.6g}")
    print(f"total_seconds {time.perf_counter() - t_start:.6g}")
    print(f"test_accuracy {100.0 * correct / x_test.shape[0]:.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["infer", "train", "epoch"])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = p.parse_args()
    {"infer": bench_infer, "train": bench_train, "epoch": bench_epoch}[args.mode](args)


if __name__ == "__main__":
    main()
