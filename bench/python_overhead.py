#!/usr/bin/python3
"""bench/python_overhead.py — per-call overhead of lathe's Python package over the C call:
the batch-1 MLP's forward entry timed call by call (median) through
  C       lathe_call with preallocated tensors (bench/python_overhead.c, built here with cc
          against the same liblathe.so),
  forward model.forward(x=x): checks, a new output array, the ctypes call,
  run+out entry.run({"x": x}, out={"probs": y}): the same into a preallocated output,
and the overhead = Python median - C median (target: <= 5 us for model.forward). Both compile
the model with the same backend in the same way, so the generated code is the same.

  /usr/bin/python3 bench/python_overhead.py [--reps N] [--backend jit|cc] [--model FILE]

Run it on a quiet machine: the numbers are medians of single calls (tens of microseconds).
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import lathe  # noqa: E402


def c_median_ns(model, reps, backend):
    libpath = lathe.library_path()
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "python_overhead")
        cc = shutil.which("cc") or "gcc"
        subprocess.run([cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-I",
                        os.path.join(ROOT, "include"),
                        os.path.join(ROOT, "bench", "python_overhead.c"), "-o", exe, libpath,
                        "-Wl,-rpath," + os.path.dirname(os.path.abspath(libpath))], check=True)
        out = subprocess.run([exe, model, str(reps), backend], check=True, capture_output=True,
                             text=True).stdout
    return int(out.split()[1])


def py_median_ns(call, reps):
    for _ in range(reps // 10):
        call()
    times = []
    clock = time.perf_counter_ns
    for _ in range(reps):
        t0 = clock()
        call()
        times.append(clock() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--reps", type=int, default=20000)
    ap.add_argument("--backend", default="jit", choices=["jit", "cc"])
    ap.add_argument("--model", default=os.path.join(ROOT, "examples", "mlp.lathe"))
    a = ap.parse_args()
    m = lathe.compile(a.model, defines={"N": 1}, backend=a.backend)
    x = np.random.default_rng(0).random(m.info.entries["forward"].inputs["x"].shape,
                                        np.float32)
    y = np.empty(m.info.entries["forward"].outputs["probs"].shape, np.float32)
    fwd = m.entry("forward")
    c = c_median_ns(a.model, a.reps, a.backend)
    py = py_median_ns(lambda: m.forward(x=x), a.reps)
    run = py_median_ns(lambda: fwd.run({"x": x}, out={"probs": y}), a.reps)
    print(f"batch-1 {os.path.basename(a.model)} forward ({m.info.backend}), median of "
          f"{a.reps} calls")
    print(f"  C lathe_call          {c / 1e3:8.2f} us")
    print(f"  model.forward(x=x)    {py / 1e3:8.2f} us   overhead {(py - c) / 1e3:6.2f} us")
    print(f"  entry.run(.., out=..) {run / 1e3:8.2f} us   overhead {(run - c) / 1e3:6.2f} us")


if __name__ == "__main__":
    main()
