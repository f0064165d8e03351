#!/usr/bin/python3
"""bench/int8_weights.py — random weights and inputs for bench/int8.sh (issue 19).

    int8_weights.py OUTDIR

Writes OUTDIR/mlp.safetensors and OUTDIR/cnn.safetensors (f32 weights for examples/mlp.lathe
and examples/cnn.lathe, fan-in scaled normals, small biases) and, for `lathe quantize`,
calibration sets OUTDIR/cal_mlp/ and OUTDIR/cal_cnn/ (256 samples: x.npy uniform in [0, 1),
label.npy) and one batch of 64 other inputs OUTDIR/check_mlp.npy and check_cnn.npy, on which
lathe's and ONNX Runtime's int8 outputs are compared. Fixed seed. Only speed, bytes and the
agreement of the two int8 runtimes are measured with them, not accuracy.
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


def main(out):
    rng = np.random.default_rng(19)
    os.makedirs(out, exist_ok=True)
    save = lambda name, t: safetensors_py.save(os.path.join(out, name + ".safetensors"), t)
    save("mlp", f32_params(rng, MLP))
    save("cnn", f32_params(rng, {**CNN_CONV, **CNN_DENSE}))
    for net, shape in (("mlp", (784,)), ("cnn", (1, 28, 28))):
        os.makedirs(os.path.join(out, f"cal_{net}"), exist_ok=True)
        np.save(os.path.join(out, f"cal_{net}", "x.npy"),
                rng.random((256,) + shape, dtype=np.float32))
        np.save(os.path.join(out, f"cal_{net}", "label.npy"),
                rng.integers(0, 10, 256).astype(np.int32))
        np.save(os.path.join(out, f"check_{net}.npy"), rng.random((64,) + shape, np.float32))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
