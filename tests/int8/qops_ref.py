#!/usr/bin/python3
"""tests/int8/qops_ref.py — inputs and the oracle's outputs of tests/int8/qops.lathe.

    qops_ref.py OUTDIR

Writes OUTDIR/{x,q,s,zp}.npy and OUTDIR/expected/<output>.npy from tests/int8/tflite_ref.py.
x holds random values over the whole int8 range and beyond, exact halves (x / scale = k + 0.5
with a power-of-two scale, where round half to even would differ), values just below a half,
zeros, NaN and infinities. The oracle covers finite x; the non-finite rows follow the
contract of docs/int8.md (NaN -> qmin, +inf -> qmax, -inf -> qmin), written out here.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tflite_ref as ref  # noqa: E402

SHAPE = (4, 3, 5, 6)
S_T, ZP_T = np.float32(0.0371), -5  # the model's per-tensor constants


def quantize(x, s, zp, qmin=-128, qmax=127, axis=None):
    finite = np.isfinite(x)
    q = ref.quantize(np.where(finite, x, 0), s, zp, qmin, qmax, axis)
    return np.where(np.isnan(x), qmin, np.where(x == np.inf, qmax,
                                                np.where(x == -np.inf, qmin, q)))


def inputs(rng):
    s = np.float32([0.125, 0.0371, 0.5])  # two powers of two: exact halves exist
    zp = np.int32([3, -7, 0])
    x = (rng.standard_normal(SHAPE) * 3).astype(np.float32)
    x[0, :, 0, :] = (rng.integers(-140, 140, (3, 6)) + 0.5) * s[:, None]  # ties per channel
    x[1, :, 0, :] = np.nextafter(np.float32(0.5) * s[:, None], np.float32(0)) * \
        rng.choice([-1, 1], (3, 6)) * (rng.integers(1, 9, (3, 6)) * 2 - 1)
    x[2, :, 0, :3] = [np.nan, np.inf, -np.inf]
    x[2, :, 0, 3:] = [0.0, -0.0, 1e30]
    x[3] *= 40  # far outside the range: the clamps
    q = rng.integers(-128, 128, SHAPE).astype(np.int8)
    return x, q, s.reshape(1, 3, 1, 1), zp.reshape(1, 3, 1, 1)


def requant_inputs(rng, count=4096):
    """bias, multiplier, shift per channel: every shift in [-31, 30], multipliers over
    [2^30, 2^31) and a few at the ends, biases chosen so most results land in int8 (the
    clamp would hide the rest), a few at the int32 extremes."""
    shift = np.resize(np.arange(-31, 31), count)
    mult = rng.integers(1 << 30, 1 << 31, count)
    mult[:4] = [1 << 30, (1 << 31) - 1, 1 << 30, (1 << 31) - 1]
    target = rng.uniform(-140, 140, count)
    real = mult * 2.0 ** (shift.astype(np.float64) - 31)
    bias = np.clip(np.round(target / real), ref.INT32_MIN, ref.INT32_MAX).astype(np.int64)
    bias[4:8] = [ref.INT32_MIN, ref.INT32_MAX, ref.INT32_MIN + 1, -1]
    return bias.astype(np.int32), mult.astype(np.int32), shift.astype(np.int32)


def main(out):
    rng = np.random.default_rng(8)
    x, q, s, zp = inputs(rng)
    exp = {
        "qt": quantize(x, S_T, ZP_T),
        "qc": quantize(x, s.ravel(), zp.ravel(), axis=1),
        "qn": quantize(x, s.ravel(), zp.ravel(), qmin=-127, axis=1),
        "dt": ref.dequantize(q, S_T, ZP_T),
        "dc": ref.dequantize(q, s.ravel(), zp.ravel(), axis=1),
        "ft": ref.dequantize(quantize(x, S_T, ZP_T, 0, 15), S_T, ZP_T),
        "fc": ref.dequantize(quantize(x, s.ravel(), zp.ravel(), axis=1), s.ravel(), zp.ravel(),
                             axis=1),
    }
    b, m, sh = requant_inputs(rng)
    one, w = np.int8([[1]]), np.zeros((1, b.size), np.int8)
    exp["rq"] = ref.fully_connected(one, 1, w, b, m, sh, 3)
    t = q.reshape(12, 30).T
    exp["tq"] = np.concatenate([t, t], axis=1)
    assert len(np.unique(exp["rq"])) > 200, "the requantized values are not spread over int8"
    # the halves really are halves, and half to even would give other bytes
    pow2 = [0, 2]  # the channels with a power-of-two scale
    t = x[0, pow2, 0] / s[0, pow2, 0]
    assert np.all(np.abs(t - np.trunc(t)) == 0.5)
    even = np.clip(np.round(t).astype(np.int64) + zp[0, pow2, 0], -128, 127)
    assert np.any(even != exp["qc"][0, pow2, 0]), "the ties do not tell the roundings apart"
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    for name, a in (("x", x), ("q", q), ("s", s), ("zp", zp), ("one", one), ("w", w), ("b", b),
                    ("m", m), ("sh", sh)):
        np.save(os.path.join(out, name + ".npy"), a)
    for name, a in exp.items():
        dtype = np.int8 if name[0] in "qrt" else np.float32
        np.save(os.path.join(out, "expected", name + ".npy"), np.asarray(a).astype(dtype))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with np.errstate(invalid="ignore"):
        main(sys.argv[1])
