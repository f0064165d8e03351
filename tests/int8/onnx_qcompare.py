#!/usr/bin/python3
"""onnx_qcompare.py GOT.npy WANT.npy WHAT: exact equality of dtype, shape and bytes (the
quantized ONNX tests, tests/onnx_quant.sh); prints the first differing elements otherwise."""
import sys

import numpy as np

got, want, what = np.load(sys.argv[1]), np.load(sys.argv[2]), sys.argv[3]
if got.dtype != want.dtype or got.shape != want.shape:
    sys.exit(f"FAIL {what}: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}")
if got.tobytes() != want.tobytes():
    diff = np.argwhere(got != want)[:5]  # (-0.0 vs 0.0 differ in bytes only: also a failure)
    rows = ", ".join(f"{tuple(int(i) for i in d)}: {got[tuple(d)]} vs {want[tuple(d)]}"
                     for d in diff)
    n = int(np.sum(got != want))
    sys.exit(f"FAIL {what}: {n} of {got.size} elements differ ({rows})")
print(f"ok {what}: {got.size} {got.dtype} elements equal")
