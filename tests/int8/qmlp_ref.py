#!/usr/bin/python3
"""tests/int8/qmlp_ref.py — inputs, weights and the oracle's output of tests/int8/qmlp.lathe.

    qmlp_ref.py OUTDIR

Writes OUTDIR/weights.safetensors (h.w, y.w int8 in [-127, 127]; h.b, y.b int32 biases;
h.m, y.m, h.s, y.s the per-channel Q31 multipliers and shifts from per-channel weight
scales), OUTDIR/x.npy (int8 [8, 24]) and OUTDIR/y.npy: the two layers computed by the
oracle's fully_connected (tests/int8/tflite_ref.py), the first with its ReLU clamp. Fixed
seed: the same files every run. The zero points and clamps match the model file's.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import safetensors_py  # noqa: E402
import tflite_ref as ref  # noqa: E402

N, I, H, O = 32, 24, 16, 10
X_ZP, H_ZP, Y_ZP = -3, -20, 4  # the model's x_zp / out_zp arguments
X_S, H_S, Y_S = 0.03, 0.05, 0.11  # activation scales (only their ratios reach the integers)


def layer(rng, fan_in, units, in_scale, out_scale):
    w = rng.integers(-127, 128, (fan_in, units)).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.02, units).astype(np.float32)
    bias = rng.integers(-3000, 3000, units).astype(np.int32)
    # channel 0 requantizes by 1.2 > 1 (a left shift) with weights in {-1, 0, 1}
    w[:, 0] = rng.integers(-1, 2, fan_in)
    bias[0] = rng.integers(-20, 20)
    w_scales[0] = 1.2 * out_scale / in_scale
    mult, shift = ref.output_multipliers(in_scale, w_scales, out_scale)
    assert shift[0] > 0 and (shift[1:] < 0).all()
    return w, bias, mult.astype(np.int32), shift.astype(np.int32)


def main(out):
    rng = np.random.default_rng(1919)
    x = rng.integers(-128, 128, (N, I)).astype(np.int8)
    w1, b1, m1, s1 = layer(rng, I, H, X_S, H_S)
    w2, b2, m2, s2 = layer(rng, H, O, H_S, Y_S)
    lo, hi = ref.activation_range("relu", H_S, H_ZP)
    h = ref.fully_connected(x, X_ZP, w1, b1, m1, s1, H_ZP, lo, hi)
    y = ref.fully_connected(h, H_ZP, w2, b2, m2, s2, Y_ZP)
    # the test must exercise both clamps and the rounding: outputs spread over the range
    assert (h == lo).any() and (h > lo).any(), "layer 1 never clamps or never passes"
    assert len(np.unique(y)) > 100, "layer 2 output too uniform to test anything"
    assert ((y[:, 0] > -128) & (y[:, 0] < 127)).sum() > 3, "the left-shift channel saturates"
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
