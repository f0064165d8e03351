#!/usr/bin/python3
"""bench/int8_weights.py — random weights for bench/int8.sh (issue 19).

    int8_weights.py OUTDIR

Writes OUTDIR/mlp.safetensors and OUTDIR/cnn.safetensors (f32, for examples/mlp.lathe and
examples/cnn.lathe) and, for bench/models/qmlp.lathe and qcnn.lathe, int8 weights
in two ranges: qmlp_full / qcnn_full (the whole [-127, 127]: the packer finds pairs that could
saturate vpmaddubsw, so AVX2 runs the exact s16 tile) and qmlp_7bit / qcnn_7bit ([-63, 63]:
no pair can, so AVX2 runs the u8 x s8 tile), with int32 biases and Q31 multipliers and shifts
in the ranges real models have. Fixed seed. Only speed and bytes are measured with them.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "fixtures"))
import safetensors_py  # noqa: E402

MLP = {"h1": (784, 256), "h2": (256, 128), "logits": (128, 10)}  # dense: [in, units]
CNN_CONV = {"c1": (32, 1, 3, 3), "c2": (64, 32, 3, 3)}
CNN_DENSE = {"h": (1600, 128), "logits": (128, 10)}


def f32_params(rng, layers):
    out = {}
    for name, shape in layers.items():
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        units = shape[0] if len(shape) == 4 else shape[1]
        out[f"{name}.w"] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        out[f"{name}.b"] = (0.01 * rng.standard_normal(units)).astype(np.float32)
    return out


def int8_params(rng, layers, wmax):
    out = {}
    for name, shape in layers.items():
        units = shape[0] if len(shape) == 4 else shape[1]
        out[f"{name}.w"] = rng.integers(-wmax, wmax + 1, shape).astype(np.int8)
        out[f"{name}.b"] = rng.integers(-5000, 5000, units).astype(np.int32)
        out[f"{name}.m"] = rng.integers(1 << 30, (1 << 31) - 1, units).astype(np.int32)
        out[f"{name}.s"] = rng.integers(-12, -7, units).astype(np.int32)
    return out


def main(out):
    rng = np.random.default_rng(19)
    os.makedirs(out, exist_ok=True)
    save = lambda name, t: safetensors_py.save(os.path.join(out, name + ".safetensors"), t)
    save("mlp", f32_params(rng, MLP))
    save("cnn", f32_params(rng, {**CNN_CONV, **CNN_DENSE}))
    for tag, wmax in (("full", 127), ("7bit", 63)):
        save(f"qmlp_{tag}", int8_params(rng, MLP, wmax))
        save(f"qcnn_{tag}", int8_params(rng, {**CNN_CONV, **CNN_DENSE}, wmax))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
