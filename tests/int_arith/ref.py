#!/usr/bin/env python3
"""Inputs and expected outputs of tests/int_arith/arith.lathe (tests/int_arith.sh).

Integer arithmetic in lathe follows two's complement, like NumPy: + - * and unary - wrap in
the element's width, abs(MIN) is MIN. Division truncates toward zero (C's rule, not NumPy's
floor), x / 0 is 0 and MIN / -1 wraps to MIN. sum and matmul wrap too, mean is that wrapped sum divided
by the count, truncated toward zero (NumPy's mean with the element's dtype), max is exact;
computed here with Python integers.
usage: ref.py DIR   (writes DIR/in/*.npy and DIR/want/*.npy)
"""
import os
import sys

import numpy as np

TYPES = {"i8": np.int8, "u8": np.uint8, "i32": np.int32, "i64": np.int64}


def edge_values(dt):
    info = np.iinfo(dt)
    lo, hi = int(info.min), int(info.max)
    a = [lo, lo, hi, hi, -1 if lo < 0 else 1, 0, 7, hi // 2 + 3, lo + 1, 100 % (hi + 1), 5, 9]
    b = [-1 if lo < 0 else 2, 1, 1, hi, 0, 0, -3 if lo < 0 else 3, 2, lo, 3, hi, -2 if lo < 0 else 4]
    return np.array(a, dtype=dt), np.array(b, dtype=dt)


def wrap(v, dt):
    bits = np.iinfo(dt).bits
    v &= (1 << bits) - 1
    if np.iinfo(dt).min < 0 and v >= 1 << (bits - 1):
        v -= 1 << bits
    return v


def tdiv(x, y):
    if y == 0:
        return 0
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


def main():
    out = sys.argv[1]
    os.makedirs(out + "/in", exist_ok=True)
    os.makedirs(out + "/want", exist_ok=True)
    for name, dt in TYPES.items():
        a, b = edge_values(dt)
        np.save(f"{out}/in/a_{name}.npy", a)
        np.save(f"{out}/in/b_{name}.npy", b)
        A, B = [int(v) for v in a], [int(v) for v in b]
        ops = {
            "add": [x + y for x, y in zip(A, B)],
            "sub": [x - y for x, y in zip(A, B)],
            "mul": [x * y for x, y in zip(A, B)],
            "div": [tdiv(x, y) for x, y in zip(A, B)],
            "neg": [-x for x in A],
            "abs": [abs(x) for x in A],
            "chain": [wrap(wrap(x + y, dt) * y, dt) - x for x, y in zip(A, B)],
        }
        for op, vals in ops.items():
            np.save(f"{out}/want/{op}_{name}.npy", np.array([wrap(v, dt) for v in vals], dtype=dt))
        rows_a = [A[r * 4:(r + 1) * 4] for r in range(3)]
        rows_b = [B[r * 4:(r + 1) * 4] for r in range(3)]
        cols_b = [[B[r * 4 + c] for r in range(3)] for c in range(4)]
        reductions = {  # name: (values, shape)
            "sum": ([sum(A)], ()),
            "mean": ([tdiv(wrap(sum(A), dt), 12)], ()),
            "max": ([max(B)], ()),
            "rsum": ([sum(r) for r in rows_b], (3,)),
            "rmean": ([tdiv(wrap(sum(c), dt), 3) for c in cols_b], (4,)),
            "rmax": ([max(r) for r in rows_a], (3,)),
        }
        def mm(x, y):  # [3, 4] @ [4, 3], every step wrapped (the same bits at the end)
            return [sum(x[i * 4 + k] * y[k * 3 + j] for k in range(4)) for i in range(3) for j in range(3)]
        reductions["mm"] = (mm(A, B), (3, 3))
        bt = [B[c * 4 + r] for r in range(4) for c in range(3)]  # reshape(b, [3, 4]) transposed
        reductions["mmt"] = (mm(A, bt), (3, 3))
        for op, (vals, shape) in reductions.items():
            want = np.array([wrap(v, dt) for v in vals], dtype=dt).reshape(shape)
            np.save(f"{out}/want/{op}_{name}.npy", want)


if __name__ == "__main__":
    main()
