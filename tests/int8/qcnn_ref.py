#!/usr/bin/python3
"""tests/int8/qcnn_ref.py — inputs, weights and the oracle's output of tests/int8/qcnn.lathe.

    qcnn_ref.py OUTDIR

Writes OUTDIR/weights.safetensors (h.w, y.w int8 [O, C, 3, 3] in [-127, 127]; h.b, y.b int32
biases; h.m, y.m, h.s, y.s per-channel Q31 multipliers and shifts), OUTDIR/x.npy (int8
[2, 3, 11, 9]) and OUTDIR/y.npy: the two convolutions computed by the oracle's conv2d
(tests/int8/tflite_ref.py), the first with its ReLU clamp. Fixed seed; the geometry and zero
points match the model file's.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import safetensors_py  # noqa: E402
import tflite_ref as ref  # noqa: E402

X_ZP, H_ZP, Y_ZP = 7, -11, 3
X_S, H_S, Y_S = 0.03, 0.05, 0.11


def layer(rng, o, c, in_scale, out_scale):
    w = rng.integers(-127, 128, (o, c, 3, 3)).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.02, o).astype(np.float32)
    bias = rng.integers(-3000, 3000, o).astype(np.int32)
    mult, shift = ref.output_multipliers(in_scale, w_scales, out_scale)
    return w, bias, mult.astype(np.int32), shift.astype(np.int32)


def main(out):
    rng = np.random.default_rng(1920)
    x = rng.integers(-128, 128, (2, 3, 11, 9)).astype(np.int8)
    w1, b1, m1, s1 = layer(rng, 4, 3, X_S, H_S)
    w2, b2, m2, s2 = layer(rng, 5, 4, H_S, Y_S)
    lo, hi = ref.activation_range("relu", H_S, H_ZP)
    h = ref.conv2d(x, X_ZP, w1, b1, m1, s1, H_ZP, stride=2, padding=1, act_min=lo, act_max=hi)
    y = ref.conv2d(h, H_ZP, w2, b2, m2, s2, Y_ZP, padding=2, dilation=2)
    assert h.shape == (2, 4, 6, 5) and y.shape == (2, 5, 6, 5)
    assert (h == lo).any() and (h > lo).any(), "layer 1 never clamps or never passes"
    assert len(np.unique(y)) > 100, "layer 2 output too uniform to test anything"
    os.makedirs(out, exist_ok=True)
    safetensors_py.save(os.path.join(out, "weights.safetensors"), {
        "h.w": w1, "h.b": b1, "h.m": m1, "h.s": s1,
        "y.w": w2, "y.b": b2, "y.m": m2, "y.s": s2})
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "y.npy"), y.astype(np.int8))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
