#!/usr/bin/python3
"""tests/int8/qgroup_ref.py — inputs, weights and the oracle's output of tests/int8/qgroup.lathe.

    qgroup_ref.py OUTDIR

Writes OUTDIR/weights.safetensors (h, d, y: w int8 [O, C / groups, 3, 3] in [-127, 127], b
int32 biases, m and s per-channel Q31 multipliers and shifts), OUTDIR/x.npy (int8
[2, 6, 7, 7]) and OUTDIR/y.npy. A grouped convolution is the oracle's conv2d on each group:
output channels [g O/G, (g+1) O/G) read input channels [g C/G, (g+1) C/G) (TFLite's
DEPTHWISE_CONV_2D with depth multiplier M is groups = C, O = C M: output c M + k reads c).
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import safetensors_py  # noqa: E402
import tflite_ref as ref  # noqa: E402

X_ZP, H_ZP, D_ZP, Y_ZP = 7, -11, 4, -3
X_S, H_S, D_S, Y_S = 0.03, 0.05, 0.04, 0.02


def layer(rng, o, c_per_group, in_scale, out_scale):
    w = rng.integers(-127, 128, (o, c_per_group, 3, 3)).astype(np.int8)
    w_scales = rng.uniform(0.002, 0.02, o).astype(np.float32)
    bias = rng.integers(-3000, 3000, o).astype(np.int32)
    mult, shift = ref.output_multipliers(in_scale, w_scales, out_scale)
    return w, bias, mult.astype(np.int32), shift.astype(np.int32)


def grouped_conv2d(x, x_zp, groups, w, b, m, s, out_zp, **kw):
    c, o = x.shape[1] // groups, w.shape[0] // groups
    parts = [ref.conv2d(x[:, g * c:(g + 1) * c], x_zp, w[g * o:(g + 1) * o], b[g * o:(g + 1) * o],
                        m[g * o:(g + 1) * o], s[g * o:(g + 1) * o], out_zp, **kw)
             for g in range(groups)]
    return np.concatenate(parts, axis=1)


def main(out):
    rng = np.random.default_rng(1921)
    x = rng.integers(-128, 128, (2, 6, 7, 7)).astype(np.int8)
    h_p = layer(rng, 4, 3, X_S, H_S)
    d_p = layer(rng, 8, 1, H_S, D_S)
    y_p = layer(rng, 8, 1, D_S, Y_S)
    lo, hi = ref.activation_range("relu", H_S, H_ZP)
    h = grouped_conv2d(x, X_ZP, 2, *h_p, H_ZP, padding=1, act_min=lo, act_max=hi)
    d = grouped_conv2d(h, H_ZP, 4, *d_p, D_ZP, stride=2, padding=1)
    y = grouped_conv2d(d, D_ZP, 8, *y_p, Y_ZP, padding=2, dilation=2)
    assert h.shape == (2, 4, 7, 7) and d.shape == (2, 8, 4, 4) and y.shape == (2, 8, 4, 4)
    assert (h == lo).any() and (h > lo).any(), "layer 1 never clamps or never passes"
    assert len(np.unique(y)) > 50, "the output is too uniform to test anything"
    os.makedirs(out, exist_ok=True)
    tensors = {}
    for name, (w, b, m, s) in (("h", h_p), ("d", d_p), ("y", y_p)):
        tensors.update({f"{name}.w": w, f"{name}.b": b, f"{name}.m": m, f"{name}.s": s})
    safetensors_py.save(os.path.join(out, "weights.safetensors"), tensors)
    np.save(os.path.join(out, "x.npy"), x)
    np.save(os.path.join(out, "y.npy"), y.astype(np.int8))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
