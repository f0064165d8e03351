#!/usr/bin/python3
"""tests/int8/qsoftmax_ref.py — inputs and the oracle's outputs of tests/int8/qsoftmax.lathe.

    qsoftmax_ref.py OUTDIR

Writes OUTDIR/{q,wide,big,a,b,c}.npy and OUTDIR/expected/<output>.npy from
tests/int8/tflite_softmax.py, after checking that the model's qsoftmax and requantize
constants are the oracle's softmax_params and requantize multipliers of its float32 scales.
Rows hold ties for the max, a row at -128 and 127 (one-hot), all-equal rows (each output
1/depth) and, in `big`, a row of 700 equal values (a sum past TFLite's exponent check).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tflite_softmax as sm  # noqa: E402

# input scale -> (multiplier, left shift, diff_min) the model spells out
SOFTMAX = {0.1: (1717986944, 23, -248), 0.5: (1073741824, 26, -31),
           0.02: (1374389504, 21, -992), 0.0625: (1073741824, 23, -248),
           4.0: (1073741824, 29, -3)}
# (in scale, in zp) -> (multiplier, shift) to the output (0.1, 3)
REQUANT = {(0.05, -7): (1073741824, 0), (0.1, 3): (1073741824, 1), (0.3, 10): (1610612776, 2)}
OUT = (0.1, 3)


def check_constants():
    for s, want in SOFTMAX.items():
        got = sm.softmax_params(np.float32(s))
        if got != want:
            sys.exit(f"qsoftmax_ref: softmax_params({s}) = {got}, the model has {want}")
    for (s, zp), want in REQUANT.items():
        got = sm.requantize([0], s, zp, *OUT)[1:]
        if got != want:
            sys.exit(f"qsoftmax_ref: requantize({s} -> {OUT[0]}) = {got}, the model has {want}")


def inputs(rng):
    q = rng.integers(-128, 128, (4, 10))
    q[1] = [-128] * 9 + [127]  # one-hot: 127 and -128s
    q[2] = 17  # equal: 1/10 each
    q[3, :4] = 90  # ties for the max
    wide = rng.integers(-128, 128, (3, 300))
    wide[2] = rng.integers(100, 128, 300)  # many near the max
    big = rng.integers(-128, 128, (2, 700))
    big[0] = 5  # 700 equal values: the sum of exps is 700
    a = rng.integers(-128, 128, (2, 3, 4))
    a[0, 0] = [3, 3, 2, 1]  # differences of one step at scale 4: near one-hot
    b = rng.integers(-128, 128, (2, 5, 4))
    c = rng.integers(-128, 128, (2, 5, 3))
    c[0, 0] = [-128, 127, 10]  # requantized x3: clamps at both ends
    return {k: v.astype(np.int8) for k, v in
            dict(q=q, wide=wide, big=big, a=a, b=b, c=c).items()}


def main(out):
    check_constants()
    x = inputs(np.random.default_rng(19))
    a_q = sm.requantize(x["a"], 0.05, -7, *OUT)[0]
    cat = sm.concat([x["a"], x["b"]], [(0.05, -7), OUT], *OUT, axis=1)
    expected = {
        "s1": sm.softmax(x["q"], *SOFTMAX[0.1]),
        "s2": sm.softmax(x["q"], *SOFTMAX[0.5]),
        "s3": sm.softmax(x["wide"], *SOFTMAX[0.02]),
        "s4": sm.softmax(x["big"], *SOFTMAX[0.0625]),
        "s5": sm.softmax(x["a"], *SOFTMAX[4.0]),
        "rq": a_q,
        "rid": sm.requantize(x["b"], *OUT, *OUT)[0],
        "cat": cat,
        "cat2": sm.concat([x["b"], x["c"]], [OUT, (0.3, 10)], *OUT, axis=2),
        "catq": sm.softmax(cat, *SOFTMAX[0.1]),
    }
    if not np.array_equal(expected["rid"], x["b"]):
        sys.exit("qsoftmax_ref: requantize to the same parameters is not the identity")
    if not np.all(expected["s4"][0] == -128):
        sys.exit("qsoftmax_ref: 700 equal values should each round to 0 (1/700 < 1/512)")
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    for name, v in x.items():
        np.save(os.path.join(out, f"{name}.npy"), v)
    for name, v in expected.items():
        np.save(os.path.join(out, "expected", f"{name}.npy"), np.asarray(v).astype(np.int8))


if __name__ == "__main__":
    main(sys.argv[1])
