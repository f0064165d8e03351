#!/usr/bin/python3
"""tests/int8/qpool_ref.py — inputs and the oracle's outputs of tests/int8/qpool.lathe.

    qpool_ref.py OUTDIR

Writes OUTDIR/{q,r,row}.npy and OUTDIR/expected/<output>.npy from tests/int8/tflite_ref.py,
after checking that the model's qadd constants are the oracle's add_params of its float32
scales. q holds random int8 values with whole planes at -128 and at 127 (the clamps, the
sum of a window of 127s) and windows whose averages end in exact halves (+-x.5).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tflite_ref as ref  # noqa: E402

SHAPE = (2, 3, 7, 8)
# (a_scale, b_scale, out_scale) -> the constants the model spells out
ADDS = {(0.03, 0.07, 0.1): ((1840700221, -2), (1073741824, 0), (1503238538, -19)),
        (0.5, 0.002, 0.04): ((1073741824, 0), (1099511680, -8), (1677721638, -15)),
        (0.02, 0.02, 0.003): ((1073741824, 0), (1073741824, 0), (1789569651, -16))}


def inputs(rng):
    q = rng.integers(-128, 128, SHAPE)
    q[0, 0] = -128
    q[0, 1] = 127
    q[1, 0, :2, :2] = [[1, 2], [0, 0]]  # 3 / 4: a tie-free 0.75 next to...
    q[1, 0, :2, 2:4] = [[1, 1], [0, 0]]  # ... 2 / 4 = 0.5: an exact half, rounds to 1
    q[1, 0, :2, 4:6] = [[-1, -1], [0, 0]]  # -0.5 rounds to -1
    r = rng.integers(-128, 128, SHAPE)
    row = rng.integers(-128, 128, (1, 3, 1, 8))
    return [a.astype(np.int8) for a in (q, r, row)]


def swapped(params):
    """add_params with the two inputs exchanged (adc is qadd(r, q) with q's scale 0.03)"""
    left, m1, m2, mo = params
    return left, m2, m1, mo


def main(out):
    for scales, want in ADDS.items():
        _, m1, m2, mo = ref.add_params(*map(np.float32, scales))
        if (m1, m2, mo) != want:
            sys.exit(f"qpool_ref: add_params{scales} = {(m1, m2, mo)}, the model has {want}")
    q, r, row = inputs(np.random.default_rng(19))
    p = {s: (20,) + ADDS[s] for s in ADDS}
    expected = {
        "mp": ref.max_pool2d(q, 2),
        "mpp": ref.max_pool2d(q, 3, 2, padding=1),
        "mpd": ref.max_pool2d(q, 2, 1, dilation=2),
        "ap": ref.avg_pool2d(q, 2),
        "app": ref.avg_pool2d(q, 3, 2, padding=1),
        "aps": ref.avg_pool2d(q, (1, 3), (1, 2)),
        "ad": ref.add(q, 5, r, -7, p[(0.03, 0.07, 0.1)], 1),
        "adb": ref.add(q, -128, row, 3, p[(0.5, 0.002, 0.04)], -20),
        "adr": ref.add(q, 0, r, 0, p[(0.02, 0.02, 0.003)], -128),
        "adc": ref.add(r, -7, q, 5, swapped(p[(0.03, 0.07, 0.1)]), 1, act_min=1),
    }
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    for name, a in (("q", q), ("r", r), ("row", row)):
        np.save(os.path.join(out, f"{name}.npy"), a)
    for name, a in expected.items():
        np.save(os.path.join(out, "expected", f"{name}.npy"), a.astype(np.int8))


if __name__ == "__main__":
    main(sys.argv[1])
