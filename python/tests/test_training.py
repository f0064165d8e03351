"""Training from Python equals the C API bit for bit: the same steps on the same batch give
the same losses and the same params and optimizer state (train_ref.c, linked against the
same liblathe.so). The CLI then runs the checkpoint Python saved and agrees with Python's
forward exactly."""

import os
import shutil
import subprocess

import numpy as np
import pytest

import lathe
from conftest import EXAMPLES, FIXTURES, ROOT, run_cli

STEPS = 3


@pytest.fixture(scope="module")
def train_ref(tmp_path_factory):
    """train_ref.c built against include/lathe/lathe.h and the tested liblathe.so."""
    libpath = lathe.library_path()
    out = str(tmp_path_factory.mktemp("ref") / "train_ref")
    cc = shutil.which("cc") or shutil.which("gcc")
    cmd = [cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(ROOT, "include"),
           os.path.join(os.path.dirname(__file__), "train_ref.c"), "-o", out, libpath,
           "-Wl,-rpath," + os.path.dirname(os.path.abspath(libpath))]
    if "libasan" in subprocess.run(["ldd", libpath], capture_output=True, text=True).stdout:
        cmd += ["-fsanitize=address,undefined"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def _train_both(train_ref, tmp, example, fixture, n):
    weights = os.path.join(FIXTURES, fixture, "weights.safetensors")
    x = np.ascontiguousarray(np.load(os.path.join(FIXTURES, fixture, "x.npy"))[:n])
    label = np.ascontiguousarray(np.load(os.path.join(FIXTURES, fixture, "label.npy"))[:n])
    x.tofile(tmp / "x.bin")
    label.tofile(tmp / "label.bin")
    ckpt = tmp / "c.safetensors"
    p = subprocess.run([train_ref, os.path.join(EXAMPLES, example), str(n), weights,
                        tmp / "x.bin", tmp / "label.bin", str(STEPS), ckpt],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    c_losses = [float.fromhex(s) for s in p.stdout.split()]
    m = lathe.compile(os.path.join(EXAMPLES, example), defines={"N": n})
    m.load_weights(weights)
    py_losses = [m.train_step(x=x, label=label) for _ in range(STEPS)]
    return m, py_losses, c_losses, ckpt, x


@pytest.mark.parametrize("example,fixture,n", [("mlp.lathe", "mlp", 64), ("cnn.lathe", "cnn", 8)])
def test_training_equals_c_api_bit_for_bit(train_ref, tmp, example, fixture, n):
    m, py_losses, c_losses, ckpt, x = _train_both(train_ref, tmp, example, fixture, n)
    assert py_losses == c_losses and len(py_losses) == STEPS
    assert py_losses[-1] < py_losses[0]  # it trains
    c_model = lathe.compile(os.path.join(EXAMPLES, example), defines={"N": n})
    c_model.load_weights(ckpt)
    for name in m.params:
        assert np.array_equal(m.params[name], c_model.params[name]), name
    for name in m.state:
        assert np.array_equal(m.state[name], c_model.state[name]), name
    # the CLI runs the checkpoint Python saved: the same probabilities, bit for bit
    saved = tmp / "py.safetensors"
    m.save(saved)
    np.save(tmp / "x.npy", x)
    run_cli("run", os.path.join(EXAMPLES, example), "-D", f"N={n}", "--weights", saved,
            "--input", f"x={tmp / 'x.npy'}", "--out", tmp / "cli")
    assert np.array_equal(np.load(tmp / "cli" / "probs.npy"), m(x=x))


def test_save_and_load_weights_round_trip(tmp, mlp_batch):
    x, label = mlp_batch
    a = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), seed=1)
    a.train_step(x=x, label=label)
    a.save(tmp / "a.safetensors")
    b = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), seed=2)
    b.load_weights(tmp / "a.safetensors")
    assert a.train_step(x=x, label=label) == b.train_step(x=x, label=label)  # exact resume
    sd = a.state_dict()
    assert set(sd) == set(a.params) | set(a.state)
    c = lathe.compile(os.path.join(EXAMPLES, "mlp.lathe"), seed=3)
    c.load_state_dict(sd)
    assert np.array_equal(c(x=x), a(x=x))
    sd["h1.w"][:] = 0  # a state dict is a copy
    assert not np.array_equal(a.params["h1.w"], sd["h1.w"])
