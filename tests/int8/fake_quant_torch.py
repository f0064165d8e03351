#!/usr/bin/python3
"""tests/int8/fake_quant_torch.py — PyTorch's fake quantization as the reference of lathe's
fake_quant (tests/int8/fake_quant.lathe): values and the straight-through gradient.

    fake_quant_torch.py OUTDIR

Writes OUTDIR/weights.safetensors (the param x.v), the inputs r1, r2, r3, s, zp (.npy), and
OUTDIR/expected/{yt,yc,y4}.npy (torch.fake_quantize_per_tensor_affine and
_per_channel_affine) and OUTDIR/expected/grad.npy (d loss / d x by autograd, loss =
sum(yt * r1) + sum(yc * r2) + sum(y4 * r3)).

PyTorch computes x * (1 / scale) and rounds half to even; lathe (TFLite's contract) divides
and rounds half away from zero. The two agree wherever x / scale is not within a rounding
error of a half, so x keeps a margin of 0.05 steps from every half (exact halves are tested
against the oracle, tests/int8_ops.sh). The r's are multiples of 1/8: every sum of the
gradient is exact, in any order.
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import safetensors_py  # noqa: E402

SHAPE = (4, 3, 5, 6)


def far_from_halves(x, scales):
    """x with the elements within 0.01 steps of a half of any scale set to 0 (a grid point of
    every scale)"""
    keep = np.ones(x.shape, bool)
    for scale in scales:
        t = x.astype(np.float64) / np.float64(scale) if np.ndim(scale) == 0 else \
            x.astype(np.float64) / scale.astype(np.float64)
        keep &= np.abs(np.abs(t - np.floor(t)) - 0.5) > 0.01
    return np.where(keep, x, np.float32(0)).astype(np.float32)


def main(out):
    rng = np.random.default_rng(4)
    s = np.float32([0.02, 0.1, 0.07])
    zp = np.int32([0, 5, -10])
    x = (rng.standard_normal(SHAPE) * 4).astype(np.float32)
    x = far_from_halves(x, (np.float32(0.05), s.reshape(1, 3, 1, 1), np.float32(0.1)))
    r = [rng.integers(-32, 33, SHAPE).astype(np.float32) / 8 for _ in range(3)]
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.fake_quantize_per_tensor_affine(xt, 0.05, -3, -128, 127)
    yc = torch.fake_quantize_per_channel_affine(xt, torch.tensor(s), torch.tensor(zp), 1,
                                                -128, 127)
    y4 = torch.fake_quantize_per_tensor_affine(xt, 0.1, 2, 0, 15)
    loss = sum((y * torch.tensor(ri)).sum() for y, ri in zip((yt, yc, y4), r))
    loss.backward()
    save(out, x, s, zp, r, yt, yc, y4, xt.grad)


def save(out, x, s, zp, r, yt, yc, y4, grad):
    g = grad.numpy()
    # the test must see both sides of the straight-through estimator
    assert (g == 0).any() and (g != 0).any()
    masks = [(np.abs(y.detach().numpy() - x) > 0.5) for y in (yt, y4)]
    assert all(m.any() for m in masks), "no clamped elements"
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    safetensors_py.save(os.path.join(out, "weights.safetensors"), {"x.v": x})
    for name, a in (("r1", r[0]), ("r2", r[1]), ("r3", r[2]), ("s", s.reshape(1, 3, 1, 1)),
                    ("zp", zp.reshape(1, 3, 1, 1))):
        np.save(os.path.join(out, name + ".npy"), a)
    for name, y in (("yt", yt), ("yc", yc), ("y4", y4), ("grad", grad)):
        np.save(os.path.join(out, "expected", name + ".npy"), y.detach().numpy())


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
