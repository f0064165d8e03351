"""model.grad() equals `lathe grad` bit for bit (the same compiled backward pass, built by
cc as `lathe grad` builds it) and PyTorch autograd to 1e-4, and leaves the params alone."""

import os

import numpy as np

import lathe

from conftest import EXAMPLES, FIXTURES, run_cli


def _read_safetensors(path):
    import json
    import struct

    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a:8 + n + b], dtypes[t["dtype"]]).reshape(
            t["shape"])
    return out


def test_grad_equals_lathe_grad_bit_for_bit(mlp_batch, tmp):
    x, label = mlp_batch
    fix = os.path.join(FIXTURES, "mlp")
    # `lathe grad` builds with cc (-O2 -march=native), whose contractions the JIT need not make
    mlp = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), grad=True, backend="cc")
    mlp.load_weights(os.path.join(fix, "weights.safetensors"))
    before = mlp.state_dict()
    grads = mlp.grad(x=x, label=label)
    assert set(grads) == set(mlp.params)
    p = run_cli("grad", os.path.join(EXAMPLES, "mlp.lathe"), "--weights",
                os.path.join(fix, "weights.safetensors"), "--input",
                f"x={os.path.join(fix, 'x.npy')}", "--input",
                f"label={os.path.join(fix, 'label.npy')}", "--out", tmp)
    cli = _read_safetensors(os.path.join(tmp, "grads.safetensors"))
    torch = _read_safetensors(os.path.join(fix, "grads.safetensors"))
    for name, g in grads.items():
        assert g.shape == mlp.params[name].shape
        assert np.array_equal(g, cli[name]), name
        scale = max(float(np.abs(torch[name]).max()), 1e-30)
        assert float(np.abs(g - torch[name]).max()) / scale <= 1e-4, name
    _, loss = mlp.entry("grad").run({"x": x, "label": label})
    assert np.float32(loss) == np.float32(p.stdout.split()[1])  # printed with 9 digits
    after = mlp.state_dict()
    assert all(np.array_equal(before[n], after[n]) for n in before)  # grad does not step
